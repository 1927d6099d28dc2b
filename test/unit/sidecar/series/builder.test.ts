import { describe, expect, it } from 'vitest';
import { INGEST_LIMITS } from '../../../../common/src/proto.js';
import { parseExposition, parsePage } from '../../../../sidecar/src/parse/index.js';
import { SeriesBuilder, type Built, type SeriesDef, type SeriesLimits } from '../../../../sidecar/src/series/builder.js';
import { SnapshotEncoder, type Snapshot } from '../../../../sidecar/src/stream/snapshot.js';
import { encodeReportRequest, seriesDefSize } from '../../../../sidecar/src/stream/codec.js';

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

/** The default label caps (config.ts) with a series cap. */
const limits = (maxSeries: number): SeriesLimits => ({ maxSeries, maxLabelNameBytes: INGEST_LIMITS.maxLabelNameBytes, maxLabelValueBytes: INGEST_LIMITS.maxLabelValueBytes, maxLabelsPerSeries: INGEST_LIMITS.maxLabelsPerSeries });

/** Rows of a build: `name:kind:value`. */
const rows = (b: Built) => b.defs.map((d, i) => `${d.name}:${d.kind}:${b.values[i]}`);

describe('series from a scrape (SeriesBuilder)', () => {
  it('sends every sample with its kind, histograms by their parts', () => {
    const b = new SeriesBuilder(60_000, limits(1000)).build(parseExposition(text, 'text'), 1000);
    expect(rows(b)).toEqual(['http_requests_total:COUNTER:10', 'cm_q:GAUGE:3', 'lat_bucket:UNTYPED:2', 'lat_sum:UNTYPED:1', 'lat_count:UNTYPED:2', 'jobs_total:COUNTER:7']);
    expect(b.times.every((t) => t === 1000)).toBe(true);
    expect(b.defs.every((d) => d.windowMs === 0)).toBe(true);
  });

  it('adds a rate named without _total from the second scrape, right after its counter, carrying its window', () => {
    const builder = new SeriesBuilder(60_000, limits(1000));
    builder.build(parseExposition(text, 'text'), 1000);
    const second = builder.build(parseExposition(text.replace('} 10', '} 30').replace('jobs_total 7', 'jobs_total 9'), 'text'), 3000);
    expect(rows(second)).toEqual(['http_requests_total:COUNTER:30', 'http_requests:RATE:10', 'cm_q:GAUGE:3', 'lat_bucket:UNTYPED:2', 'lat_sum:UNTYPED:1', 'lat_count:UNTYPED:2', 'jobs_total:COUNTER:9', 'jobs:RATE:1']);
    expect(second.defs[1]).toMatchObject({ name: 'http_requests', labels: { path: '/a' }, kind: 'RATE', windowMs: 60_000 });
    expect(second.times[1]).toBe(3000);
  });

  it('keeps the same definition object while a series lasts, and a new one after it left', () => {
    const builder = new SeriesBuilder(60_000, limits(1000));
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
    const builder = new SeriesBuilder(60_000, limits(1000));
    builder.build(parseExposition(om, 'openmetrics'), 1000);
    expect(rows(builder.build(parseExposition(om.replace('} 10', '} 12'), 'openmetrics'), 2000))).toEqual(['http_requests_total:COUNTER:12', 'http_requests:RATE:2', 'cm_jobs_created:GAUGE:4']);
  });

  it('names the rate of a counter without _total <name>_rate', () => {
    const builder = new SeriesBuilder(60_000, limits(1000));
    builder.build(parseExposition('# TYPE cm_hits counter\ncm_hits 1\n', 'text'), 0);
    expect(rows(builder.build(parseExposition('# TYPE cm_hits counter\ncm_hits 5\n', 'text'), 2000))).toEqual(['cm_hits:COUNTER:5', 'cm_hits_rate:RATE:2']);
  });

  it('uses exposition timestamps and passes NaN and ±Inf through', () => {
    const b = new SeriesBuilder(60_000, limits(1000)).build(parseExposition('cm_a 1 1500\ncm_b NaN\ncm_c +Inf\ncm_d -Inf\n', 'text'), 2000);
    expect(b.values).toEqual([1, Number.NaN, Infinity, -Infinity]);
    expect(b.times).toEqual([1500, 2000, 2000, 2000]);
  });

  it('caps the series, counting what is dropped (never silently)', () => {
    const many = Array.from({ length: 10 }, (_, i) => `cm_s{i="${i}"} ${i}`).join('\n') + '\n';
    const b = new SeriesBuilder(60_000, limits(4)).build(parseExposition(many, 'text'), 0);
    expect(b.defs.map((d) => d.labels['i'])).toEqual(['0', '1', '2', '3']);
    expect(b.drops).toEqual({ max_series: { series: 6, families: ['cm_s'], moreFamilies: 0 } });
  });

  it('sends a repeated series once and counts the repeats', () => {
    const b = new SeriesBuilder(60_000, limits(100)).build(parseExposition('cm_x{a="1"} 1\ncm_x{a="1"} 2\ncm_x{a="2"} 3\n', 'text'), 0);
    expect(b.values).toEqual([1, 3]);
    expect(b.duplicates).toBe(1);
  });
});

describe('series limits (SeriesBuilder)', () => {
  const build = (page: string, lim: Partial<SeriesLimits> = {}) => new SeriesBuilder(60_000, { ...limits(1000), ...lim }).build(parseExposition(page, 'text'), 0);

  it('drops a series whose label value is over --max-label-value-bytes, counted in bytes, naming its family', () => {
    // 'é' is 2 bytes: 3 of them (6 bytes) are over a 5-byte cap though only 3 characters long.
    const b = build('cm_big{v="ééé"} 1\ncm_big{v="ok"} 2\ncm_other{v="éé"} 3\n', { maxLabelValueBytes: 5 });
    expect(rows(b)).toEqual(['cm_big:UNTYPED:2', 'cm_other:UNTYPED:3']);
    expect(b.drops).toEqual({ label_value_too_long: { series: 1, families: ['cm_big'], moreFamilies: 0 } });
  });

  it('drops a 5 MB label value at the default cap (2048 bytes, as the aggregator) and keeps the rest of the page', () => {
    const b = build(`# TYPE cm_big gauge\ncm_big{v="${'y'.repeat(5 * 1024 * 1024)}"} 1\ncm_value 7\n`);
    expect(rows(b)).toEqual(['cm_value:UNTYPED:7']);
    expect(b.drops.label_value_too_long).toEqual({ series: 1, families: ['cm_big'], moreFamilies: 0 });
  });

  it('drops series over --max-label-name-bytes and --max-labels-per-series, each under its own reason', () => {
    const b = build(`cm_a{${'n'.repeat(9)}="1"} 1\ncm_b{a="1",b="2",c="3"} 2\ncm_c{a="1",b="2"} 3\n`, { maxLabelNameBytes: 8, maxLabelsPerSeries: 2 });
    expect(rows(b)).toEqual(['cm_c:UNTYPED:3']);
    expect(b.drops).toEqual({ label_name_too_long: { series: 1, families: ['cm_a'], moreFamilies: 0 }, too_many_labels: { series: 1, families: ['cm_b'], moreFamilies: 0 } });
  });

  it('names at most 5 families per reason and counts the others', () => {
    const page = Array.from({ length: 7 }, (_, i) => `cm_f${i}{v="toolong"} 1`).join('\n') + '\n';
    expect(build(page, { maxLabelValueBytes: 3 }).drops.label_value_too_long).toEqual({ series: 7, families: ['cm_f0', 'cm_f1', 'cm_f2', 'cm_f3', 'cm_f4'], moreFamilies: 2 });
  });

  it('keeps the series it already sends when the cap bites, so a late series stays relayed as the page grows', () => {
    const builder = new SeriesBuilder(60_000, limits(3));
    const first = builder.build(parseExposition('cm_a 1\ncm_value 7\n', 'text'), 0);
    expect(rows(first)).toEqual(['cm_a:UNTYPED:1', 'cm_value:UNTYPED:7']);
    // Five new series appear before cm_value: it is still sent, with the first new one; the other four are cut.
    const grown = 'cm_a 1\n' + Array.from({ length: 5 }, (_, i) => `cm_new{i="${i}"} ${i}`).join('\n') + '\ncm_value 8\n';
    const second = builder.build(parseExposition(grown, 'text'), 1000);
    expect(rows(second)).toEqual(['cm_a:UNTYPED:1', 'cm_new:UNTYPED:0', 'cm_value:UNTYPED:8']);
    expect(second.defs[2]).toBe(first.defs[1]);
    expect(second.drops).toEqual({ max_series: { series: 4, families: ['cm_new'], moreFamilies: 0 } });
    // And the choice is stable: the next scrape sends the same three.
    expect(rows(builder.build(parseExposition(grown, 'text'), 2000))).toEqual(['cm_a:UNTYPED:1', 'cm_new:UNTYPED:0', 'cm_value:UNTYPED:8']);
  });

  it('the parse holds at most twice --max-series samples, plus series already sent; the rest are counted as cut', () => {
    const builder = new SeriesBuilder(60_000, limits(3));
    const parse = (page: string) => parsePage(Buffer.from(page), 'text', undefined, builder.budget);
    builder.build(parse('cm_a 1\ncm_value 7\n').families, 0);
    const page = 'cm_a 1\n' + Array.from({ length: 5000 }, (_, i) => `cm_new{i="${i}"} ${i}`).join('\n') + '\ncm_value 8\n';
    const parsed = parse(page);
    // Held: 6 (twice the cap) in page order, then cm_value, which the last scrape sent; 4995 let go.
    expect(parsed.families.flatMap((f) => f.samples).length).toBe(7);
    expect([...parsed.cut]).toEqual([['cm_new', 4995]]);
    const b = builder.build(parsed.families, 1000, parsed.cut);
    expect(rows(b)).toEqual(['cm_a:UNTYPED:1', 'cm_new:UNTYPED:0', 'cm_value:UNTYPED:8']);
    expect(b.drops).toEqual({ max_series: { series: 4995 + 4, families: ['cm_new'], moreFamilies: 0 } });
  });

  it('remembers only what it sends, however many series the page has (rate state included)', () => {
    const builder = new SeriesBuilder(60_000, limits(10));
    const page = '# TYPE cm_c counter\n' + Array.from({ length: 5000 }, (_, i) => `cm_c{i="${i}"} ${i}`).join('\n') + '\n';
    builder.build(parseExposition(page, 'text'), 0);
    const b = builder.build(parseExposition(page, 'text'), 1000);
    // The ten counters sent by the first scrape stay; their new rates are cut, and so are the other 4990 counters.
    expect(b.defs.map((d) => `${d.kind}${d.labels['i']}`)).toEqual(Array.from({ length: 10 }, (_, i) => `COUNTER${i}`));
    expect(b.drops.max_series!.series).toBe(4990 + 10);
    const inside = builder as unknown as { sent: Map<string, unknown>; rates: { size: number } };
    expect(inside.sent.size).toBe(10);
    expect(inside.rates.size).toBeLessThanOrEqual(10);
  });
});

describe('snapshot encoding per stream (SnapshotEncoder)', () => {
  const L = Object.freeze({});
  const def = (k: string): SeriesDef => ({ key: k, name: 'cm_x', family: 'cm_x', labels: { k }, kind: 'GAUGE', windowMs: 0 });
  const snapshot = (defs: SeriesDef[], times?: number[]): Snapshot => ({
    status: 'OK', error: '', scrapeTimeMs: 1000, podLabels: L,
    series: { defs, values: defs.map((_, i) => i), times: times ?? defs.map(() => 1000) },
  });

  it('defines each series once, then references it by id; seq counts from 1', () => {
    const [a, b, c] = [def('a'), def('b'), def('c')];
    const e = new SnapshotEncoder(L);
    const first = e.encode(snapshot([a, b])).snapshot;
    const second = e.encode(snapshot([b, c])).snapshot;
    expect([first.seq, second.seq]).toEqual([1, 2]);
    expect(first.defs.map((d) => [d.id, d.labels['k']])).toEqual([[0, 'a'], [1, 'b']]);
    expect(second.defs.map((d) => [d.id, d.labels['k']])).toEqual([[2, 'c']]);
    expect(second.ids).toEqual([1, 2]);
    expect(second.timestamps_ms).toEqual([]);
  });

  it('sends per-series times only when some differ from the scrape time', () => {
    expect(new SnapshotEncoder(L).encode(snapshot([def('a'), def('b')], [1000, 500])).snapshot.timestamps_ms).toEqual([1000, 500]);
  });

  it('recycles ids of vanished series under churn, so ids and memory stay bounded', () => {
    const e = new SnapshotEncoder(L);
    let maxId = 0;
    for (let round = 0; round < 200; round++) {
      const w = e.encode(snapshot(Array.from({ length: 100 }, (_, i) => def(`r${round}-${i}`)))).snapshot;
      maxId = Math.max(maxId, ...w.ids);
      expect(new Set(w.ids).size).toBe(100);
      expect(w.defs).toHaveLength(100);
    }
    expect(maxId).toBeLessThan(4096 + 100);
    expect((e as unknown as { ids: Map<SeriesDef, number> }).ids.size).toBeLessThanOrEqual(4096);
  });

  it('trims a snapshot over the message limit, says what it cut, and keeps the series already defined first', () => {
    const big = (k: string): SeriesDef => ({ ...def(k), family: 'cm_big', labels: { v: k.padEnd(25_000, 'x') } });
    const e = new SnapshotEncoder(L);
    const small = [def('a'), def('b')];
    e.encode(snapshot(small), 65536);
    // Eight 25 kB definitions do not fit in 64 KiB: the two defined series stay, new ones go in order while they fit.
    const { snapshot: w, trimmed } = e.encode(snapshot([big('b1'), big('b2'), ...small, big('b3'), big('b4'), big('b5'), big('b6'), big('b7'), big('b8')]), 65536);
    expect(trimmed).toEqual({ series: 6, families: ['cm_big'], moreFamilies: 0 });
    expect(w.status).toBe('OK');
    expect(w.error).toBe("snapshot trimmed: 6 series of families cm_big over the aggregator's 65536-byte message limit");
    expect(w.ids).toHaveLength(4);
    expect(w.defs.map((d) => d.labels['v']!.slice(0, 2))).toEqual(['b1', 'b2']);
    expect(w.values).toEqual([0, 1, 2, 3]);
    expect(encodeReportRequest({ snapshot: w }).length).toBeLessThanOrEqual(65536);
  });

  it('sends a snapshot that fits untouched, its error as the scrape loop gave it', () => {
    const s = { ...snapshot([def('a'), def('b')]), error: '3 series of families cm_x not sent' };
    const { snapshot: w, trimmed } = new SnapshotEncoder(L).encode(s, 65536);
    expect(trimmed).toBeUndefined();
    expect(w.error).toBe('3 series of families cm_x not sent');
    expect(w.ids).toEqual([0, 1]);
  });

  it('sizes definitions as the codec writes them (never under)', () => {
    for (const d of [def('a'), { ...def('r'), kind: 'RATE' as const, windowMs: 60_000, labels: { path: '/é'.repeat(300), x: '' } }]) {
      const w = { id: 65535, name: d.name, labels: d.labels, kind: d.kind, window_ms: d.windowMs };
      const withDef = encodeReportRequest({ snapshot: { seq: 0, status: 'OK', error: '', scrape_time_ms: 0, defs: [w], ids: [], values: [], timestamps_ms: [], pod_labels: null } }).length;
      // The envelope (ReportRequest field 2 around the snapshot) is 2 or 3 bytes.
      expect(seriesDefSize(w)).toBeGreaterThanOrEqual(withDef - 3);
      expect(seriesDefSize(w)).toBeLessThanOrEqual(withDef);
    }
  });
});
