import { describe, expect, it } from 'vitest';
import { ALL_PODS, MemoryStore, type HeldSeries } from '../../../../aggregator/src/store/memory-store.js';
import { def, setup } from '../../../helpers/held-values.js';

/** What series() visits of `metric` in namespace ns at nowMs, one row per series: pod, labels, value, servable. */
function read(store: MemoryStore, metric: string, nowMs: number, podFilter = ALL_PODS): [string, string, number, boolean][] {
  const rows: [string, string, number, boolean][] = [];
  for (const s of store.series('ns', metric, podFilter, nowMs)) rows.push([s.pod.name, JSON.stringify(s.def.labels), s.value, s.servable]);
  return rows;
}

// The memory store (aggregator/src/store/memory-store.ts): what it holds, its limits, and its one read, series().

describe('held pods and series', () => {
  it('expires pods unreported for expireAfter, and goodbye deletes at once', () => {
    const { store, clock, report } = setup();
    report('p1', { cm_x: 1 });
    report('p2', { cm_x: 1 });
    clock.advance(599_000);
    report('p2', { cm_x: 1 });
    clock.advance(2000);
    expect(store.expire(clock.now(), 600_000)).toBe(1);
    expect(store.getPod('ns', 'p1')).toBeUndefined();
    expect(store.seriesTotal).toBe(1);
    expect(store.deletePod('ns', 'p2')).toBe(true);
    expect(store.seriesTotal).toBe(0);
    expect(store.podCountWithMetric('ns', 'cm_x')).toBe(0);
    expect(read(store, 'cm_x', clock.now())).toEqual([]);
  });

  it('keeps the metric index right when a pod reorders, drops and adds series', () => {
    const { store, clock } = setup();
    const p = store.upsertPod('ns', 'p', 'uid-p', {}, 5000, clock.now());
    const value = (m: string) => read(store, m, clock.now()).reduce((sum, [, , v]) => sum + v, 0);
    store.replaceSeries(p, [def('cm_a'), def('cm_b'), def('cm_b', { x: '1' })], [1, 2, 3], [1, 1, 1].map(() => clock.now()), clock.now(), clock.now());
    expect([value('cm_a'), value('cm_b')]).toEqual([1, 5]);
    store.replaceSeries(p, [def('cm_b', { x: '1' }), def('cm_c'), def('cm_a')], [30, 40, 10], [1, 1, 1].map(() => clock.now()), clock.now(), clock.now());
    expect([value('cm_a'), value('cm_b'), value('cm_c')]).toEqual([10, 30, 40]);
    expect(read(store, 'cm_a', clock.now())).toEqual([['p', '{}', 10, true]]);
    expect(store.podCountWithMetric('ns', 'cm_b')).toBe(1);
  });

  it('a pod re-created under the same name (new uid) does not inherit the old values', () => {
    const { store, clock } = setup();
    const p = store.upsertPod('ns', 'p', 'uid-1', {}, 5000, clock.now());
    store.replaceSeries(p, [def('cm_x')], [1], [clock.now()], clock.now(), clock.now());
    store.upsertPod('ns', 'p', 'uid-2', {}, 5000, clock.now());
    expect(store.seriesTotal).toBe(0);
  });

  it('ignores a snapshot older than the one held (two streams of one pod overlapping)', () => {
    const { store, clock } = setup();
    const p = store.upsertPod('ns', 'p', 'u', {}, 5000, clock.now());
    store.replaceSeries(p, [def('cm_x')], [2], [clock.now()], clock.now(), clock.now());
    const r = store.replaceSeries(p, [def('cm_x')], [1], [clock.now() - 5000], clock.now() - 5000, clock.now());
    expect(r.accepted).toBe(0);
    expect(p.values[0]).toBe(2);
  });
});

describe('limits', () => {
  it('refuses beyond the total limit with a reason, keeping what fits', () => {
    const store = new MemoryStore({ maxSeriesPerPod: 10, maxSeriesTotal: 15 });
    const a = store.upsertPod('ns', 'a', '', {}, 1000, 0);
    const b = store.upsertPod('ns', 'b', '', {}, 1000, 0);
    const defs = Array.from({ length: 10 }, (_, i) => def(`m${i}`));
    expect(store.replaceSeries(a, defs, defs.map(() => 1), defs.map(() => 0), 0, 0)).toEqual({ accepted: 10, refused: 0, reason: '', cause: 'series_limit' });
    expect(store.replaceSeries(b, defs, defs.map(() => 1), defs.map(() => 0), 0, 0)).toEqual({ accepted: 5, refused: 5, reason: 'total series limit of this aggregator (15) reached', cause: 'series_limit' });
    expect(store.seriesTotal).toBe(15);
  });
});

describe('memory budget and answer size', () => {
  it('refuses series beyond the byte budget with a reason, keeping what fits and never evicting another pod', () => {
    const store = new MemoryStore({ maxSeriesPerPod: 1000, maxSeriesTotal: 100_000, maxBytes: 20_000 });
    const a = store.upsertPod('ns', 'a', '', {}, 1000, 0);
    const small = Array.from({ length: 10 }, (_, i) => def(`m${i}`));
    expect(store.replaceSeries(a, small, small.map(() => 1), small.map(() => 0), 0, 0).accepted).toBe(10);
    const held = store.bytesUsed;
    const b = store.upsertPod('ns', 'b', '', {}, 1000, 0);
    const big = Array.from({ length: 100 }, (_, i) => def('cm_big', { i: String(i), pad: 'x'.repeat(100) }));
    const r = store.replaceSeries(b, big, big.map(() => 2), big.map(() => 0), 0, 0);
    expect(r.reason).toBe('memory budget of this aggregator (20000 bytes, --max-store-bytes) reached');
    expect(r.cause).toBe('memory_budget');
    expect(r.accepted).toBeGreaterThan(0);
    expect(r.accepted + r.refused).toBe(100);
    expect(store.bytesUsed).toBeLessThanOrEqual(20_000);
    expect(store.refusal(b, 'cm_big')).toBe(r.reason);
    // a's series are untouched, and a pod not yet held is not admitted.
    expect(a.seriesCount).toBe(10);
    expect(store.bytesUsed).toBeGreaterThan(held);
    expect(store.admitPod('ns', 'c', '', { app: 'x'.repeat(20_000) })).toBe(r.reason);
    expect(store.admitPod('ns', 'a', '', {})).toBeUndefined();
    // Deleting gives every byte back.
    store.deletePod('ns', 'a');
    store.deletePod('ns', 'b');
    expect(store.bytesUsed).toBe(0);
  });
});

describe('series(): the one read of held values', () => {
  it('visits every series of the metric pod by pod, asking the pod filter once per pod, each judged servable now', () => {
    const { store, clock, report } = setup('{"metrics":[{"name":"cm_x","staleAfter":"20s"}]}');
    report('a', { cm_x: 1, cm_y: 9 }, { app: 'web' });
    const b = store.upsertPod('ns', 'b', 'uid-b', { app: 'web' }, 5000, clock.now());
    store.replaceSeries(b, [def('cm_x', { q: '1' }), def('cm_y'), def('cm_x', { q: '2' })], [2, 9, 3], [clock.now() - 30_000, clock.now(), clock.now()], clock.now(), clock.now());
    report('c', { cm_x: 4 }, { app: 'other' });
    const asked: string[] = [];
    const web = (pod: { name: string; labels: Record<string, string> }) => (asked.push(pod.name), pod.labels['app'] === 'web');
    expect(read(store, 'cm_x', clock.now(), web)).toEqual([
      ['a', '{}', 1, true],
      ['b', '{"q":"1"}', 2, false],
      ['b', '{"q":"2"}', 3, true],
    ]);
    expect(asked).toEqual(['a', 'b', 'c']);
    // The rules of the name come with it, and a stale series says why, as a 404 would.
    const series = store.series('ns', 'cm_x', web, clock.now());
    expect(series.policy.staleAfterMs).toBe(20_000);
    const reasons = Array.from(series, (s) => (s.servable ? '' : s.staleReason())).filter((r) => r !== '');
    expect(reasons).toEqual([expect.stringMatching(/^stale since .* \(last sample at .*, values older than 20s are not served\)$/)]);
    // Nothing held under a name, or in a namespace: nothing visited.
    expect(read(store, 'cm_none', clock.now())).toEqual([]);
    expect([...store.series('elsewhere', 'cm_x', ALL_PODS, clock.now())]).toEqual([]);
  });

  it('hands out one cursor for the whole walk: nothing is allocated per value', () => {
    const { store, report, clock } = setup();
    for (let i = 0; i < 5; i++) report(`p${i}`, { cm_x: i });
    const cursors = new Set<HeldSeries>();
    let sum = 0;
    for (const s of store.series('ns', 'cm_x', ALL_PODS, clock.now())) {
      cursors.add(s);
      sum += s.value;
    }
    expect([cursors.size, sum]).toEqual([1, 0 + 1 + 2 + 3 + 4]);
  });

  it('summarises each pod for the status page: series servable now and the newest sample', () => {
    const { store, report, clock } = setup();
    report('a', { cm_x: 1, cm_y: 2 });
    clock.advance(16_000);
    report('b', { cm_x: 1 });
    store.upsertPod('ns', 'quiet', '', {}, 5000, clock.now());
    expect(store.podSummaries(clock.now()).map(({ pod, fresh, newestMs }) => [pod.name, fresh, newestMs])).toEqual([
      ['a', 0, clock.now() - 16_000],
      ['b', 1, clock.now()],
      ['quiet', 0, 0],
    ]);
    expect([...store.namespaces()]).toEqual(['ns']);
    expect([...store.metricNamesIn('ns')].sort()).toEqual(['cm_x', 'cm_y']);
  });
});

describe('the store owns its pods', () => {
  it("setLastError and setPodLabels change the pod and count its bytes; the next snapshot clears the error", () => {
    const { store, report, clock } = setup();
    report('p', { cm_x: 1 });
    const pod = store.getPod('ns', 'p')!;
    const before = store.bytesUsed;
    store.setLastError(pod, 'e'.repeat(1000));
    expect(pod.lastError).toBe('e'.repeat(1000));
    expect(store.bytesUsed - before).toBeGreaterThanOrEqual(1000);
    report('p', { cm_x: 2 });
    expect(pod.lastError).toBe('');
    expect(store.bytesUsed).toBe(before);
    store.setPodLabels(pod, { app: 'l'.repeat(500) });
    expect(pod.labels).toEqual({ app: 'l'.repeat(500) });
    expect(store.bytesUsed - before).toBeGreaterThanOrEqual(500);
    expect(read(store, 'cm_x', clock.now())).toEqual([['p', '{}', 2, true]]);
  });
});
