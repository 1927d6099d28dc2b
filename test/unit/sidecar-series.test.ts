import { describe, expect, it } from 'vitest';
import { parseExposition } from '../../sidecar/src/parse/exposition.js';
import { SeriesBuilder, type Built, type SeriesDef } from '../../sidecar/src/series.js';
import { SnapshotEncoder, type Snapshot } from '../../sidecar/src/snapshot.js';

const text = [
  '# TYPE http_requests_total counter',
  'http_requests_total{path="/a"} 10',
  '# TYPE cm_q gauge',
  'cm_q 3',
  '# TYPE lat histogram',
  'lat_bucket{le="+Inf"} 2',
  'lat_sum 1',
  'lat_count 2',
  'jobs_total 7',
  '',
].join('\n');

/** Rows of a build: `name:kind:value`. */
const rows = (b: Built) => b.defs.map((d, i) => `${d.name}:${d.kind}:${b.values[i]}`);

describe('series from a scrape (SeriesBuilder)', () => {
  it('sends every sample with its kind, histograms by their parts', () => {
    const b = new SeriesBuilder(60_000, 1000).build(parseExposition(text, 'text'), 1000);
    expect(rows(b)).toEqual(['http_requests_total:COUNTER:10', 'cm_q:GAUGE:3', 'lat_bucket:UNTYPED:2', 'lat_sum:UNTYPED:1', 'lat_count:UNTYPED:2', 'jobs_total:COUNTER:7']);
    expect(b.times.every((t) => t === 1000)).toBe(true);
    expect(b.defs.every((d) => d.windowMs === 0)).toBe(true);
  });

  it('adds a rate named without _total from the second scrape, right after its counter, carrying its window', () => {
    const builder = new SeriesBuilder(60_000, 1000);
    builder.build(parseExposition(text, 'text'), 1000);
    const second = builder.build(parseExposition(text.replace('} 10', '} 30').replace('jobs_total 7', 'jobs_total 9'), 'text'), 3000);
    expect(rows(second)).toEqual(['http_requests_total:COUNTER:30', 'http_requests:RATE:10', 'cm_q:GAUGE:3', 'lat_bucket:UNTYPED:2', 'lat_sum:UNTYPED:1', 'lat_count:UNTYPED:2', 'jobs_total:COUNTER:9', 'jobs:RATE:1']);
    expect(second.defs[1]).toMatchObject({ name: 'http_requests', labels: { path: '/a' }, kind: 'RATE', windowMs: 60_000 });
    expect(second.times[1]).toBe(3000);
  });

  it('keeps the same definition object while a series lasts, and a new one after it left', () => {
    const builder = new SeriesBuilder(60_000, 1000);
    const a = builder.build(parseExposition('cm_a 1\ncm_b 2\n', 'text'), 0);
    const b = builder.build(parseExposition('cm_a 5\n', 'text'), 1000);
    const c = builder.build(parseExposition('cm_a 6\ncm_b 7\n', 'text'), 2000);
    expect(b.defs[0]).toBe(a.defs[0]);
    expect(c.defs[0]).toBe(a.defs[0]);
    expect(c.defs[1]).not.toBe(a.defs[1]);
    // A series whose type changed (the app restarted with another TYPE) gets a new definition.
    const d = builder.build(parseExposition('# TYPE cm_a counter\ncm_a 6\n', 'text'), 3000);
    expect(d.defs[0]).not.toBe(a.defs[0]);
    expect(d.defs[0]!.kind).toBe('COUNTER');
  });

  it('handles OpenMetrics counters (family without _total) and skips only their _created samples', () => {
    const om = '# TYPE http_requests counter\nhttp_requests_total{path="/a"} 10\nhttp_requests_created{path="/a"} 1700000000\n# TYPE cm_jobs_created gauge\ncm_jobs_created 4\n# EOF\n';
    const builder = new SeriesBuilder(60_000, 1000);
    builder.build(parseExposition(om, 'openmetrics'), 1000);
    expect(rows(builder.build(parseExposition(om.replace('} 10', '} 12'), 'openmetrics'), 2000))).toEqual(['http_requests_total:COUNTER:12', 'http_requests:RATE:2', 'cm_jobs_created:GAUGE:4']);
  });

  it('names the rate of a counter without _total <name>_rate', () => {
    const builder = new SeriesBuilder(60_000, 1000);
    builder.build(parseExposition('# TYPE cm_hits counter\ncm_hits 1\n', 'text'), 0);
    expect(rows(builder.build(parseExposition('# TYPE cm_hits counter\ncm_hits 5\n', 'text'), 2000))).toEqual(['cm_hits:COUNTER:5', 'cm_hits_rate:RATE:2']);
  });

  it('uses exposition timestamps and passes NaN and ±Inf through', () => {
    const b = new SeriesBuilder(60_000, 1000).build(parseExposition('cm_a 1 1500\ncm_b NaN\ncm_c +Inf\ncm_d -Inf\n', 'text'), 2000);
    expect(b.values).toEqual([1, Number.NaN, Infinity, -Infinity]);
    expect(b.times).toEqual([1500, 2000, 2000, 2000]);
  });

  it('caps the series, counting what is dropped (never silently)', () => {
    const many = Array.from({ length: 10 }, (_, i) => `cm_s{i="${i}"} ${i}`).join('\n') + '\n';
    const b = new SeriesBuilder(60_000, 4).build(parseExposition(many, 'text'), 0);
    expect(b.defs.map((d) => d.labels['i'])).toEqual(['0', '1', '2', '3']);
    expect(b.dropped).toBe(6);
  });

  it('sends a repeated series once and counts the repeats', () => {
    const b = new SeriesBuilder(60_000, 100).build(parseExposition('cm_x{a="1"} 1\ncm_x{a="1"} 2\ncm_x{a="2"} 3\n', 'text'), 0);
    expect(b.values).toEqual([1, 3]);
    expect(b.duplicates).toBe(1);
  });
});

describe('snapshot encoding per stream (SnapshotEncoder)', () => {
  const L = Object.freeze({});
  const def = (k: string): SeriesDef => ({ key: k, name: 'cm_x', labels: { k }, kind: 'GAUGE', windowMs: 0 });
  const snapshot = (defs: SeriesDef[], times?: number[]): Snapshot => ({
    status: 'OK', error: '', scrapeTimeMs: 1000, podLabels: L,
    series: { defs, values: defs.map((_, i) => i), times: times ?? defs.map(() => 1000) },
  });

  it('defines each series once, then references it by id; seq counts from 1', () => {
    const [a, b, c] = [def('a'), def('b'), def('c')];
    const e = new SnapshotEncoder(L);
    const first = e.encode(snapshot([a, b]));
    const second = e.encode(snapshot([b, c]));
    expect([first.seq, second.seq]).toEqual([1, 2]);
    expect(first.defs.map((d) => [d.id, d.labels['k']])).toEqual([[0, 'a'], [1, 'b']]);
    expect(second.defs.map((d) => [d.id, d.labels['k']])).toEqual([[2, 'c']]);
    expect(second.ids).toEqual([1, 2]);
    expect(second.timestamps_ms).toEqual([]);
  });

  it('sends per-series times only when some differ from the scrape time', () => {
    expect(new SnapshotEncoder(L).encode(snapshot([def('a'), def('b')], [1000, 500])).timestamps_ms).toEqual([1000, 500]);
  });

  it('recycles ids of vanished series under churn, so ids and memory stay bounded', () => {
    const e = new SnapshotEncoder(L);
    let maxId = 0;
    for (let round = 0; round < 200; round++) {
      const w = e.encode(snapshot(Array.from({ length: 100 }, (_, i) => def(`r${round}-${i}`))));
      maxId = Math.max(maxId, ...w.ids);
      expect(new Set(w.ids).size).toBe(100);
      expect(w.defs).toHaveLength(100);
    }
    expect(maxId).toBeLessThan(4096 + 100);
    expect((e as unknown as { ids: Map<SeriesDef, number> }).ids.size).toBeLessThanOrEqual(4096);
  });
});
