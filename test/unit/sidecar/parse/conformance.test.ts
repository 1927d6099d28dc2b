import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parsePage, ParseError, type Family, type Format } from '../../../../sidecar/src/parse/index.js';
import { ACCEPTED_DEVIATIONS } from './conformance-allowlist.js';

// Every case of the OpenMetrics and Prometheus text conformance corpora (copies; sources and licences in
// test/fixtures/corpora/README.md) runs as its own test: OpenMetrics cases as 'openmetrics', prometheus-text
// cases as 'text'. Should-parse cases must parse (common_parse_* also to the families prometheus/common
// expects); should-fail cases must throw ParseError, except the allowlisted ones (pages the Prometheus server takes),
// which must parse with the warnings listed.
// NOTE: common_error_41/42 have shouldParse true and shouldParseLegacyNames false: the parser takes quoted
// UTF-8 names (as expfmt with UTF-8 validation, the default), so they must parse.

const ROOT = fileURLToPath(new URL('../../../fixtures/corpora/', import.meta.url));
const CORPORA = { openmetrics: 'openmetrics', 'prometheus-text': 'text' } as const satisfies Record<string, Format>;

interface Case {
  corpus: keyof typeof CORPORA;
  name: string;
  shouldParse: boolean;
  expectedFamilies?: GoFamily[];
}

function cases(corpus: keyof typeof CORPORA): Case[] {
  return readdirSync(ROOT + corpus, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => ({ corpus, name: d.name, ...(JSON.parse(readFileSync(`${ROOT}${corpus}/${d.name}/test.json`, 'utf8')) as Omit<Case, 'corpus' | 'name'>) }))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** As the sidecar does: the bytes, decoded and parsed. */
function parse(c: Case): Family[] {
  return parsePage(readFileSync(`${ROOT}${c.corpus}/${c.name}/metrics`), CORPORA[c.corpus]).families;
}

const all = (Object.keys(CORPORA) as (keyof typeof CORPORA)[]).map((corpus) => [corpus, cases(corpus)] as const);

for (const [corpus, list] of all) {
  describe(corpus, () => {
    const good = list.filter((c) => c.shouldParse);
    const accepted = list.filter((c) => !c.shouldParse && ACCEPTED_DEVIATIONS[`${corpus}/${c.name}`] !== undefined);
    const bad = list.filter((c) => !c.shouldParse && ACCEPTED_DEVIATIONS[`${corpus}/${c.name}`] === undefined);

    it.each(good.map((c) => [c.name, c] as const))('%s parses', (_, c) => {
      const families = parse(c);
      if (c.expectedFamilies) expect(rows(families)).toEqual(goRows(c.expectedFamilies));
    });

    if (accepted.length > 0) {
      it.each(accepted.map((c) => [c.name, ACCEPTED_DEVIATIONS[`${corpus}/${c.name}`]!.why, c] as const))('%s parses, as in Prometheus (%s)', (_, __, c) => {
        const reasons = [...new Set(parsePage(readFileSync(`${ROOT}${c.corpus}/${c.name}/metrics`), CORPORA[c.corpus]).warnings.map((w) => w.reason))].sort();
        expect(reasons).toEqual(ACCEPTED_DEVIATIONS[`${corpus}/${c.name}`]!.warnings);
      });
    }

    it.each(bad.map((c) => [c.name, c] as const))('%s is rejected', (_, c) => {
      expect(() => parse(c)).toThrow(ParseError);
    });
  });
}

it('the allowlist names only should-fail cases that exist', () => {
  const shouldFail = new Set(all.flatMap(([corpus, list]) => list.filter((c) => !c.shouldParse).map((c) => `${corpus}/${c.name}`)));
  for (const key of Object.keys(ACCEPTED_DEVIATIONS)) expect(shouldFail.has(key), key).toBe(true);
});

// Families compared as sorted rows: "family name type help", one row per sample, and for summaries and
// histograms one row per label set with the timestamp Go keeps for it: that of the last line that has one.

interface GoFamily {
  Name: string;
  Help?: string;
  Type: string;
  Metric: GoMetric[];
}
type GoNumber = number | string; // NaN and ±Inf are strings
interface GoMetric {
  Label?: { Name: string; Value: string }[];
  TimestampMs?: number;
  Counter?: { Value: GoNumber };
  Gauge?: { Value: GoNumber };
  Untyped?: { Value: GoNumber };
  Summary?: { SampleCount?: GoNumber; SampleSum?: GoNumber; Quantile?: { Quantile: GoNumber; Value: GoNumber }[] };
  Histogram?: {
    SampleCount?: GoNumber;
    SampleCountFloat?: GoNumber;
    SampleSum?: GoNumber;
    Bucket?: { UpperBound: GoNumber; CumulativeCount?: GoNumber; CumulativeCountFloat?: GoNumber }[];
  };
}

const GROUPED = new Set(['summary', 'histogram', 'gaugehistogram']);

function rows(families: Family[]): string[] {
  const out: string[] = [];
  for (const f of families) {
    out.push(`family ${f.name} ${f.type} ${JSON.stringify(f.help)}`);
    const grouped = GROUPED.has(f.type);
    const groupTs = new Map<string, number>();
    for (const s of f.samples) {
      const labels = { ...s.labels };
      // Go holds quantile and le as numbers.
      for (const k of ['quantile', 'le']) if (grouped && labels[k] !== undefined) labels[k] = num(labels[k]);
      out.push(`${s.name}${labelString(labels)} ${num(s.value)}${s.timestampMs !== undefined && !grouped ? ` @${s.timestampMs}` : ''}`);
      if (grouped && s.timestampMs !== undefined) {
        const { quantile: _q, le: _le, ...rest } = s.labels;
        groupTs.set(`${f.name}${labelString(rest)}`, s.timestampMs);
      }
    }
    for (const [group, ts] of groupTs) out.push(`group ${group} @${ts}`);
  }
  return out.sort();
}

function goRows(families: GoFamily[]): string[] {
  const out: string[] = [];
  for (const f of families) {
    const type = f.Type.toLowerCase().replace('_', '');
    out.push(`family ${f.Name} ${type} ${JSON.stringify(f.Help)}`);
    for (const m of f.Metric) {
      const labels = Object.fromEntries((m.Label ?? []).map((l) => [l.Name, l.Value]));
      const grouped = GROUPED.has(type);
      const row = (name: string, extra: Record<string, string>, v: GoNumber) => out.push(`${name}${labelString({ ...labels, ...extra })} ${num(v)}${m.TimestampMs !== undefined && !grouped ? ` @${m.TimestampMs}` : ''}`);
      const single = m.Counter ?? m.Gauge ?? m.Untyped;
      if (single) row(f.Name, {}, single.Value);
      if (m.Summary) {
        for (const q of m.Summary.Quantile ?? []) row(f.Name, { quantile: num(q.Quantile) }, q.Value);
        if (m.Summary.SampleSum !== undefined) row(`${f.Name}_sum`, {}, m.Summary.SampleSum);
        if (m.Summary.SampleCount !== undefined) row(`${f.Name}_count`, {}, m.Summary.SampleCount);
      }
      if (m.Histogram) {
        const h = m.Histogram;
        for (const b of h.Bucket ?? []) row(`${f.Name}_bucket`, { le: num(b.UpperBound) }, (b.CumulativeCount ?? b.CumulativeCountFloat)!);
        if (h.SampleSum !== undefined) row(`${f.Name}_sum`, {}, h.SampleSum);
        const count = h.SampleCount ?? h.SampleCountFloat;
        if (count !== undefined) row(`${f.Name}_count`, {}, count);
      }
      if (grouped && m.TimestampMs !== undefined) out.push(`group ${f.Name}${labelString(labels)} @${m.TimestampMs}`);
    }
  }
  return out.sort();
}

function labelString(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  return keys.length > 0 ? `{${keys.map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}` : '';
}

/** A number (or Go's NaN/±Inf string, or one of our label values) in one spelling. */
function num(v: GoNumber): string {
  const n = typeof v === 'number' ? v : /^\+?inf$/i.test(v) ? Infinity : /^-inf$/i.test(v) ? -Infinity : Number(v);
  return Number.isNaN(n) ? 'NaN' : n === Infinity ? '+Inf' : n === -Infinity ? '-Inf' : String(n);
}
