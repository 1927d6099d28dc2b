/** The samples of one counter kept for its rate: times and reset-adjusted cumulative increase, oldest first. */
interface Track {
  times: number[];
  increase: number[];
  head: number;
  lastValue: number;
}

/**
 * Per-second rates of counters, like Prometheus rate() without extrapolation: the increase between the oldest and
 * newest sample in the window divided by the time between them. A decrease is a counter reset: the counter
 * restarted from zero, so the increase across it is the new value (never a negative rate). One sample at or
 * before the window's start is kept, so once warm the rate spans the whole window. A series has no rate until
 * it has two samples. Memory: O(samples per window) per series; series that leave are dropped by retain().
 */
export class RateTracker {
  private readonly tracks = new Map<string, Track>();

  /** @param windowMs the rate window (--rate-window). */
  constructor(private readonly windowMs: number) {}

  /**
   * Adds the sample of series `key` at timeMs and returns its rate per second, or undefined while it has only
   * one sample. A sample not newer than the last one changes nothing (the rate so far is returned). A NaN or
   * ±Inf value is not kept and gives NaN (the aggregator then refuses to serve it, as for any non-finite value).
   */
  observe(key: string, timeMs: number, value: number): number | undefined {
    if (!Number.isFinite(value)) return Number.NaN;
    let t = this.tracks.get(key);
    if (!t) {
      this.tracks.set(key, { times: [timeMs], increase: [0], head: 0, lastValue: value });
      return undefined;
    }
    const last = t.times.length - 1;
    if (timeMs > t.times[last]!) {
      const delta = value >= t.lastValue ? value - t.lastValue : value;
      t.times.push(timeMs);
      t.increase.push(t.increase[last]! + delta);
      t.lastValue = value;
      while (t.head < t.times.length - 2 && t.times[t.head + 1]! <= timeMs - this.windowMs) t.head++;
      if (t.head > 64 && t.head * 2 > t.times.length) {
        t.times = t.times.slice(t.head);
        t.increase = t.increase.slice(t.head);
        t.head = 0;
      }
    }
    const n = t.times.length - 1;
    if (n === t.head) return undefined;
    return (t.increase[n]! - t.increase[t.head]!) / ((t.times[n]! - t.times[t.head]!) / 1000);
  }

  /** Forgets every series not in `keep` (it left the exposition; if it comes back it starts afresh). */
  retain(keep: ReadonlySet<string>): void {
    for (const k of this.tracks.keys()) if (!keep.has(k)) this.tracks.delete(k);
  }

  /** Number of series tracked. */
  get size(): number {
    return this.tracks.size;
  }
}
