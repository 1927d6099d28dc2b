// Prometheus text format 0.0.4 and OpenMetrics 1.0 parser for the sidecar's hot path: one pass over the string
// with charCodeAt and indexOf, no regex, and no substring per line beyond the label values it returns (metric
// and label names are compared in place and reused from earlier lines). Lines of unselected families are
// skipped once their metric name is known.

import { parseDecimalString, parseFloatAt, parseFloatString, parseIntAt, POW10 } from './numbers.js';
import { groupIgnores, groupKey, histogramProblem, omTimestampAt, openMetricsFloat, type GroupProblem } from './openmetrics.js';
import { ParseError, type Family, type FamilyType, type ParseWarning, type Sample, type SampleBudget, type WarningReason } from './types.js';
import { codePoints } from './utf8.js';

const SPACE = 32;
const TAB = 9;
const HASH = 35;
const QUOTE = 34;
const BACKSLASH = 92;
const EQUALS = 61;
const COMMA = 44;
const LBRACE = 123;
const RBRACE = 125;

// Character classes of ASCII, as bits of a lookup table: one load per character while scanning names.
const NAME_START = 1;
const NAME = 2;
const LABEL_START = 4;
const LABEL = 8;
const CHARS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const letter = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
  const digit = c >= 48 && c <= 57;
  CHARS[c] = (letter || c === 58 ? NAME_START | NAME : 0) | (digit ? NAME | LABEL : 0) | (letter ? LABEL_START | LABEL : 0);
}
function is(c: number, cls: number): boolean {
  return c < 128 && (CHARS[c]! & cls) !== 0;
}
function isBlank(c: number): boolean {
  return c === SPACE || c === TAB;
}

const TEXT_TYPES: Record<string, FamilyType> = { counter: 'counter', gauge: 'gauge', histogram: 'histogram', summary: 'summary', untyped: 'untyped', gaugehistogram: 'gaugehistogram', gauge_histogram: 'gaugehistogram' };
const OM_TYPES: Record<string, FamilyType> = { counter: 'counter', gauge: 'gauge', histogram: 'histogram', gaugehistogram: 'gaugehistogram', summary: 'summary', unknown: 'unknown', info: 'info', stateset: 'stateset' };
/** Sample name suffixes of a family, most frequent first. */
const OM_SUFFIXES: Partial<Record<FamilyType, readonly string[]>> = {
  counter: ['_total', '_created'],
  histogram: ['_bucket', '_count', '_sum', '_created'],
  gaugehistogram: ['_bucket', '_gcount', '_gsum'],
  summary: ['_count', '_sum', '_created'],
  info: ['_info'],
};
const TEXT_SUFFIXES: Partial<Record<FamilyType, readonly string[]>> = {
  histogram: ['_bucket', '_count', '_sum'],
  gaugehistogram: ['_bucket', '_count', '_sum'],
  summary: ['_count', '_sum'],
};
const ALL_OM_SUFFIXES = [...new Set(Object.values(OM_SUFFIXES).flat())];
/** OpenMetrics types whose samples always carry a suffix. */
const OM_NO_BARE: ReadonlySet<FamilyType> = new Set(['counter', 'histogram', 'gaugehistogram', 'info']);

/** What the parser knows of one family name, selected or not. */
interface Meta {
  readonly name: string;
  type: FamilyType;
  /** null when select() did not pick the family. */
  readonly family: Family | null;
  typed: boolean;
  helped: boolean;
  unit: string | undefined;
  hasSamples: boolean;
  /** Whether a sample may carry the family name itself. */
  bare: boolean;
  /** Suffixes its samples may carry, and the names they make (reused as Sample.name: lines need no slicing). */
  suffixes: readonly string[];
  suffixed: string[];
}

export class Parser {
  private line = 0;
  private eof = false;
  private readonly families: Family[] = [];
  private readonly metas = new Map<string, Meta>();
  private cur: Meta | undefined;
  /** Where the last scan stopped (label names and values return their string, and leave their end here). */
  private pos = 0;
  /** See backslashFrom. */
  private nextBackslash = -1;
  /** The (unquoted) label names of the last label set, by position (usually the same on the next line), and their count. */
  private readonly keys: string[] = [];
  private labelCount = 0;
  /** Text format: the quoted metric name found inside the last label set. */
  private quotedName: string | undefined;
  // OpenMetrics, current selected family: the line of each sample, and its groups (samples of one MetricPoint).
  private readonly lines: number[] = [];
  private groupStart = 0;
  /** Labels of the current group but the ignored one. */
  private groupSize = 0;
  private groupTimestamps = false;
  private readonly groups = new Set<string>();
  readonly warnings: ParseWarning[] = [];
  /**
   * The label whose value is rewritten as Prometheus does (`le` "1" → "1.0", `quantile` "0.50" → "0.5"): set by
   * the last TYPE line of any family (histogram: le, summary: quantile), as in Prometheus's parsers.
   */
  private normalized = '';
  /** The first malformed sample line of an unselected family: an error only if no selected family has samples. */
  private unselectedError: ParseError | undefined;
  /** Samples held so far (see SampleBudget), and those let go by family. */
  private held = 0;
  readonly cut = new Map<string, number>();

  constructor(
    private readonly s: string,
    private readonly om: boolean,
    private readonly select: ((name: string) => boolean) | undefined,
    /** Lines with invalid UTF-8 (decoded as U+FFFD), if any. */
    private readonly invalidLines: ReadonlySet<number> | undefined,
    private readonly budget?: SampleBudget,
  ) {}

  run(): Family[] {
    if (this.om) {
      this.omLines();
      if (!this.eof) throw new ParseError(this.line + 1, 'missing # EOF at the end');
      this.finishFamily();
    } else this.textLines();
    const families = this.families.filter((f) => f.samples.length > 0);
    // A page of nothing selected and a line that is no sample: most likely not an exposition at all.
    if (families.length === 0 && this.unselectedError) throw this.unselectedError;
    return families;
  }

  /** Notes something let pass in a selected family: the first message per reason, and a count. */
  private warn(reason: WarningReason, message: string, line = this.line): void {
    const known = this.warnings.find((w) => w.reason === reason);
    if (known) known.count++;
    else this.warnings.push({ reason, line, message, count: 1 });
  }

  /** Invalid UTF-8 fails a line the parser keeps (Prometheus refuses it in label values and HELP text). */
  private checkUtf8(): void {
    if (this.invalidLines?.has(this.line)) throw this.err('invalid UTF-8');
  }

  // NOTE: the line loops hold nothing else: code after a loop that had not run yet when V8 optimised the loop
  // on-stack made it deoptimise at the end of every parse.
  private textLines(): void {
    const s = this.s;
    const n = s.length;
    let pos = 0;
    while (pos < n) {
      let end = s.indexOf('\n', pos);
      if (end < 0) end = n;
      this.line++;
      this.textLine(pos, end);
      pos = end + 1;
    }
  }

  private omLines(): void {
    const s = this.s;
    const n = s.length;
    let pos = 0;
    while (pos < n) {
      let end = s.indexOf('\n', pos);
      if (end < 0) end = n;
      this.line++;
      if (this.eof) throw this.err('content after # EOF');
      this.omLine(pos, end);
      pos = end + 1;
    }
  }

  private err(reason: string): ParseError {
    return new ParseError(this.line, reason);
  }

  private textLine(start: number, end: number): void {
    const s = this.s;
    let i = start;
    // NOTE: s.charCodeAt(end) is '\n' or NaN, so scans may look one past the line without checking i < end.
    while (isBlank(s.charCodeAt(i))) i++;
    if (i === end) return;
    if (s.charCodeAt(i) === HASH) return this.textComment(i + 1, end);
    this.sampleLine(i, end);
  }

  private omLine(start: number, end: number): void {
    if (start === end) throw this.err('blank lines are not allowed in OpenMetrics');
    if (this.s.charCodeAt(start) === HASH) return this.omComment(start, end);
    this.sampleLine(start, end);
  }

  /** Text comment from after `#`: `HELP name text` or `TYPE name type` as expfmt reads them; anything else is ignored. */
  private textComment(i: number, end: number): void {
    const s = this.s;
    while (isBlank(s.charCodeAt(i))) i++;
    const help = s.startsWith('HELP', i);
    if (!help && !s.startsWith('TYPE', i)) return;
    i += 4;
    if (i === end) return;
    if (!isBlank(s.charCodeAt(i))) return; // e.g. "# HELPER": a plain comment
    while (isBlank(s.charCodeAt(i))) i++;
    if (i === end) return;
    let name: string;
    if (s.charCodeAt(i) === QUOTE) {
      name = this.labelValue(i + 1, end);
      i = this.pos;
    } else {
      const start = i;
      if (!is(s.charCodeAt(i), NAME_START)) throw this.err('invalid metric name in comment');
      while (is(s.charCodeAt(++i), NAME));
      name = s.slice(start, i);
    }
    if (i === end) return; // "# HELP name" alone: a plain comment (expfmt)
    // NOTE: Prometheus takes the text from one character after the name, whatever that character is.
    i++;
    while (isBlank(s.charCodeAt(i))) i++;
    const meta = this.textFamily(name);
    if (i === end) return;
    const family = meta.family;
    if (help) {
      if (family === null) return;
      if (meta.helped) return this.warn('repeated_metadata', `second HELP line for metric name ${JSON.stringify(name)}`);
      meta.helped = true;
      this.checkUtf8();
      family.help = this.help(i, end);
      return;
    }
    let j = end;
    while (isBlank(s.charCodeAt(j - 1))) j--;
    const word = s.slice(i, j);
    const type = TEXT_TYPES[word] ?? TEXT_TYPES[word.toLowerCase()];
    if (type === undefined) {
      if (family === null) return;
      throw this.err(`unknown metric type ${JSON.stringify(word)}`);
    }
    this.normalized = type === 'histogram' ? 'le' : type === 'summary' ? 'quantile' : '';
    if (meta.typed) {
      if (family) this.warn('repeated_metadata', `second TYPE line for metric name ${JSON.stringify(name)}`);
      return;
    }
    if (meta.hasSamples && family) this.warn('metadata_after_samples', `TYPE line for metric name ${JSON.stringify(name)} after its samples`);
    this.setType(meta, type);
  }

  /** OpenMetrics comment line: exactly `# HELP name text`, `# TYPE name type`, `# UNIT name unit` or `# EOF`. */
  private omComment(start: number, end: number): void {
    const s = this.s;
    if (end - start === 5 && s.startsWith('# EOF', start)) {
      this.eof = true;
      return;
    }
    const kw = s.charCodeAt(start + 1) === SPACE ? s.slice(start + 2, start + 6) : '';
    if (kw !== 'HELP' && kw !== 'TYPE' && kw !== 'UNIT') throw this.err('comments must be # HELP, # TYPE, # UNIT or # EOF');
    let i = start + 7;
    if (s.charCodeAt(i - 1) !== SPACE || !is(s.charCodeAt(i), NAME_START)) throw this.err(`# ${kw} needs a metric name`);
    while (is(s.charCodeAt(++i), NAME));
    const name = s.slice(start + 7, i);
    if (s.charCodeAt(i) !== SPACE) throw this.err(`# ${kw} ${name} needs a space and a value after the name`);
    const meta = this.omMetaFamily(name, kw);
    const family = meta.family;
    const rest = i + 1;
    if (kw === 'HELP') {
      if (family === null) return;
      if (meta.helped) return this.warn('repeated_metadata', `second # HELP for ${name}`);
      meta.helped = true;
      this.checkUtf8();
      family.help = this.help(rest, end);
    } else if (kw === 'TYPE') {
      const type = OM_TYPES[s.slice(rest, end)];
      if (type === undefined) {
        if (family === null) return;
        throw this.err(`unknown metric type ${JSON.stringify(s.slice(rest, end))}`);
      }
      this.normalized = type === 'histogram' ? 'le' : type === 'summary' ? 'quantile' : '';
      if (meta.typed) {
        if (family) this.warn('repeated_metadata', `second # TYPE for ${name}`);
        return;
      }
      if (family && meta.unit && (type === 'info' || type === 'stateset')) this.warn('invalid_metadata', `${type} ${name} cannot have a unit`);
      for (const suffix of OM_SUFFIXES[type] ?? []) if (family && this.metas.has(name + suffix)) this.warn('invalid_metadata', `${name + suffix} clashes with the ${type} ${name}`);
      this.setType(meta, type);
    } else {
      if (family === null) return;
      if (meta.unit !== undefined) return this.warn('repeated_metadata', `second # UNIT for ${name}`);
      for (let j = rest; j < end; j++) if (!is(s.charCodeAt(j), NAME)) throw this.err(`invalid unit ${JSON.stringify(s.slice(rest, end))}`);
      const unit = s.slice(rest, end);
      if (unit !== '' && !name.endsWith(`_${unit}`)) throw this.err(`unit ${unit} must be the suffix of the metric name ${name}`);
      if (unit !== '' && (meta.type === 'info' || meta.type === 'stateset')) this.warn('invalid_metadata', `${meta.type} ${name} cannot have a unit`);
      meta.unit = unit;
      if (unit !== '') family.unit = unit;
    }
  }

  /** HELP text in s[i..end): `\\`, `\n` and `\"` unescaped, any other backslash kept as it is (never an error). */
  private help(i: number, end: number): string {
    const s = this.s;
    let b = this.backslashFrom(i);
    if (b >= end) return s.slice(i, end);
    let out = '';
    while (b < end - 1) {
      const c = s.charCodeAt(b + 1);
      out += s.slice(i, b) + (c === 110 ? '\n' : c === BACKSLASH ? '\\' : c === QUOTE ? '"' : s.slice(b, b + 2));
      i = b + 2;
      b = this.backslashFrom(i);
    }
    return out + s.slice(i, end);
  }

  private setType(meta: Meta, type: FamilyType): void {
    meta.type = type;
    meta.typed = true;
    meta.bare = !this.om || !OM_NO_BARE.has(type);
    meta.suffixes = (this.om ? OM_SUFFIXES : TEXT_SUFFIXES)[type] ?? [];
    this.nameSuffixed(meta);
    if (meta.family) meta.family.type = type;
  }

  private newFamily(name: string): Meta {
    const type: FamilyType = this.om ? 'unknown' : 'untyped';
    const family: Family | null = !this.select || this.select(name) ? { name, type, samples: [] } : null;
    if (family) this.families.push(family);
    const meta: Meta = { name, type, family, typed: false, helped: false, unit: undefined, hasSamples: false, bare: true, suffixes: [], suffixed: [] };
    this.metas.set(name, meta);
    return meta;
  }

  private setCurrent(meta: Meta): void {
    if (meta === this.cur) return;
    if (this.om) {
      this.finishFamily();
      // A family entered again (warned about) starts a new group after its earlier samples.
      this.groupStart = this.lines.length = meta.family?.samples.length ?? 0;
    } else this.nameSuffixed(meta);
    this.cur = meta;
  }

  private nameSuffixed(meta: Meta): void {
    // NOTE: text 0.0.4 (expfmt) gives a family of the exact name precedence over a histogram's or summary's
    // suffix: such families (which may have appeared since) keep their names.
    if (meta.suffixes.length === 0) return;
    if (!this.om) meta.suffixes = meta.suffixes.filter((x) => !this.metas.has(meta.name + x));
    meta.suffixed = meta.suffixes.map((x) => meta.name + x);
  }

  /**
   * Text 0.0.4: the family of a sample or metadata name, as expfmt finds it: the family of that exact name, else
   * the histogram or summary whose `_bucket`/`_count`/`_sum` it is, else a new family. Families may interleave.
   */
  private textFamily(name: string): Meta {
    let meta = this.metas.get(name);
    if (meta === undefined) {
      for (const suffix of TEXT_SUFFIXES.histogram!) {
        if (!name.endsWith(suffix)) continue;
        const base = this.metas.get(name.slice(0, -suffix.length));
        if (base && TEXT_SUFFIXES[base.type]?.includes(suffix)) meta = base;
      }
    }
    meta ??= this.newFamily(name);
    this.setCurrent(meta);
    return meta;
  }

  /**
   * OpenMetrics: the family of a name that is not one of the current family's. Families should never interleave;
   * one that comes back (or a sample without its type's suffix) is taken as Prometheus takes it, with a warning.
   */
  private omFamily(name: string): Meta {
    const known = this.metas.get(name);
    if (known) {
      if (known.family && known === this.cur) this.warn('invalid_sample', `a ${known.type} sample needs a suffix: ${OM_SUFFIXES[known.type]!.join(', ')}`);
      else if (known.family) this.warn('family_not_contiguous', `metric family ${name} appears twice (its lines must be contiguous)`);
      this.setCurrent(known);
      return known;
    }
    for (const suffix of ALL_OM_SUFFIXES) {
      if (!name.endsWith(suffix)) continue;
      const owner = this.metas.get(name.slice(0, -suffix.length));
      if (owner && OM_SUFFIXES[owner.type]?.includes(suffix)) {
        if (owner.family) this.warn('family_not_contiguous', `${name} belongs to the ${owner.type} ${owner.name}, whose lines must be contiguous`);
        this.setCurrent(owner);
        return owner;
      }
    }
    const meta = this.newFamily(name);
    this.setCurrent(meta);
    return meta;
  }

  private omMetaFamily(name: string, kw: string): Meta {
    const meta = this.metas.get(name);
    if (meta === undefined) return this.omFamily(name);
    if (meta !== this.cur && meta.family) this.warn('family_not_contiguous', `metric family ${name} appears twice (its lines must be contiguous)`);
    if (meta.hasSamples && meta.family) this.warn('metadata_after_samples', `# ${kw} for ${name} after its samples`);
    this.setCurrent(meta);
    return meta;
  }

  /** A sample line from its first character. */
  private sampleLine(start: number, end: number): void {
    const s = this.s;
    if (s.charCodeAt(start) === LBRACE) return this.quotedNameSample(start, end);
    // Fast path: a line of the current family, its name compared in place rather than scanned and sliced.
    let meta = this.cur;
    let name: string | undefined;
    let i = start;
    if (meta !== undefined && s.startsWith(meta.name, start)) {
      const base = meta.name;
      if (!is(s.charCodeAt(start + base.length), NAME)) {
        if (meta.bare) name = base;
      } else {
        const at = start + base.length;
        for (let k = 0; k < meta.suffixes.length; k++) {
          const suffix = meta.suffixes[k]!;
          if (s.startsWith(suffix, at) && !is(s.charCodeAt(at + suffix.length), NAME)) {
            name = meta.suffixed[k];
            break;
          }
        }
      }
    }
    if (name !== undefined && meta !== undefined) i += name.length;
    else {
      if (!is(s.charCodeAt(i), NAME_START)) throw this.err(`invalid metric name at ${JSON.stringify(s.slice(i, Math.min(end, i + 20)))}`);
      while (is(s.charCodeAt(++i), NAME));
      name = s.slice(start, i);
      meta = this.om ? this.omFamily(name) : this.textFamily(name);
    }
    if (meta.family === null) return this.skip(meta, i, end, name);
    meta.hasSamples = true;
    const labels: Record<string, string> = {};
    let j = i;
    if (!this.om) while (isBlank(s.charCodeAt(j))) j++;
    const braces = s.charCodeAt(j) === LBRACE;
    if (braces) i = this.labelSet(j + 1, end, labels, false);
    else this.labelCount = 0;
    this.sampleRest(meta, meta.family, name, labels, braces, i, end);
  }

  /** `{"my.metric",k="v"} 1`: the (UTF-8) metric name quoted inside the label set. */
  private quotedNameSample(start: number, end: number): void {
    const labels: Record<string, string> = {};
    this.quotedName = undefined;
    const i = this.labelSet(start + 1, end, labels, true);
    const name = this.quotedName;
    if (name === undefined) throw this.err('invalid metric name: a label set without a metric name');
    const meta = this.om ? this.omNamed(name) : this.textFamily(name);
    if (meta.family === null) return this.skip(meta, i, end, name);
    meta.hasSamples = true;
    this.sampleRest(meta, meta.family, name, labels, true, i, end);
  }

  /** OpenMetrics: the family of a sample name (the current family, if the name is one of its). */
  private omNamed(name: string): Meta {
    const cur = this.cur;
    if (cur && ((cur.bare && name === cur.name) || cur.suffixed.includes(name))) return cur;
    return this.omFamily(name);
  }

  /** The value, timestamp (and OpenMetrics exemplar) from just after the name or label set; then adds the sample. */
  private sampleRest(meta: Meta, family: Family, name: string, labels: Record<string, string>, braces: boolean, i: number, end: number): void {
    const s = this.s;
    const om = this.om;
    this.checkUtf8();
    const norm = this.normalized;
    if (norm !== '' && labels[norm] !== undefined) labels[norm] = openMetricsFloat(labels[norm]);
    const c = s.charCodeAt(i);
    if (om ? c !== SPACE : !isBlank(c) && !braces) throw this.err(`expected a space and a value after ${name}`);
    if (om) i++;
    else while (isBlank(s.charCodeAt(i))) i++;
    const value = this.value(i, end, name);
    const j = this.pos;
    const sample: Sample = { name, labels, value };
    const budget = this.budget;
    if (budget && this.held >= budget.max && !budget.keep(name, labels)) {
      // NOTE: let go before the OpenMetrics group checks, which compare a sample with the held ones before it.
      if (j < end && !om) this.textTail(sample, j, end);
      this.cut.set(family.name, (this.cut.get(family.name) ?? 0) + 1);
      return;
    }
    this.held++;
    if (om) {
      const exemplar = j < end ? this.omTail(sample, j, end) : -1;
      this.omSample(meta, family, sample);
      // NOTE: after omSample, which reads the sample's label names from keys: the exemplar's overwrite them.
      if (exemplar >= 0) this.exemplar(meta, name, exemplar, end);
    } else {
      if (j < end) this.textTail(sample, j, end);
      this.textChecks(meta, sample);
    }
    family.samples.push(sample);
  }

  /**
   * The sample value at i; leaves its end in pos. NOTE: plain decimals of up to 15 digits (most values) are read
   * in the same pass that finds their end, and exactly (see parseDecimalAt); the rest by parseFloatAt.
   */
  private value(i: number, end: number, name: string): number {
    const s = this.s;
    let j = i;
    let m = 0;
    let digits = 0;
    let fraction = 0;
    let c = s.charCodeAt(j);
    for (; c >= 48 && c <= 57; c = s.charCodeAt(++j), digits++) m = m * 10 + (c - 48);
    if (c === 46) {
      for (c = s.charCodeAt(++j); c >= 48 && c <= 57; c = s.charCodeAt(++j), digits++, fraction++) m = m * 10 + (c - 48);
    }
    if (digits > 0 && digits <= 15 && (j === end || c === SPACE || (c === TAB && !this.om))) {
      this.pos = j;
      return fraction === 0 ? m : m / POW10[fraction]!;
    }
    j = i;
    if (this.om) while (j < end && s.charCodeAt(j) !== SPACE) j++;
    else while (j < end && !isBlank(s.charCodeAt(j))) j++;
    const v = parseFloatAt(s, i, j);
    if (v === undefined) throw this.valueError(i, j, name);
    this.pos = j;
    return v;
  }

  /** Text: `[blanks timestamp-ms] blanks*` after the value. */
  private textTail(sample: Sample, i: number, end: number): void {
    const s = this.s;
    while (isBlank(s.charCodeAt(i))) i++;
    if (i === end) return;
    let j = i;
    while (j < end && !isBlank(s.charCodeAt(j))) j++;
    const ts = parseIntAt(s, i, j);
    if (ts === undefined) throw this.err(`expected integer as timestamp, got ${JSON.stringify(s.slice(i, j))}`);
    sample.timestampMs = ts;
    while (isBlank(s.charCodeAt(j))) j++;
    if (j !== end) throw this.err(`spurious string after timestamp: ${JSON.stringify(s.slice(j, end))}`);
  }

  /**
   * OpenMetrics: ` timestamp-seconds` and/or ` # {labels} value [timestamp]`, each after exactly one space.
   * Returns the index of the exemplar's `#`, or -1.
   */
  private omTail(sample: Sample, i: number, end: number): number {
    const s = this.s;
    i++; // the space after the value
    if (s.charCodeAt(i) !== HASH) {
      let j = i;
      while (j < end && s.charCodeAt(j) !== SPACE) j++;
      const ts = omTimestampAt(s, i, j);
      if (ts === undefined) throw this.err(`invalid timestamp ${JSON.stringify(s.slice(i, j))}`);
      sample.timestampMs = ts;
      if (j === end) return -1;
      i = j + 1;
      if (s.charCodeAt(i) !== HASH) throw this.err(`unexpected text after the timestamp: ${JSON.stringify(s.slice(j, end))}`);
    }
    return i;
  }

  /** OpenMetrics exemplar from its `#`: validated and dropped. */
  private exemplar(meta: Meta, name: string, i: number, end: number): void {
    const s = this.s;
    const t = meta.type;
    const allowed = (t === 'counter' && name.endsWith('_total')) || ((t === 'histogram' || t === 'gaugehistogram') && name.endsWith('_bucket'));
    if (!allowed) this.warn('invalid_exemplar', `exemplars are not allowed on ${name}`);
    if (s.charCodeAt(i + 1) !== SPACE || s.charCodeAt(i + 2) !== LBRACE) throw this.err('an exemplar must be "# {labels} value [timestamp]"');
    const labels: Record<string, string> = {};
    i = this.labelSet(i + 3, end, labels, false);
    let runes = 0;
    for (const k in labels) runes += codePoints(k) + codePoints(labels[k]!);
    if (runes > 128) this.warn('invalid_exemplar', `exemplar labels have ${runes} characters, more than 128`);
    if (s.charCodeAt(i) !== SPACE) throw this.err('an exemplar needs a value');
    let j = ++i;
    while (j < end && s.charCodeAt(j) !== SPACE) j++;
    if (parseFloatAt(s, i, j) === undefined) throw this.err(`invalid exemplar value ${JSON.stringify(s.slice(i, j))}`);
    if (j < end && omTimestampAt(s, j + 1, end) === undefined) throw this.err(`invalid exemplar timestamp ${JSON.stringify(s.slice(j + 1, end))}`);
  }

  /** Text 0.0.4, as expfmt checks (Prometheus does not: warnings): `le` and `quantile` are floats, histogram counts are not negative. */
  private textChecks(meta: Meta, sample: Sample): void {
    const t = meta.type;
    if (t === 'untyped' || t === 'counter' || t === 'gauge') return;
    const name = sample.name;
    const bucket = name !== meta.name && name.endsWith('_bucket');
    if (bucket && parseFloatString(sample.labels['le']) === undefined) this.warn('invalid_histogram', `expected float as value for 'le' label`);
    if (t === 'summary' && name === meta.name && parseFloatString(sample.labels['quantile']) === undefined) this.warn('invalid_sample', `expected float as value for 'quantile' label`);
    if (t === 'histogram' && sample.value < 0) {
      if (bucket) this.warn('invalid_histogram', `negative bucket population for histogram ${JSON.stringify(meta.name)}`);
      if (name.endsWith('_count') && name !== meta.name) this.warn('invalid_histogram', `negative count for histogram ${JSON.stringify(meta.name)}`);
    }
  }

  /** OpenMetrics per-sample rules, then grouping: a new MetricPoint group closes (and validates) the previous one. */
  private omSample(meta: Meta, family: Family, sample: Sample): void {
    const { name, labels, value } = sample;
    const t = meta.type;
    const base = meta.name;
    const notNegative = value >= 0; // false for NaN too
    let problem: string | undefined;
    if (t === 'counter') {
      if (name.endsWith('_total') && !notNegative) problem = `${name} must not be negative or NaN`;
    } else if (t === 'histogram' || t === 'gaugehistogram') {
      if (name.endsWith('_bucket')) {
        if (labels['le'] === undefined) problem = `${name} needs an le label`;
        else if (!notNegative) problem = `${name} must not be negative or NaN`;
      } else if (name.endsWith('count') && !notNegative) problem = `${name} must not be negative or NaN`;
    } else if (t === 'summary') {
      if (name === base) {
        const q = parseDecimalString(labels['quantile']);
        if (q === undefined || q < 0 || q > 1) problem = `${name} needs a quantile label between 0 and 1`;
        else if (value < 0) problem = `summary quantile values must not be negative`;
      } else if (!name.endsWith('_created') && !notNegative) problem = `${name} must not be negative or NaN`;
    } else if (t === 'info') {
      if (value !== 1) problem = `info values must be 1`;
    } else if (t === 'stateset') {
      if (value !== 0 && value !== 1) problem = `stateset values must be 0 or 1`;
      else if (labels[base] === undefined) problem = `stateset samples need a label named ${base}`;
    }
    if (problem !== undefined) this.warn('invalid_sample', problem);
    // The group goes on while the labels but the ignored one are those of the previous sample (compared along
    // this sample's label names, left in keys by labelSet, and by count).
    const samples = family.samples;
    const ignored = groupIgnores(meta);
    const prev = samples.length > 0 ? samples[samples.length - 1]!.labels : undefined;
    let same = prev !== undefined;
    let size = 0;
    for (let k = 0; k < this.labelCount; k++) {
      const key = this.keys[k]!;
      if (key === ignored) continue;
      size++;
      if (prev?.[key] !== labels[key]) same = false;
    }
    if (!same || size !== this.groupSize) {
      if (this.groupStart < samples.length) this.closeGroup(meta, family);
      if (ignored !== '') {
        // NOTE: only for histograms, summaries and statesets, whose MetricPoints are several lines by nature:
        // elsewhere a label set seen again is mostly a duplicate series; not checked, which spares a key per sample.
        const key = groupKey(labels, ignored);
        if (this.groups.has(key)) this.warn('family_not_contiguous', `samples of ${base}{${key}} are not together`);
        this.groups.add(key);
      }
      this.groupStart = samples.length;
      this.groupSize = size;
      this.groupTimestamps = false;
    }
    if (sample.timestampMs !== undefined) this.groupTimestamps = true;
    this.lines.push(this.line);
  }

  /** OpenMetrics: validates the current family's last group and forgets its groups. */
  private finishFamily(): void {
    const meta = this.cur;
    if (meta?.family && meta.family.samples.length > this.groupStart) this.closeGroup(meta, meta.family);
    this.groups.clear();
    this.lines.length = 0;
    this.groupStart = 0;
  }

  /** OpenMetrics rules of one group (samples of one label set), warned about at the line of the offending sample. */
  private closeGroup(meta: Meta, family: Family): void {
    const problem = this.groupProblem(meta, family.samples, this.groupStart);
    if (problem) this.warn(problem.reason, problem.message, this.lines[problem.at]);
  }

  /** The first broken rule of a group: timestamps per series, histogram structure. */
  private groupProblem(meta: Meta, samples: Sample[], from: number): GroupProblem | undefined {
    const fail = (at: number, message: string): GroupProblem => ({ at, message, reason: 'invalid_sample' });
    if (this.groupTimestamps) {
      // Samples of one series: all with a timestamp or none, and timestamps never going back.
      const ignored = groupIgnores(meta);
      const last = new Map<string, number | undefined>();
      for (let k = from; k < samples.length; k++) {
        const smp = samples[k]!;
        const series = `${smp.name}\u0000${ignored ? (smp.labels[ignored] ?? '') : ''}`;
        if (last.has(series)) {
          const prev = last.get(series);
          if ((prev === undefined) !== (smp.timestampMs === undefined)) return fail(k, `${smp.name} has samples with and without timestamps`);
          if (prev !== undefined && smp.timestampMs! < prev) return fail(k, `timestamps of ${smp.name} go backwards`);
        }
        last.set(series, smp.timestampMs);
      }
    }
    if (meta.type === 'histogram' || meta.type === 'gaugehistogram') return histogramProblem(meta, samples, from);
    return undefined;
  }

  /**
   * Labels from just after `{` up to and including `}`; returns the index after `}`. Both formats allow a trailing
   * comma, quoted label names and, with allowName, one bare quoted string: the metric name (left in quotedName).
   * Text 0.0.4 also allows blanks around every token, and blanks or nothing between labels (as Prometheus does).
   */
  private labelSet(i: number, end: number, labels: Record<string, string>, allowName: boolean): number {
    const s = this.s;
    const om = this.om;
    let n = 0;
    if (!om) while (isBlank(s.charCodeAt(i))) i++;
    while (s.charCodeAt(i) !== RBRACE) {
      if (i >= end) throw this.err('unexpected end of label set');
      let key: string;
      const cached = this.keys[n];
      if (cached !== undefined && s.startsWith(cached, i) && !is(s.charCodeAt(i + cached.length), LABEL)) {
        // The label name at this position on the last line: no scan, no slice.
        key = cached;
        i += key.length;
        if (!om) while (isBlank(s.charCodeAt(i))) i++;
        if (s.charCodeAt(i) !== EQUALS) throw this.err(`expected '=' after label name ${key}`);
      } else if (s.charCodeAt(i) === QUOTE) {
        key = this.labelValue(i + 1, end);
        this.keys[n] = '\n'; // matches no later line: a quoted name may hold what an unquoted one may not
        i = this.pos;
        if (!om) while (isBlank(s.charCodeAt(i))) i++;
        if (s.charCodeAt(i) !== EQUALS) {
          if (!allowName) throw this.err(`unexpected quoted name ${JSON.stringify(key)} in a label set`);
          if (this.quotedName !== undefined) throw this.err(`multiple metric names: ${JSON.stringify(this.quotedName)} and ${JSON.stringify(key)}`);
          this.quotedName = key;
          i = this.labelEnd(i, end);
          continue;
        }
      } else {
        const start = i;
        if (!is(s.charCodeAt(i), LABEL_START)) throw this.err(`invalid label name at ${JSON.stringify(s.slice(i, Math.min(end, i + 20)))}`);
        while (is(s.charCodeAt(++i), LABEL));
        key = this.keys[n] = s.slice(start, i);
        if (!om) while (isBlank(s.charCodeAt(i))) i++;
        if (s.charCodeAt(i) !== EQUALS) throw this.err(`expected '=' after label name ${key}`);
      }
      i++;
      if (!om) while (isBlank(s.charCodeAt(i))) i++;
      if (s.charCodeAt(i) !== QUOTE) throw this.err(`expected '"' at start of the value of label ${key}`);
      const value = this.labelValue(i + 1, end);
      if (key === '__name__') throw this.err('label name "__name__" is reserved');
      if (Object.hasOwn(labels, key)) throw this.err(`duplicate label name ${key}`);
      if (key === '__proto__') Object.defineProperty(labels, key, { value, enumerable: true, writable: true, configurable: true });
      else labels[key] = value;
      n++;
      i = this.labelEnd(this.pos, end);
    }
    this.labelCount = n;
    return i + 1;
  }

  /** After a label (or quoted name): the index of the next label, or of `}`. */
  private labelEnd(i: number, end: number): number {
    const s = this.s;
    if (this.om) {
      const c = s.charCodeAt(i);
      if (c === COMMA) return i + 1;
      if (c === RBRACE) return i;
      throw this.err('expected , or } after a label');
    }
    while (isBlank(s.charCodeAt(i))) i++;
    const c = s.charCodeAt(i);
    if (c === COMMA) {
      i++;
      while (isBlank(s.charCodeAt(i))) i++;
      return i;
    }
    // NOTE: Prometheus takes a label right after the last one, with blanks or nothing between them.
    if (c === RBRACE || i < end) return i;
    throw this.err('unexpected end of label set');
  }

  /**
   * A quoted string from just after its opening quote (label value, or a quoted name in the text format); leaves
   * the index after the closing quote in pos. Escapes: `\\`, `\"`, `\n`; others are kept as they are (as
   * Prometheus does; expfmt refuses them).
   */
  private labelValue(i: number, end: number): string {
    const s = this.s;
    const q = s.indexOf('"', i);
    if (q < 0 || q >= end) throw this.err('unexpected end of label value (no closing quote on the line)');
    if (this.backslashFrom(i) > q) {
      this.pos = q + 1;
      return s.slice(i, q);
    }
    let out = '';
    let from = i;
    for (;;) {
      if (i >= end) throw this.err('unexpected end of label value (no closing quote on the line)');
      const c = s.charCodeAt(i);
      if (c === QUOTE) break;
      if (c !== BACKSLASH) {
        i++;
        continue;
      }
      const e = s.charCodeAt(i + 1);
      if (e === 110) out += `${s.slice(from, i)}\n`;
      else if (e === BACKSLASH || e === QUOTE) out += s.slice(from, i) + s[i + 1]!;
      else if (i + 1 < end) out += s.slice(from, i + 2);
      else throw this.err(`invalid escape sequence ${JSON.stringify(s.slice(i, i + 2))}`);
      i += 2;
      from = i;
    }
    this.pos = i + 1;
    return out + s.slice(from, i);
  }

  /**
   * The rest of a line of an unselected family. Its first sample line is checked for shape only (a label set
   * closed by a `}` outside quotes, then a valid value); a bad one fails the parse only if nothing selected has
   * samples (a body that is not an exposition at all), never the selected families.
   * NOTE: later lines are not read at all: checking each one cost a third of the time of a page parsed with ~1%
   * of its families selected.
   */
  private skip(meta: Meta, i: number, end: number, name: string): void {
    if (meta.hasSamples) return;
    meta.hasSamples = true;
    const s = this.s;
    while (isBlank(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) === LBRACE) {
      let quoted = false;
      for (i++; ; i++) {
        if (i >= end) return this.unselectedBad(`unterminated label set of ${name}`);
        const c = s.charCodeAt(i);
        if (quoted) {
          if (c === BACKSLASH) i++;
          else if (c === QUOTE) quoted = false;
        } else if (c === QUOTE) quoted = true;
        else if (c === RBRACE) break;
      }
      i++;
      while (isBlank(s.charCodeAt(i))) i++;
    }
    let j = i;
    while (j < end && !isBlank(s.charCodeAt(j))) j++;
    if (parseFloatAt(s, i, j) === undefined) this.unselectedBad(this.valueError(i, j, name).message.slice(`line ${this.line}: `.length));
  }

  private unselectedBad(reason: string): void {
    this.unselectedError ??= this.err(reason);
  }

  /**
   * The index of the first backslash at or after i (s.length if none). NOTE: cached, and scans move forward, so
   * the whole body is searched once in total; text without escapes then needs no per-character check.
   */
  private backslashFrom(i: number): number {
    if (this.nextBackslash < i) {
      this.nextBackslash = this.s.indexOf('\\', i);
      if (this.nextBackslash < 0) this.nextBackslash = this.s.length;
    }
    return this.nextBackslash;
  }

  private valueError(i: number, j: number, name: string): ParseError {
    const text = this.s.slice(i, j);
    // NOTE: CRLF line ends are not accepted (neither Prometheus parser does); say so rather than just "invalid".
    return this.err(`invalid value ${JSON.stringify(text)} for ${name}${text.endsWith('\r') ? ' (lines must end with \\n, not \\r\\n)' : ''}`);
  }
}
