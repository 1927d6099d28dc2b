import { describe, expect, it } from 'vitest';
import { MemoryStore, type SeriesDefinition } from '../../aggregator/src/store/memory-store.js';
import { Freshness } from '../../aggregator/src/store/freshness.js';
import { compileRules, noRules } from '../../aggregator/src/rules.js';
import { MetricsProvider, standaloneSelectors } from '../../aggregator/src/api/provider.js';
import { Discovery, PLACEHOLDER_METRIC } from '../../aggregator/src/api/discovery.js';
import { parseSelector } from '../../aggregator/src/selector.js';
import { ApiError } from '../../aggregator/src/api/status.js';

const def = (name: string, labels: Record<string, string> = {}, windowMs = 0): SeriesDefinition => ({ name, labels, kind: windowMs ? 'RATE' : 'GAUGE', windowMs });
const everything = parseSelector('');

/** A store with an injected clock, the way the aggregator wires it. */
function setup(rulesJson?: string, globalStaleAfterMs?: number) {
  let now = 1_000_000;
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const store = new MemoryStore({ maxSeriesPerPod: 100, maxSeriesTotal: 1000 });
  const rules = rulesJson ? compileRules(rulesJson, 'rules.json') : noRules;
  const freshness = new Freshness(() => rules, globalStaleAfterMs);
  const provider = new MetricsProvider(store, freshness, standaloneSelectors(store, parseSelector), clock.now);
  const discovery = new Discovery(store, freshness, clock.now);
  const report = (name: string, values: Record<string, number>, labels: Record<string, string> = {}, intervalMs = 5000) => {
    const pod = store.upsertPod('ns', name, `uid-${name}`, labels, intervalMs, now);
    const defs = Object.keys(values).map((n) => def(n));
    return store.replaceSeries(pod, defs, Object.values(values), defs.map(() => now), now, now);
  };
  return { clock, store, provider, discovery, report };
}

function expectNotFound(fn: () => unknown, message: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(404);
    expect((err as ApiError).message).toMatch(message);
    return;
  }
  throw new Error('expected a NotFound');
}

describe('staleness contract', () => {
  it('serves a value while now - sampleTime <= 3x interval (floor 15s), then omits it with "stale since"', () => {
    const { clock, provider, report } = setup();
    report('p1', { cm_x: 4 }, {}, 10_000); // staleAfter = 30s
    clock.advance(30_000);
    expect(provider.podMetrics('ns', '*', 'cm_x', everything, everything)).toHaveLength(1);
    clock.advance(1);
    expectNotFound(() => provider.podMetrics('ns', '*', 'cm_x', everything, everything), /stale since .* values older than 30s are not served/);
  });

  it('uses the 15s floor for short intervals, and --stale-after when given', () => {
    const a = setup();
    a.report('p1', { cm_x: 1 }, {}, 1000);
    a.clock.advance(15_000);
    expect(a.provider.podMetrics('ns', '*', 'cm_x', everything, everything)).toHaveLength(1);
    a.clock.advance(1);
    expectNotFound(() => a.provider.podMetrics('ns', '*', 'cm_x', everything, everything), /stale/);
    const b = setup(undefined, 2000);
    b.report('p1', { cm_x: 1 }, {}, 1000);
    b.clock.advance(2001);
    expectNotFound(() => b.provider.podMetrics('ns', '*', 'cm_x', everything, everything), /older than 2s/);
  });

  it('a per-metric serve-last rule serves the last value until maxAge', () => {
    const { clock, provider, report } = setup('{"metrics":[{"name":"cm_keep*","stale":"serve-last","maxAge":"1m","staleAfter":"10s"}]}');
    report('p1', { cm_keep: 7, cm_drop: 7 });
    clock.advance(59_000);
    expect(provider.podMetrics('ns', 'p1', 'cm_keep', everything, everything)[0]!.value).toBe(7);
    expectNotFound(() => provider.podMetrics('ns', 'p1', 'cm_drop', everything, everything), /stale/);
    clock.advance(2000);
    expectNotFound(() => provider.podMetrics('ns', 'p1', 'cm_keep', everything, everything), /stale/);
  });

  it('a breaker-open report makes every series of the pod stale at once; the next good snapshot clears it', () => {
    const { store, provider, report, clock } = setup();
    report('p1', { cm_x: 1 });
    store.markFailed(store.getPod('ns', 'p1')!, 'timeout', false, clock.now());
    expect(provider.podMetrics('ns', 'p1', 'cm_x', everything, everything)).toHaveLength(1);
    store.markFailed(store.getPod('ns', 'p1')!, 'breaker open', true, clock.now());
    expectNotFound(() => provider.podMetrics('ns', 'p1', 'cm_x', everything, everything), /stale/);
    report('p1', { cm_x: 2 });
    expect(provider.podMetrics('ns', 'p1', 'cm_x', everything, everything)[0]!.value).toBe(2);
  });

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
    expect(store.podsWithMetric('ns', 'cm_x')).toBeUndefined();
  });

  it('keeps the metric index right when a pod reorders, drops and adds series', () => {
    const { store, provider, clock } = setup();
    const p = store.upsertPod('ns', 'p', 'uid-p', {}, 5000, clock.now());
    const value = (m: string) => provider.podMetrics('ns', 'p', m, everything, everything)[0]!.value;
    store.replaceSeries(p, [def('cm_a'), def('cm_b'), def('cm_b', { x: '1' })], [1, 2, 3], [1, 1, 1].map(() => clock.now()), clock.now(), clock.now());
    expect([value('cm_a'), value('cm_b')]).toEqual([1, 5]);
    store.replaceSeries(p, [def('cm_b', { x: '1' }), def('cm_c'), def('cm_a')], [30, 40, 10], [1, 1, 1].map(() => clock.now()), clock.now(), clock.now());
    expect([value('cm_a'), value('cm_b'), value('cm_c')]).toEqual([10, 30, 40]);
    expect(store.podsWithMetric('ns', 'cm_a')?.get(p)).toEqual([2]);
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

describe('discovery', () => {
  it('lists only names with a fresh series, and a placeholder when nothing is fresh', () => {
    const { clock, discovery, report } = setup();
    const names = (body: string) => (JSON.parse(body) as { resources: { name: string }[] }).resources.map((r) => r.name);
    expect(names(discovery.customResourceList('v1beta2'))).toContain(`pods/${PLACEHOLDER_METRIC}`);
    report('p1', { cm_a: 1, Cm_B: 2 });
    expect(discovery.freshNames()).toEqual([]); // the list is recomputed at most once a second
    clock.advance(1000);
    report('p1', { cm_a: 1, Cm_B: 2 });
    expect(discovery.freshNames()).toEqual(['Cm_B', 'cm_a']);
    expect(names(discovery.externalResourceList())).toEqual(['cm_b', 'cm_a']);
    const list = names(discovery.customResourceList('v1beta1'));
    expect(list).toHaveLength(16);
    expect(list).toContain('jobs.batch/cm_a');
    clock.advance(16_000);
    expect(names(discovery.customResourceList('v1beta1'))).toEqual(expect.arrayContaining([`pods/${PLACEHOLDER_METRIC}`]));
  });
});

describe('aggregation rules', () => {
  it('object metrics default to sum; a rule may choose avg, max or min', () => {
    for (const [agg, want] of [['sum', 6], ['avg', 2], ['max', 3], ['min', 1]] as const) {
      const { provider, report } = setup(`{"metrics":[{"name":"cm_*","aggregation":"${agg}"}]}`);
      for (const i of [1, 2, 3]) report(`web-${i}`, { cm_v: i }, { app: 'web' });
      report('other', { cm_v: 100 }, { app: 'other' });
      expect(provider.objectMetric({ resource: 'services', kind: 'Service', apiVersion: 'v1' }, 'ns', 'web', 'cm_v', everything).value).toBe(want);
    }
  });

  it('rejects bad rules files naming every problem', () => {
    expect(() => compileRules('{"metrics":[{"name":"a","aggregation":"median","oops":1},{"staleAfter":"soon"}]}', 'r.json')).toThrow(
      'r.json: metrics[0]: unknown key "oops"; r.json: metrics[0]: aggregation must be sum, avg, max or min, not "median"; r.json: metrics[1]: "name" (a metric name or glob) is required',
    );
  });
});

describe('one pod cannot spoil an answer for the others', () => {
  const SERVICE = { resource: 'services', kind: 'Service', apiVersion: 'v1' };
  /** Three app=web pods with cm_x 1, 2, 3, and one more whose value (or sample time) cannot be served. */
  function withBadPod(value: number, sampleMs?: number) {
    const s = setup();
    for (const i of [1, 2, 3]) s.report(`web-${i}`, { cm_x: i }, { app: 'web' });
    const bad = s.store.upsertPod('ns', 'web-bad', 'uid-bad', { app: 'web' }, 5000, s.clock.now());
    s.store.replaceSeries(bad, [def('cm_x')], [value], [sampleMs ?? s.clock.now()], s.clock.now(), s.clock.now());
    return s;
  }
  const values = (list: { object: { name: string }; value: number }[]) => Object.fromEntries(list.map((v) => [v.object.name, v.value]));

  it('a value beyond what the HPA can hold (1e300) is left out of pods/* and the Service sum; its 404 says why', () => {
    const { provider } = withBadPod(1e300);
    expect(values(provider.podMetrics('ns', '*', 'cm_x', everything, everything))).toEqual({ 'web-1': 1, 'web-2': 2, 'web-3': 3 });
    expect(provider.objectMetric(SERVICE, 'ns', 'web', 'cm_x', everything).value).toBe(6);
    expectNotFound(() => provider.podMetrics('ns', 'web-bad', 'cm_x', everything, everything), /^the server could not find the metric cm_x for pod web-bad in namespace ns: not served: the last value \(at .*\) cannot be a Kubernetes quantity: \|1e\+300\| is beyond what the HPA can hold \(at most 9223372036854775\.807\)$/);
  });

  it('the same in external answers: the other series are served unchanged', () => {
    const { store, provider, clock } = setup();
    const good = store.upsertPod('ns', 'exp', '', {}, 5000, clock.now());
    store.replaceSeries(good, [def('cm_q', { q: 'a' }), def('cm_q', { q: 'b' })], [1, 2], [clock.now(), clock.now()], clock.now(), clock.now());
    const bad = store.upsertPod('ns', 'bad', '', {}, 5000, clock.now());
    store.replaceSeries(bad, [def('cm_q', { q: 'c' })], [-1e300], [clock.now()], clock.now(), clock.now());
    expect(provider.externalMetrics('ns', 'cm_q', everything).map((v) => [v.labels['q'], v.value])).toEqual([['a', 1], ['b', 2]]);
    expectNotFound(() => provider.externalMetrics('ns', 'cm_q', parseSelector('q=c')), /the server could not find the metric cm_q for series matching "q=c" in namespace ns: not served: .*\|-1e\+300\| is beyond what the HPA can hold/);
  });

  it('a sample time outside the years 0001-9999 is left out with the reason, never a 500', () => {
    for (const t of [8_640_000_000_000_000, -62_135_596_800_001]) {
      const { provider } = withBadPod(5, t);
      expect(values(provider.podMetrics('ns', '*', 'cm_x', everything, everything))).toEqual({ 'web-1': 1, 'web-2': 2, 'web-3': 3 });
      expect(provider.objectMetric(SERVICE, 'ns', 'web', 'cm_x', everything).value).toBe(6);
      expectNotFound(() => provider.podMetrics('ns', 'web-bad', 'cm_x', everything, everything), new RegExp(`not served: the sample time .*${t > 0 ? '\\+275760-09-13T00:00:00.000Z' : '0000-12-31T23:59:59.999Z'} is outside the years 0001-9999 a Kubernetes timestamp can carry$`));
    }
  });

  it('a sum of servable values beyond the HPA range is a 404 for that object only', () => {
    const { provider, report } = setup();
    report('a-1', { cm_x: 9e15 }, { app: 'a' });
    report('a-2', { cm_x: 9e15 }, { app: 'a' });
    report('b-1', { cm_x: 4 }, { app: 'b' });
    expectNotFound(() => provider.objectMetric(SERVICE, 'ns', 'a', 'cm_x', everything), /^the server could not find the metric cm_x for services a in namespace ns: the sum of 2 pod value\(s\) cannot be a Kubernetes quantity: \|18000000000000000\| is beyond what the HPA can hold/);
    expect(provider.objectMetric(SERVICE, 'ns', 'b', 'cm_x', everything).value).toBe(4);
  });

  it('without a labelSelector, a 404 does not speak of selector ""', () => {
    const { provider, report, clock } = setup();
    report('p1', { cm_x: 1 });
    clock.advance(16_000);
    expectNotFound(() => provider.podMetrics('ns', '*', 'cm_x', everything, everything), /^the server could not find the metric cm_x for pods in namespace ns: stale since /);
    expectNotFound(() => provider.externalMetrics('ns', 'cm_x', everything), /^the server could not find the metric cm_x for series in namespace ns: stale since /);
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

  it('refuses an answer over --max-response-bytes before building it, with a 500 Status naming the limit', () => {
    const store = new MemoryStore({ maxSeriesPerPod: 100, maxSeriesTotal: 1000 });
    const freshness = new Freshness(() => noRules, undefined);
    const provider = new MetricsProvider(store, freshness, standaloneSelectors(store, parseSelector), () => 0, 4096);
    for (let p = 0; p < 30; p++) {
      const pod = store.upsertPod('ns', `pod-${p}`, '', { app: 'web', p: String(p) }, 5000, 0);
      store.replaceSeries(pod, [def('cm_x', { big: 'x'.repeat(100), p: String(p) })], [p], [0], 0, 0);
    }
    for (const call of [() => provider.podMetrics('ns', '*', 'cm_x', parseSelector('app=web'), everything), () => provider.externalMetrics('ns', 'cm_x', everything)]) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe(500);
      expect((err as ApiError).reason).toBe('InternalError');
      expect((err as ApiError).message).toMatch(/^Internal error occurred: the answer for .* would be larger than this server's limit of 4096 bytes \(--max-response-bytes\): (the labelSelector "app=web" matched too much|no labelSelector was given); narrow the labelSelector$/);
    }
    // A narrower selector is answered.
    expect(provider.podMetrics('ns', '*', 'cm_x', parseSelector('app=web,p in (1,2)'), everything)).toHaveLength(2);
    expect(provider.externalMetrics('ns', 'cm_x', parseSelector('p in (1,2)'))).toHaveLength(2);
  });
});
