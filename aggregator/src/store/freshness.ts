import type { Rules, MetricPolicy } from '../rules.js';
import type { Pod } from './memory-store.js';
import { quantityProblem } from '../quantity.js';
import { describeTime, servableTime } from '../timestamp.js';

export const MIN_STALE_AFTER_MS = 15_000;

/**
 * Decides whether a held series may be served now: the staleness contract (README, "How staleness and replicas behave").
 * Fresh while now - sampleTime <= staleAfter (per metric rule, else --stale-after, else 3x the pod's interval with a
 * 15s floor). A pod whose sidecar reported its scrape breaker open is stale at once. A value the Quantity type
 * cannot carry for the HPA (NaN, ±Inf, beyond int64 millis) or a sample time outside the years 0001-9999 is never
 * served: that pod's value is left out of an answer, never the whole answer.
 * With a serve-last rule a stale value is still served until maxAge.
 */
export class Freshness {
  constructor(
    private readonly rules: () => Rules,
    private readonly globalStaleAfterMs: number | undefined,
  ) {}

  policy(metric: string): MetricPolicy {
    return this.rules().forMetric(metric);
  }

  staleAfterMs(pod: Pod, policy: MetricPolicy): number {
    return policy.staleAfterMs ?? this.globalStaleAfterMs ?? Math.max(3 * pod.intervalMs, MIN_STALE_AFTER_MS);
  }

  /** Whether a value of `pod` sampled at sampleMs may be served at nowMs under `policy`. */
  servable(pod: Pod, value: number, sampleMs: number, policy: MetricPolicy, nowMs: number): boolean {
    if (!Number.isFinite(value) || !servableTime(sampleMs)) return false;
    if (Math.abs(value) >= 9e15 && quantityProblem(value) !== undefined) return false;
    const age = nowMs - sampleMs;
    const fresh = pod.staleSinceMs === undefined && age <= this.staleAfterMs(pod, policy);
    if (fresh) return true;
    return policy.stale === 'serve-last' && age <= policy.maxAgeMs;
  }

  /** Why a value that servable() refused is not served, for the 404 message: "stale since T (reason)". */
  staleReason(pod: Pod, value: number, sampleMs: number, policy: MetricPolicy): string {
    const last = describeTime(sampleMs);
    if (!servableTime(sampleMs)) return `not served: the sample time ${last} is outside the years 0001-9999 a Kubernetes timestamp can carry`;
    if (pod.staleSinceMs !== undefined) return `stale since ${describeTime(pod.staleSinceMs)} (the pod's ${pod.reporter} reports its scrape breaker open: ${pod.lastError || 'no error given'}; last sample at ${last})`;
    if (!Number.isFinite(value)) return `stale since ${last} (the last value is ${value}; NaN and ±Inf are never served)`;
    const problem = quantityProblem(value);
    if (problem !== undefined) return `not served: the last value (at ${last}) cannot be a Kubernetes quantity: ${problem}`;
    const staleAfterMs = this.staleAfterMs(pod, policy);
    return `stale since ${describeTime(sampleMs + staleAfterMs)} (last sample at ${last}, values older than ${staleAfterMs / 1000}s are not served)`;
  }
}
