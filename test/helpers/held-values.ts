import { expect } from 'vitest';
import { MemoryStore, type SeriesDefinition } from '../../aggregator/src/store/memory-store.js';
import { Freshness } from '../../aggregator/src/store/freshness.js';
import { compileRules, noRules } from '../../aggregator/src/rules.js';
import { StoreMetricsProvider } from '../../aggregator/src/api/store-provider.js';
import { standaloneSelectors } from '../../aggregator/src/kube/object-selectors.js';
import { parseSelector } from '../../aggregator/src/selector.js';
import { ApiError } from '../../aggregator/src/errors.js';

// A store and its provider with an injected clock, the way the aggregator wires them (unit tests of store/ and api/).

export const def = (name: string, labels: Record<string, string> = {}, windowMs = 0): SeriesDefinition => ({ name, labels, kind: windowMs ? 'RATE' : 'GAUGE', windowMs });
export const everything = parseSelector('');

export function setup(rulesJson?: string, globalStaleAfterMs?: number) {
  let now = 1_000_000;
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const rules = rulesJson ? compileRules(rulesJson, 'rules.json') : noRules;
  const store = new MemoryStore({ maxSeriesPerPod: 100, maxSeriesTotal: 1000 }, new Freshness(() => rules, globalStaleAfterMs));
  const provider = new StoreMetricsProvider(store, standaloneSelectors(store, parseSelector), clock.now);
  /** One snapshot of pod `name` in namespace ns: `values` by metric name, sampled now. */
  const report = (name: string, values: Record<string, number>, labels: Record<string, string> = {}, intervalMs = 5000) => {
    const pod = store.upsertPod('ns', name, `uid-${name}`, labels, intervalMs, now);
    const defs = Object.keys(values).map((n) => def(n));
    return store.replaceSeries(pod, defs, Object.values(values), defs.map(() => now), now, now);
  };
  return { clock, store, provider, report };
}

export function expectNotFound(fn: () => unknown, message: RegExp): void {
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
