import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeBody, parseExposition, ParseError, type Family, type Format } from '../../sidecar/src/parse/exposition.js';
import { ACCEPTED_DEVIATIONS } from './parser-allowlist.js';

// Every case of the OpenMetrics and Prometheus text conformance corpora (copied from ../shared/corpora, see
// test/fixtures/corpora/README.md for sources and licences) runs as its own test.

const ROOT = fileURLToPath(new URL('../fixtures/corpora/', import.meta.url));

interface Case { dir: string; name: string; format: Format; shouldParse: boolean; expected?: unknown[] }

function cases(corpus: string, format: Format): Case[] {
  return readdirSync(ROOT + corpus).filter((d) => !d.includes('.')).sort().map((name) => {
    const meta = JSON.parse(readFileSync(`${ROOT}${corpus}/${name}/test.json`, 'utf8')) as { shouldParse: boolean; expectedFamilies?: unknown[] };
    return { dir: `${ROOT}${corpus}/${name}`, name, format, shouldParse: meta.shouldParse, expected: meta.expectedFamilies };
  });
}

/** As the sidecar does: bytes decoded as strict UTF-8, then parsed. */
function run(c: Case): Family[] {
  return parseExposition(decodeBody(readFileSync(`${c.dir}/metrics`)), c.format);
}

for (const [corpus, format] of [['openmetrics', 'openmetrics'], ['prometheus-text', 'text']] as const) {
  describe(corpus, () => {
    for (const c of cases(corpus, format)) {
      const accepted = ACCEPTED_DEVIATIONS[`${corpus}/${c.name}`];
      if (c.shouldParse || accepted) {
        it(`${c.name} parses${accepted ? ` (accepted deviation: ${accepted})` : ''}`, () => {
          const families = run(c);
          if (c.expected) expect(flatten(families)).toEqual(flattenExpected(c.expected));
        });
      } else {
        it(`${c.name} is rejected`, () => {
          expect(() => run(c)).toThrow(ParseError);
        });
      }
    }
  });
}

/**
 * Our families as comparable rows: "family name type help" and "sample{labels} value @ts". NOTE: Go's data
 * model holds one timestamp per summary or histogram (the latest line's) and normalises quantile and le, so
 * for those types timestamps are left out and those labels compared as numbers.
 */
function flatten(families: Family[]): string[] {
  const rows: string[] = [];
  for (const f of families) {
    const grouped = f.type === 'summary' || f.type === 'histogram' || f.type === 'gaugehistogram';
    rows.push(`family ${f.name} ${f.type}${f.help !== undefined ? ` help=${JSON.stringify(f.help)}` : ''}`);
    for (const s of f.samples) {
      const labels = { ...s.labels };
      for (const k of ['quantile', 'le']) if (grouped && labels[k] !== undefined) labels[k] = num(Number(labels[k].replace(/^\+?Inf$/, 'Infinity')));
      rows.push(`${s.name}${labelString(labels)} ${num(s.value)}${s.timestampMs !== undefined && !grouped ? ` @${s.timestampMs}` : ''}`);
    }
  }
  return rows.sort();
}

function labelString(l: Record<string, string>): string {
  const keys = Object.keys(l).sort();
  return keys.length ? `{${keys.map((k) => `${k}=${JSON.stringify(l[k])}`).join(',')}}` : '';
}

function num(v: number | string): string {
  if (typeof v === 'string') return v === 'NaN' ? 'NaN' : v.includes('Inf') ? (v.startsWith('-') ? '-Inf' : '+Inf') : String(Number(v));
  return Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v);
}

/** The Go dto.MetricFamily expectations of prometheus/common, flattened the same way. */
function flattenExpected(families: unknown[]): string[] {
  const rows: string[] = [];
  const TYPES = ['counter', 'gauge', 'summary', 'untyped', 'histogram', 'gaugehistogram'];
  for (const raw of families as Record<string, any>[]) { // eslint-disable-line @typescript-eslint/no-explicit-any
    const type = (typeof raw['Type'] === 'number' ? TYPES[raw['Type']] : String(raw['Type'] ?? 'untyped').toLowerCase()).replace('gauge_histogram', 'gaugehistogram');
    const name = raw['Name'] as string;
    rows.push(`family ${name} ${type}${raw['Help'] !== undefined ? ` help=${JSON.stringify(raw['Help'])}` : ''}`);
    for (const m of (raw['Metric'] ?? []) as Record<string, any>[]) { // eslint-disable-line @typescript-eslint/no-explicit-any
      const labels: Record<string, string> = {};
      for (const l of (m['Label'] ?? []) as { Name: string; Value: string }[]) labels[l.Name] = l.Value;
      const ts = m['TimestampMs'] !== undefined && !['summary', 'histogram', 'gaugehistogram'].includes(type!) ? ` @${m['TimestampMs']}` : '';
      const one = (n: string, extra: Record<string, string>, v: number | string) => rows.push(`${n}${labelString({ ...labels, ...extra })} ${num(v)}${ts}`);
      if (m['Counter']) one(name, {}, m['Counter']['Value']);
      else if (m['Gauge']) one(name, {}, m['Gauge']['Value']);
      else if (m['Untyped']) one(name, {}, m['Untyped']['Value']);
      else if (m['Summary']) {
        for (const q of m['Summary']['Quantile'] ?? []) one(name, { quantile: num(q['Quantile']) }, q['Value']);
        if (m['Summary']['SampleSum'] !== undefined) one(`${name}_sum`, {}, m['Summary']['SampleSum']);
        if (m['Summary']['SampleCount'] !== undefined) one(`${name}_count`, {}, m['Summary']['SampleCount']);
      } else if (m['Histogram']) {
        const h = m['Histogram'];
        for (const b of h['Bucket'] ?? []) one(`${name}_bucket`, { le: num(b['UpperBound']) }, b['CumulativeCount'] ?? b['CumulativeCountFloat']);
        if (h['SampleSum'] !== undefined) one(`${name}_sum`, {}, h['SampleSum']);
        if (h['SampleCount'] !== undefined || h['SampleCountFloat'] !== undefined) one(`${name}_count`, {}, h['SampleCount'] ?? h['SampleCountFloat']);
      }
    }
  }
  return rows.sort();
}
