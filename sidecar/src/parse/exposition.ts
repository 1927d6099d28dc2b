// Prometheus text format 0.0.4 and OpenMetrics 1.0 parser, written for the sidecar's hot path: one pass over
// the string with charCodeAt, no regex per line, and the samples of unselected families skipped after reading
// only their metric name.

export type Format = 'text' | 'openmetrics';
export type FamilyType = 'counter' | 'gauge' | 'histogram' | 'gaugehistogram' | 'summary' | 'untyped' | 'unknown' | 'info' | 'stateset';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface Family {
  name: string;
  type: FamilyType;
  help?: string;
  unit?: string;
  samples: Sample[];
}

/** A malformed exposition: the 1-based line and what is wrong with it. */
export class ParseError extends Error {
  override readonly name = 'ParseError';
  constructor(readonly line: number, reason: string) {
    super(`line ${line}: ${reason}`);
  }
}

/** Decodes a scraped body as UTF-8; invalid UTF-8 is a ParseError naming the line, never silently replaced. */
export function decodeBody(body: Uint8Array): string {
  try {
    return UTF8.decode(body);
  } catch {
    let line = 1;
    let ok = 0;
    // Find the first invalid byte's line: the longest valid prefix, then count its newlines.
    for (let i = 0; i < body.length; i++) {
      if (body[i] === 10) line++;
      try {
        UTF8.decode(body.subarray(ok, i + 1));
      } catch {
        if (i + 1 - ok > 4) throw new ParseError(line, 'invalid UTF-8');
        continue;
      }
      ok = i + 1;
    }
    throw new ParseError(line, 'invalid UTF-8');
  }
}
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The format of a Content-Type: application/openmetrics-text is OpenMetrics, anything else text 0.0.4. */
export function formatFromContentType(contentType: string | undefined): Format {
  return contentType && /^\s*application\/openmetrics-text/i.test(contentType) ? 'openmetrics' : 'text';
}

const TEXT_TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped', 'gaugehistogram', 'gauge_histogram']);
const OM_TYPES = new Set(['counter', 'gauge', 'histogram', 'gaugehistogram', 'summary', 'unknown', 'info', 'stateset']);
const SUFFIXES: Record<string, readonly string[]> = {
  counter: ['_total', '_created'],
  histogram: ['_bucket', '_sum', '_count', '_created'],
  gaugehistogram: ['_bucket', '_gsum', '_gcount'],
  summary: ['_sum', '_count', '_created'],
  info: ['_info'],
};
// Text 0.0.4 names families as declared; a counter's samples carry that exact name.
const TEXT_SUFFIXES: Record<string, readonly string[]> = { histogram: ['_bucket', '_sum', '_count'], gaugehistogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'] };

const SPACE = 32;
const TAB = 9;
const HASH = 35;
const LBRACE = 123;
const RBRACE = 125;
const QUOTE = 34;
const BACKSLASH = 92;
const EQUALS = 61;
const COMMA = 44;

function isNameStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58;
}
function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57);
}
function isLabelStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}
function isLabelChar(c: number): boolean {
  return isLabelStart(c) || (c >= 48 && c <= 57);
}

/**
 * Parses a whole exposition. Throws ParseError (with its 1-based line) on the first malformed line, so a caller
 * never sees half a scrape. `select(familyName)` decides which families are kept: lines of unselected families
 * are not parsed beyond their metric name, so errors inside them are not reported.
 */
export function parseExposition(body: string, format: Format, select?: (familyName: string) => boolean): Family[] {
  return new Parser(body, format, select).run();
}

class Parser {
  private pos = 0;
  private line = 0;
  private readonly om: boolean;
  private readonly families: Family[] = [];
  private readonly seen = new Map<string, Family | null>();
  private current: Family | null | undefined; // undefined: none yet; null: current family not selected
  private currentName = '';
  private currentType: FamilyType = 'untyped';
  private currentHasSamples = false;
  private eof = false;

  constructor(private readonly s: string, format: Format, private readonly select?: (name: string) => boolean) {
    this.om = format === 'openmetrics';
  }

  run(): Family[] {
    const s = this.s;
    const n = s.length;
    while (this.pos < n) {
      let end = s.indexOf('\n', this.pos);
      const terminated = end >= 0;
      if (!terminated) end = n;
      this.line++;
      if (this.eof) throw this.err('content after # EOF');
      this.parseLine(this.pos, end);
      this.pos = end + 1;
      if (!terminated && this.om && !this.eof) throw this.err('the last line must end with a newline');
    }
    if (this.om && !this.eof) throw new ParseError(this.line + 1, 'missing # EOF at the end');
    if (this.om) for (const f of this.families) validateOmFamily(f, (smp) => this.sampleLines.get(smp) ?? this.line);
    return this.families.filter((f) => f.samples.length > 0);
  }

  err(reason: string): ParseError {
    return new ParseError(this.line, reason);
  }

  private parseLine(start: number, end: number): void {
    const s = this.s;
    if (start === end) {
      if (this.om) throw this.err('blank lines are not allowed in OpenMetrics');
      return;
    }
    const c0 = s.charCodeAt(start);
    if (c0 === HASH) return this.parseComment(start, end);
    if (!this.om && (c0 === SPACE || c0 === TAB)) {
      // 0.0.4 allows leading whitespace; a whitespace-only line is blank.
      let i = start;
      while (i < end && (s.charCodeAt(i) === SPACE || s.charCodeAt(i) === TAB)) i++;
      if (i === end) return;
      if (s.charCodeAt(i) === HASH) return this.parseComment(i, end);
      return this.parseSample(i, end);
    }
    this.parseSample(start, end);
  }

  private parseComment(start: number, end: number): void {
    const s = this.s;
    // "# EOF", "# HELP name text", "# TYPE name type", "# UNIT name unit"; other comments: text only.
    if (this.om && end - start === 5 && s.startsWith('# EOF', start)) {
      this.eof = true;
      return;
    }
    let i = start + 1;
    if (s.charCodeAt(i) !== SPACE) {
      if (this.om) throw this.err('comments must start with "# "');
      return;
    }
    i++;
    if (!this.om) while (i < end && (s.charCodeAt(i) === SPACE || s.charCodeAt(i) === TAB)) i++;
    let kwEnd = i;
    while (kwEnd < end && s.charCodeAt(kwEnd) !== SPACE && s.charCodeAt(kwEnd) !== TAB) kwEnd++;
    const kw = s.slice(i, kwEnd);
    if (kw !== 'HELP' && kw !== 'TYPE' && kw !== (this.om ? 'UNIT' : '\u0000')) {
      if (this.om) throw this.err(`unknown metadata ${JSON.stringify(kw)}`);
      return;
    }
    i = kwEnd;
    if (i >= end || s.charCodeAt(i) !== SPACE) {
      if (this.om) throw this.err(`# ${kw} needs a metric name`);
      return; // 0.0.4: "# HELP" alone is an ordinary comment
    }
    i++;
    if (!this.om) while (i < end && (s.charCodeAt(i) === SPACE || s.charCodeAt(i) === TAB)) i++;
    let name: string;
    if (!this.om && s.charCodeAt(i) === QUOTE) {
      const q = this.quoted(i + 1, end, 'quoted metric name');
      name = q.text;
      i = q.end;
    } else {
      const nameStart = i;
      if (i >= end || !isNameStart(s.charCodeAt(i))) throw this.err(`# ${kw} needs a valid metric name`);
      while (i < end && isNameChar(s.charCodeAt(i))) i++;
      name = s.slice(nameStart, i);
    }
    if (!this.om && i >= end) return; // "# HELP name" without text: an ordinary comment in 0.0.4
    let rest = '';
    if (i < end) {
      const c = s.charCodeAt(i);
      if (c !== SPACE && (this.om || c !== TAB)) throw this.err(`invalid metric name in # ${kw}`);
      i++;
      if (!this.om) while (i < end && (s.charCodeAt(i) === SPACE || s.charCodeAt(i) === TAB)) i++;
      rest = s.slice(i, end);
    } else if (this.om && kw !== 'HELP') {
      throw this.err(`# ${kw} ${name} needs a value`);
    }
    if (this.om) {
      if (rest !== rest.trimEnd() || /\t/.test(rest) || (kw === 'HELP' && i >= end && rest === '' && s.charCodeAt(end - 1) !== SPACE)) throw this.err(`malformed # ${kw} line`);
      if (this.currentHasSamples && this.currentName === name) throw this.err(`# ${kw} for ${name} after its samples`);
      if (kw === 'UNIT') {
        if (this.unitOf.has(name)) throw this.err(`second # UNIT for ${name}`);
        this.unitOf.add(name);
        const t = this.typeOf.get(name);
        if (t === 'info' || t === 'stateset') throw this.err(`${t} metrics have no unit`);
      }
      if (kw === 'TYPE') {
        for (const suffix of SUFFIXES[rest] ?? []) if (this.seen.has(name + suffix)) throw this.err(`${name + suffix} clashes with the ${rest} ${name}`);
      }
    }
    const fam = this.family(name, true);
    if (kw === 'TYPE') {
      let type = rest.trim();
      if (!(this.om ? OM_TYPES : TEXT_TYPES).has(type)) throw this.err(`unknown metric type ${JSON.stringify(type)}`);
      if (type === 'gauge_histogram') type = 'gaugehistogram';
      if (this.typed.has(name)) throw this.err(`second # TYPE for ${name}`);
      if (this.currentHasSamples && this.currentName === name) throw this.err(`# TYPE for ${name} after its samples`);
      this.typed.add(name);
      this.typeOf.set(name, type as FamilyType);
      this.currentType = type as FamilyType;
      if (fam) fam.type = type as FamilyType;
    } else if (kw === 'HELP') {
      if (this.helped.has(name)) throw this.err(`second # HELP for ${name}`);
      this.helped.add(name);
      if (fam) fam.help = unescape(rest, false, this);
      else unescape(rest, false, this);
    } else {
      if (this.om && rest !== '' && !name.endsWith(`_${rest}`)) throw this.err(`unit ${rest} must be a suffix of the metric name ${name}`);
      if (fam) fam.unit = rest;
    }
  }

  private readonly typed = new Set<string>();
  /** OpenMetrics only: the line of each sample, for errors found when its family is complete. */
  private readonly sampleLines = new Map<Sample, number>();
  private readonly unitOf = new Set<string>();
  /** Declared types, also of unselected families (whose Family object is null). */
  private readonly typeOf = new Map<string, FamilyType>();
  private readonly helped = new Set<string>();

  /** Switches the current family (from metadata, or a sample of an undeclared name) and returns it (null: not selected). */
  private family(name: string, fromMetadata: boolean): Family | null {
    if (name === this.currentName && this.current !== undefined) return this.current;
    if (this.seen.has(name)) {
      // Metadata or samples of a family interleaved with another one.
      if (this.om || fromMetadata) throw this.err(`metric family ${name} appears twice (its lines must be contiguous)`);
    }
    const selected = this.select ? this.select(name) : true;
    const fam: Family | null = selected ? { name, type: this.om ? 'unknown' : 'untyped', samples: [] } : null;
    if (fam) this.families.push(fam);
    this.seen.set(name, fam);
    this.current = fam;
    this.currentName = name;
    this.currentType = this.om ? 'unknown' : 'untyped';
    this.currentHasSamples = false;
    return fam;
  }

  /** The family a sample name belongs to, given the current family. */
  private familyFor(sampleName: string): Family | null {
    if (this.current !== undefined) {
      const base = this.currentName;
      if (sampleName === base) {
        if (this.om && (this.currentType === 'counter' || this.currentType === 'info' || this.currentType === 'histogram' || this.currentType === 'gaugehistogram' || this.currentType === 'summary')) {
          if (!(this.currentType === 'summary')) throw this.err(`a ${this.currentType} sample must have a suffix (${(SUFFIXES[this.currentType] ?? []).join(', ')})`);
        }
        return this.current;
      }
      if (sampleName.length > base.length && sampleName.startsWith(base)) {
        const suffix = sampleName.slice(base.length);
        const allowed = (this.om ? SUFFIXES : TEXT_SUFFIXES)[this.currentType];
        if (allowed?.includes(suffix)) return this.current;
      }
    }
    if (!this.om) {
      for (const suffix of ['_bucket', '_sum', '_count']) {
        if (!sampleName.endsWith(suffix)) continue;
        const base = sampleName.slice(0, -suffix.length);
        const fam = this.seen.get(base);
        const type = fam?.type ?? this.typeOf.get(base);
        if (type !== undefined && TEXT_SUFFIXES[type]?.includes(suffix) && this.seen.has(base)) {
          this.current = fam ?? null;
          this.currentName = base;
          this.currentType = type;
          return fam ?? null;
        }
      }
    }
    if (this.seen.has(sampleName) && !this.om) {
      // 0.0.4: samples of one family separated by others are accepted (the Go parser merges them).
      const fam = this.seen.get(sampleName)!;
      this.current = fam;
      this.currentName = sampleName;
      this.currentType = fam?.type ?? 'untyped';
      return fam;
    }
    return this.family(sampleName, false);
  }

  private parseSample(start: number, end: number): void {
    const s = this.s;
    let i = start;
    let name: string;
    let labels: Record<string, string> | undefined;
    if (!this.om && s.charCodeAt(i) === LBRACE) {
      // Newer text format: the (UTF-8, quoted) metric name inside the braces: {"my.metric",k="v"}.
      labels = {};
      const r = this.parseLabels(i + 1, end, labels, true);
      if (r.name === undefined) throw this.err('a label set without a metric name');
      name = r.name;
      i = r.end;
    } else {
      // Fast path: another line of the current, unselected family is skipped without even slicing its name.
      if (this.current === null) {
        const k = this.sameFamilyEnd(start, end);
        if (k >= 0) return this.skipSample(k, end, this.currentName, false);
      }
      if (!isNameStart(s.charCodeAt(i))) throw this.err(`invalid metric name at ${JSON.stringify(s.slice(i, Math.min(end, i + 20)))}`);
      while (i < end && isNameChar(s.charCodeAt(i))) i++;
      name = s.slice(start, i);
    }
    const fam = this.familyFor(name);
    this.currentHasSamples = true;
    if (fam === null) return this.skipSample(i, end, name, labels !== undefined); // not selected
    if (!labels) {
      labels = {};
      let j = i;
      if (!this.om) while (j < end && (s.charCodeAt(j) === SPACE || s.charCodeAt(j) === TAB)) j++;
      if (j < end && s.charCodeAt(j) === LBRACE) i = this.parseLabels(j + 1, end, labels, false).end;
    }
    const afterLabels = i > start && s.charCodeAt(i - 1) === RBRACE;
    if (this.om || !afterLabels) {
      // NOTE: 0.0.4 takes a value right after a label set ("m{a="b"}1"); OpenMetrics wants exactly one space.
      if (i >= end || (s.charCodeAt(i) !== SPACE && s.charCodeAt(i) !== TAB)) throw this.err(`expected a space and a value after ${name}`);
      if (this.om && s.charCodeAt(i) !== SPACE) throw this.err('values must follow a single space');
      i++;
    }
    if (!this.om) while (i < end && (s.charCodeAt(i) === SPACE || s.charCodeAt(i) === TAB)) i++;
    let j = i;
    while (j < end && s.charCodeAt(j) !== SPACE && s.charCodeAt(j) !== TAB) j++;
    if (this.om && (s.charCodeAt(end - 1) === SPACE || s.charCodeAt(end - 1) === TAB)) throw this.err('trailing whitespace');
    const value = parseValue(s.slice(i, j), this.om);
    if (value === undefined) throw this.err(`invalid value ${JSON.stringify(s.slice(i, j))} for ${name}`);
    const sample: Sample = { name, labels, value };
    i = j;
    if (i < end) {
      if (!this.om) while (i < end && (s.charCodeAt(i) === SPACE || s.charCodeAt(i) === TAB)) i++;
      else i++;
      if (i < end && s.charCodeAt(i) !== HASH) {
        j = i;
        while (j < end && s.charCodeAt(j) !== SPACE && s.charCodeAt(j) !== TAB) j++;
        const ts = s.slice(i, j);
        const ms = this.om ? parseOmTimestamp(ts) : parseTextTimestamp(ts);
        if (ms === undefined) throw this.err(`invalid timestamp ${JSON.stringify(ts)}`);
        sample.timestampMs = ms;
        i = j;
        if (!this.om) while (i < end && (s.charCodeAt(i) === SPACE || s.charCodeAt(i) === TAB)) i++;
        else if (i < end) i++;
      }
      if (i < end) {
        if (this.om && s.charCodeAt(i) === HASH) this.parseExemplar(i, end, fam.type, name);
        else throw this.err(`unexpected text after the value of ${name}: ${JSON.stringify(s.slice(i, Math.min(end, i + 30)))}`);
      }
    }
    if (this.om) this.checkOmValue(fam, name, sample);
    else this.checkTextValue(fam, name, sample);
    fam.samples.push(sample);
    if (this.om) this.sampleLines.set(sample, this.line);
  }

  /** Text 0.0.4: le and quantile must be floats, histogram counts not negative (as expfmt checks). */
  /** If the line at start names the current family (or one of its typed suffixes), the index after the name; else -1. */
  private sameFamilyEnd(start: number, end: number): number {
    const s = this.s;
    const base = this.currentName;
    if (!s.startsWith(base, start)) return -1;
    let k = start + base.length;
    if (k < end && isNameChar(s.charCodeAt(k))) {
      const suffixes = (this.om ? SUFFIXES : TEXT_SUFFIXES)[this.currentType];
      const suffix = suffixes?.find((x) => s.startsWith(x, k));
      if (!suffix) return -1;
      k += suffix.length;
      if (k < end && isNameChar(s.charCodeAt(k))) return -1;
    }
    return k;
  }

  /**
   * The rest of a sample line of an unselected family: checked for shape only (a balanced label set, then a
   * value), without building labels, so garbage still fails the scrape while skipping stays cheap.
   */
  private skipSample(i: number, end: number, name: string, labelsDone: boolean): void {
    const s = this.s;
    if (!this.om) while (i < end && (s.charCodeAt(i) === SPACE || s.charCodeAt(i) === TAB)) i++;
    if (!labelsDone && i < end && s.charCodeAt(i) === LBRACE) {
      // Jump from quote to quote with indexOf (native), so a `}` inside a value does not end the set.
      i++;
      for (;;) {
        const close = s.indexOf('}', i);
        const quote = s.indexOf('"', i);
        if (close < 0 || close >= end) throw this.err(`unterminated label set of ${name}`);
        if (quote < 0 || quote > close) {
          i = close + 1;
          break;
        }
        let q = quote + 1;
        for (;;) {
          q = s.indexOf('"', q);
          if (q < 0 || q >= end) throw this.err(`unterminated label set of ${name}`);
          let backslashes = 0;
          while (s.charCodeAt(q - 1 - backslashes) === BACKSLASH) backslashes++;
          if (backslashes % 2 === 0) break;
          q++;
        }
        i = q + 1;
      }
    }
    while (i < end && (s.charCodeAt(i) === SPACE || s.charCodeAt(i) === TAB)) i++;
    let j = i;
    while (j < end && s.charCodeAt(j) !== SPACE && s.charCodeAt(j) !== TAB) j++;
    if (!isDecimalAt(s, i, j) && parseValue(s.slice(i, j), this.om) === undefined) throw this.err(`invalid value ${JSON.stringify(s.slice(i, j))} for ${name}`);
  }

  private checkTextValue(fam: Family, name: string, sample: Sample): void {
    const t = fam.type;
    const float = (v: string | undefined) => v !== undefined && parseValue(v, false) !== undefined;
    if ((t === 'histogram' || t === 'gaugehistogram') && name.endsWith('_bucket') && !float(sample.labels['le'])) throw this.err(`expected float as value for 'le' label`);
    if (t === 'summary' && name === fam.name && !float(sample.labels['quantile'])) throw this.err(`expected float as value for 'quantile' label`);
    if (t === 'histogram' && (name.endsWith('_bucket') || name.endsWith('_count')) && sample.value < 0) throw this.err(`negative count for histogram ${fam.name}`);
  }

  private checkOmValue(fam: Family, name: string, sample: Sample): void {
    if (fam.type === 'summary' && (name.endsWith('_sum') || name.endsWith('_count')) && (Number.isNaN(sample.value) || sample.value < 0)) {
      throw this.err(`${name} must not be negative or NaN`);
    }
    const t = fam.type;
    const v = sample.value;
    if ((t === 'counter' && name.endsWith('_total')) || name.endsWith('_count') || name.endsWith('_bucket') || (t === 'summary' && name.endsWith('_sum')) || (t === 'histogram' && name.endsWith('_sum'))) {
      if (v < 0 || Number.isNaN(v) && !(t === 'summary' && name.endsWith('_sum'))) {
        if (!(t === 'gaugehistogram')) throw this.err(`${name} must not be negative or NaN`);
      }
    }
    if ((name.endsWith('_bucket') && t !== 'gaugehistogram' && t !== 'histogram') || ((t === 'histogram' || t === 'gaugehistogram') && name.endsWith('_bucket') && !('le' in sample.labels))) {
      throw this.err(`${name} needs an le label`);
    }
    if (t === 'summary' && name === fam.name && !('quantile' in sample.labels)) throw this.err(`${name} needs a quantile label`);
    if (t === 'stateset' && v !== 0 && v !== 1) throw this.err(`stateset values must be 0 or 1`);
  }

  /** Reads a quoted string from just after its opening quote; returns the unescaped text and the index after the closing quote. */
  private quoted(i: number, end: number, what: string): { text: string; end: number } {
    const s = this.s;
    const start = i;
    let escaped = false;
    while (i < end && s.charCodeAt(i) !== QUOTE) {
      if (s.charCodeAt(i) === BACKSLASH) {
        escaped = true;
        i++;
      }
      i++;
    }
    if (i >= end) throw this.err(`unterminated ${what}`);
    const raw = s.slice(start, i);
    return { text: escaped ? unescape(raw, true, this, !this.om) : raw, end: i + 1 };
  }

  /**
   * Labels `k="v",...}` from just after `{`; returns the index after `}`. With allowName (text format), one
   * entry may be a bare quoted string: the metric name; label names may be quoted too.
   */
  private parseLabels(i: number, end: number, labels: Record<string, string>, allowName: boolean): { end: number; name?: string } {
    const s = this.s;
    let name: string | undefined;
    const ws = () => {
      if (!this.om) while (i < end && (s.charCodeAt(i) === SPACE || s.charCodeAt(i) === TAB)) i++;
    };
    ws();
    while (i < end && s.charCodeAt(i) !== RBRACE) {
      let key: string;
      if (!this.om && s.charCodeAt(i) === QUOTE) {
        const q = this.quoted(i + 1, end, 'quoted name');
        i = q.end;
        ws();
        if (s.charCodeAt(i) !== EQUALS) {
          if (!allowName || name !== undefined) throw this.err(`unexpected quoted name ${JSON.stringify(q.text)} in a label set`);
          name = q.text;
          if (s.charCodeAt(i) === COMMA) {
            i++;
            ws();
          } else if (s.charCodeAt(i) !== RBRACE) throw this.err(`expected , or } after the metric name`);
          continue;
        }
        key = q.text;
      } else {
        const kStart = i;
        if (!isLabelStart(s.charCodeAt(i))) throw this.err(`invalid label name at ${JSON.stringify(s.slice(i, Math.min(end, i + 20)))}`);
        while (i < end && isLabelChar(s.charCodeAt(i))) i++;
        key = s.slice(kStart, i);
      }
      ws();
      if (s.charCodeAt(i) !== EQUALS) throw this.err(`expected = after label ${key}`);
      i++;
      ws();
      if (s.charCodeAt(i) !== QUOTE) throw this.err(`expected a quoted value for label ${key}`);
      i++;
      const vStart = i;
      let escaped = false;
      while (i < end && s.charCodeAt(i) !== QUOTE) {
        if (s.charCodeAt(i) === BACKSLASH) {
          escaped = true;
          i++;
        }
        i++;
      }
      if (i >= end) throw this.err(`unterminated value of label ${key}`);
      const raw = s.slice(vStart, i);
      i++;
      if (key === '__name__') throw this.err('label __name__ is not allowed');
      if (Object.prototype.hasOwnProperty.call(labels, key)) throw this.err(`duplicate label ${key}`);
      labels[key] = escaped ? unescape(raw, true, this, !this.om) : raw;
      ws();
      const c = s.charCodeAt(i);
      if (c === COMMA) {
        i++;
        ws();
        if (this.om && s.charCodeAt(i) === RBRACE) throw this.err('trailing comma in labels');
      } else if (c !== RBRACE && !(!this.om && s.charCodeAt(i - 1) === SPACE)) {
        // NOTE: 0.0.4 as the Prometheus server parses it also takes labels separated by whitespace alone.
        throw this.err(`expected , or } after label ${key}`);
      }
    }
    if (i >= end) throw this.err('unterminated label set');
    return { end: i + 1, ...(name !== undefined ? { name } : {}) };
  }

  /** OpenMetrics exemplar ` # {labels} value [timestamp]`: validated and dropped. */
  private parseExemplar(i: number, end: number, type: FamilyType, name: string): void {
    const s = this.s;
    const allowed = (type === 'counter' && name.endsWith('_total')) || ((type === 'histogram' || type === 'gaugehistogram') && name.endsWith('_bucket'));
    if (!allowed) throw this.err(`exemplars are not allowed on ${name}`);
    if (s.charCodeAt(i + 1) !== SPACE || s.charCodeAt(i + 2) !== LBRACE) throw this.err('invalid exemplar');
    const labels: Record<string, string> = {};
    i = this.parseLabels(i + 3, end, labels, false).end;
    let runes = 0;
    for (const [k, v] of Object.entries(labels)) runes += [...k].length + [...v].length;
    if (runes > 128) throw this.err('exemplar labels longer than 128 characters');
    if (s.charCodeAt(i) !== SPACE) throw this.err('exemplar needs a value');
    i++;
    let j = i;
    while (j < end && s.charCodeAt(j) !== SPACE) j++;
    if (parseValue(s.slice(i, j), true) === undefined) throw this.err('invalid exemplar value');
    if (j < end) {
      const ts = s.slice(j + 1, end);
      if (parseOmTimestamp(ts) === undefined) throw this.err('invalid exemplar timestamp');
    }
  }
}

/** Values: Go ParseFloat syntax minus hex/underscores; NaN, ±Inf. */
function parseValue(t: string, om: boolean): number | undefined {
  if (isDecimalAt(t, 0, t.length)) return Number(t);
  if (t === '+Inf' || t === 'Inf' || (!om && (t === '+inf' || t === 'inf'))) return Infinity;
  if (t === '-Inf' || (!om && t === '-inf')) return -Infinity;
  if (t === 'NaN') return Number.NaN;
  return undefined;
}

/** Whether s[i..j) is a decimal float: [+-] (digits [. digits] | . digits) [e [+-] digits]. No regex, no slice. */
function isDecimalAt(s: string, i: number, j: number): boolean {
  if (i < j && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) i++;
  let digits = 0;
  while (i < j && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) (i++, digits++);
  if (i < j && s.charCodeAt(i) === 46) {
    i++;
    while (i < j && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) (i++, digits++);
  }
  if (digits === 0) return false;
  if (i < j && (s.charCodeAt(i) === 101 || s.charCodeAt(i) === 69)) {
    i++;
    if (i < j && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) i++;
    let exp = 0;
    while (i < j && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) (i++, exp++);
    if (exp === 0) return false;
  }
  return i === j;
}

function parseTextTimestamp(t: string): number | undefined {
  return /^-?\d+$/.test(t) ? Number(t) : undefined;
}

function parseOmTimestamp(t: string): number | undefined {
  if (!/^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
  return Number(t) * 1000;
}

/** Label values and HELP text: \\ \" \n (HELP has no \"; OpenMetrics rejects any other escape). */
function unescape(raw: string, labelValue: boolean, p: { err(r: string): ParseError }, strict = true): string {
  if (!raw.includes('\\')) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = raw[++i];
    if (n === 'n') out += '\n';
    else if (n === '\\') out += '\\';
    else if (n === '"') out += '"';
    else if (labelValue && strict) throw p.err(`invalid escape \\${n ?? ''} in label value`);
    else out += `\\${n ?? ''}`;
  }
  return out;
}

/**
 * OpenMetrics rules that need a whole family: series order and timestamps, histogram and summary structure,
 * info and stateset values. Throws ParseError at the offending sample's line.
 */
function validateOmFamily(f: Family, lineOf: (s: Sample) => number): void {
  const fail = (smp: Sample, reason: string): never => {
    throw new ParseError(lineOf(smp), reason);
  };
  const GROUPED = new Set(['le', 'quantile']);
  const groupKey = (smp: Sample) => Object.keys(smp.labels).filter((k) => !GROUPED.has(k)).sort().map((k) => `${k}=${smp.labels[k]}`).join(',');
  // Series: a label group, once left, never comes back; timestamps never go backwards; all or none timestamped.
  const done = new Set<string>();
  let currentGroup: string | undefined;
  const lastTs = new Map<string, number | undefined>();
  for (const smp of f.samples) {
    const g = groupKey(smp);
    if (g !== currentGroup) {
      if (done.has(g)) fail(smp, `samples of ${f.name}{${g}} are not grouped together`);
      if (currentGroup !== undefined) done.add(currentGroup);
      currentGroup = g;
    }
    const series = `${smp.name}{${Object.keys(smp.labels).sort().map((k) => `${k}=${smp.labels[k]}`).join(',')}}`;
    if (lastTs.has(series)) {
      const prev = lastTs.get(series);
      if ((prev === undefined) !== (smp.timestampMs === undefined)) fail(smp, `${series} mixes samples with and without timestamps`);
      if (prev !== undefined && smp.timestampMs! < prev) fail(smp, `timestamps of ${series} go backwards`);
    }
    lastTs.set(series, smp.timestampMs);
  }
  if (f.type === 'histogram' || f.type === 'gaugehistogram') validateHistogram(f, groupKey, fail);
  for (const smp of f.samples) {
    if (f.type === 'summary' && smp.name === f.name) {
      const q = Number(smp.labels['quantile']);
      if (!(q >= 0 && q <= 1) || smp.labels['quantile'] === '') fail(smp, `quantile ${smp.labels['quantile']} is not between 0 and 1`);
      if (smp.value < 0) fail(smp, 'summary quantile values must not be negative');
    }
    if (f.type === 'info' && smp.value !== 1) fail(smp, 'info values must be 1');
    if (f.type === 'stateset' && !(f.name in smp.labels)) fail(smp, `stateset samples need a label named ${f.name}`);
  }
}

function validateHistogram(f: Family, groupKey: (s: Sample) => string, fail: (s: Sample, reason: string) => never): void {
  const gauge = f.type === 'gaugehistogram';
  const sumName = f.name + (gauge ? '_gsum' : '_sum');
  const countName = f.name + (gauge ? '_gcount' : '_count');
  const groups = new Map<string, Sample[]>();
  for (const smp of f.samples) {
    const g = groupKey(smp);
    let list = groups.get(g);
    if (!list) groups.set(g, (list = []));
    list.push(smp);
  }
  for (const samples of groups.values()) {
    const buckets = samples.filter((x) => x.name === `${f.name}_bucket`);
    const sum = samples.find((x) => x.name === sumName);
    const count = samples.find((x) => x.name === countName);
    const first = samples[0]!;
    if (buckets.length === 0) fail(first, `${f.name} has no buckets`);
    let prevLe = -Infinity;
    let prevCount = -Infinity;
    let negativeBucket = false;
    for (const b of buckets) {
      const leRaw = b.labels['le'] ?? '';
      const le = leRaw === '+Inf' ? Infinity : /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(leRaw) ? Number(leRaw) : Number.NaN;
      if (Number.isNaN(le)) fail(b, `invalid le ${JSON.stringify(leRaw)}`);
      if (le <= prevLe) fail(b, 'buckets must be in increasing le order');
      if (Number.isNaN(b.value) || b.value < 0) fail(b, 'bucket counts must not be negative or NaN');
      if (b.value < prevCount) fail(b, 'bucket counts must not decrease');
      if (le < 0) negativeBucket = true;
      prevLe = le;
      prevCount = b.value;
    }
    const inf = buckets[buckets.length - 1]!;
    if (inf.labels['le'] !== '+Inf') fail(inf, `${f.name} needs a +Inf bucket`);
    if ((sum === undefined) !== (count === undefined)) fail(sum ?? count!, `${f.name} needs both ${sumName} and ${countName}, or neither`);
    if (count && count.value !== inf.value) fail(count, `${countName} must equal the +Inf bucket`);
    if (count && (Number.isNaN(count.value) || count.value < 0)) fail(count, `${countName} must not be negative or NaN`);
    if (sum && (sum.value < 0 || Number.isNaN(sum.value)) && !negativeBucket) fail(sum, `${sumName} may be negative only with negative buckets`);
    if (sum && negativeBucket && !gauge) fail(sum, 'a histogram with negative buckets has no _sum');
  }
}
