import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../aggregator/src/store/memory-store.js';
import { StoreMetricsProvider } from '../../../../aggregator/src/api/store-provider.js';
import { standaloneSelectors } from '../../../../aggregator/src/kube/object-selectors.js';
import { parseSelector } from '../../../../aggregator/src/selector.js';
import { ApiError } from '../../../../aggregator/src/errors.js';
import { def, everything, expectNotFound, setup } from '../../../helpers/held-values.js';

// The provider over the store (aggregator/src/api/store-provider.ts): what it serves and the 404 it gives instead.

describe('staleness contract, as served', () => {
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

describe('answer size', () => {
  it('refuses an answer over --max-response-bytes before building it, with a 500 Status naming the limit', () => {
    const store = new MemoryStore({ maxSeriesPerPod: 100, maxSeriesTotal: 1000 });
    const provider = new StoreMetricsProvider(store, standaloneSelectors(store, parseSelector), () => 0, 4096);
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
