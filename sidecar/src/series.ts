import type { Family } from './parse/exposition.js';
import type { OutSeries } from './replicas.js';
import { RateTracker } from './rate.js';

/** What one scrape yields after selection: the series to send and how many were dropped by the cap. */
export interface Selected {
  series: OutSeries[];
  dropped: number;
}

/**
 * Turns the selected families of one scrape into the series to send: every sample as-is (counters as
 * COUNTER, gauges as GAUGE, everything else, including histogram and summary parts, as UNTYPED), plus for
 * every counter sample a per-second rate named without `_total`, carrying its window. Caps at maxSeries.
 */
export class SeriesBuilder {
  private readonly rates: RateTracker;

  constructor(private readonly windowMs: number, private readonly maxSeries: number) {
    this.rates = new RateTracker(windowMs);
  }

  build(families: Family[], scrapeTimeMs: number): Selected {
    const out: OutSeries[] = [];
    const seen = new Set<string>();
    let total = 0;
    const push = (s: OutSeries) => {
      total++;
      if (out.length < this.maxSeries) out.push(s);
    };
    for (const f of families) {
      for (const smp of f.samples) {
        if (smp.name.endsWith('_created')) continue; // OpenMetrics creation timestamps are not values to scale on
        const labels = smp.labels;
        const lk = labelsKey(labels);
        const key = `${smp.name}${lk}`;
        const t = smp.timestampMs ?? scrapeTimeMs;
        const counter = f.type === 'counter' || ((f.type === 'untyped' || f.type === 'unknown') && smp.name.endsWith('_total'));
        push({ key, name: smp.name, labels, kind: counter ? 'COUNTER' : f.type === 'gauge' ? 'GAUGE' : 'UNTYPED', windowMs: 0, value: smp.value, timestampMs: t });
        if (!counter) continue;
        seen.add(key);
        const rate = this.rates.observe(key, t, smp.value);
        if (rate === undefined) continue;
        const name = smp.name.endsWith('_total') ? smp.name.slice(0, -'_total'.length) : `${smp.name}_rate`;
        push({ key: `${name}${lk}`, name, labels, kind: 'RATE', windowMs: this.windowMs, value: rate, timestampMs: t });
      }
    }
    this.rates.retain(seen);
    return { series: out, dropped: total - out.length };
  }
}

function labelsKey(labels: Record<string, string>): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  if (keys.length > 1) keys.sort();
  let s = '{';
  for (const k of keys) s += `${k}=${JSON.stringify(labels[k])},`;
  return `${s}}`;
}
