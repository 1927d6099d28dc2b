/**
 * Per-second rates of counters, like Prometheus rate() over a sliding window: the increase between the oldest
 * and newest sample in the window, with counter resets (a decrease) counted as a restart from zero, divided by
 * the time between them. A series needs two samples in the window before it has a rate. Never negative.
 */
export class RateTracker {
  private readonly points = new Map<string, { t: number[]; v: number[] }>();

  constructor(private readonly windowMs: number) {}

  /** Adds a sample and returns the rate over the window, or undefined while there is only one sample. */
  observe(key: string, timeMs: number, value: number): number | undefined {
    let p = this.points.get(key);
    if (!p) this.points.set(key, (p = { t: [], v: [] }));
    const last = p.t.length - 1;
    if (last >= 0 && timeMs <= p.t[last]!) return this.rateOf(p);
    p.t.push(timeMs);
    p.v.push(value);
    // Keep one point at or before the window start, so the rate spans the whole window.
    while (p.t.length > 2 && p.t[1]! <= timeMs - this.windowMs) {
      p.t.shift();
      p.v.shift();
    }
    return this.rateOf(p);
  }

  /** Forgets series not in `keep` (they left the exposition). */
  retain(keep: Set<string>): void {
    for (const k of this.points.keys()) if (!keep.has(k)) this.points.delete(k);
  }

  get size(): number {
    return this.points.size;
  }

  private rateOf(p: { t: number[]; v: number[] }): number | undefined {
    const n = p.t.length;
    if (n < 2) return undefined;
    let increase = 0;
    for (let i = 1; i < n; i++) {
      const d = p.v[i]! - p.v[i - 1]!;
      increase += d >= 0 ? d : p.v[i]!; // reset: the counter restarted from zero
    }
    const seconds = (p.t[n - 1]! - p.t[0]!) / 1000;
    return seconds > 0 ? increase / seconds : undefined;
  }
}
