/** Delays between reconnect attempts. */
export interface Backoff {
  /** The delay before the next attempt, in ms; each call doubles the ceiling up to maxMs. */
  next(): number;
  /** Back to initialMs (after a connection that worked). */
  reset(): void;
}

/**
 * Exponential backoff with "equal jitter": the n-th delay is uniform in [c/2, c] where c = min(maxMs, initialMs·2^n),
 * so replicas restarting together are not hit by every sidecar in the same millisecond, and no delay is ever
 * shorter than half its ceiling. `random` returns [0, 1) (injected by tests).
 */
export function createBackoff(initialMs: number, maxMs: number, random: () => number = Math.random): Backoff {
  let ceiling = initialMs;
  return {
    next() {
      const c = Math.min(ceiling, maxMs);
      ceiling = Math.min(ceiling * 2, maxMs);
      return Math.round(c / 2 + random() * (c / 2));
    },
    reset() {
      ceiling = initialMs;
    },
  };
}
