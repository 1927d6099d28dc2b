import type { Kind } from '../../common/src/proto.js';
import type { Family, FamilyType } from './parse/exposition.js';
import { RateTracker } from './rate.js';

/**
 * What a series is, apart from its value: interned by the builder, so it is the same object in every scrape
 * for as long as the series lasts (a stream defines it once and then compares by identity).
 */
export interface SeriesDef {
  /** name + sorted labels: unique per series. */
  readonly key: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly kind: Kind;
  /** The rate window for RATE series, else 0. */
  readonly windowMs: number;
}

/**
 * The series of one scrape, column-wise: defs[i] had values[i] at times[i] (its exposition timestamp, or the scrape
 * time). Columns instead of an object per series: a scrape's result lives until the next one (replicas hold it), and
 * three arrays are far less for the garbage collector to carry than thousands of small objects.
 */
export interface ScrapedSeries {
  readonly defs: readonly SeriesDef[];
  readonly values: readonly number[];
  readonly times: readonly number[];
}

/** What one scrape yields after selection. */
export interface Built extends ScrapedSeries {
  /** Series over the cap, not sent. */
  dropped: number;
  /** Samples that repeated a series already seen in this scrape (the first one is kept). */
  duplicates: number;
}

// NOTE: an OpenMetrics `_created` sample is a creation timestamp, not a value to scale on.
const HAS_CREATED: ReadonlySet<FamilyType> = new Set(['counter', 'histogram', 'summary']);

/**
 * Turns the selected families of one scrape into the series to send, in exposition order, each counter's rate
 * right after it, at most maxSeries. Every sample goes as-is: counters as COUNTER, gauges as GAUGE, everything else
 * (untyped, histogram and summary parts `_bucket` `_sum` `_count`, …) as UNTYPED. A counter (TYPE counter, or an
 * untyped name ending `_total`) also yields its per-second rate over the window, kind RATE, named without `_total`
 * (`http_requests_total` → `http_requests`; a counter whose name has no `_total` gets `<name>_rate`). Values (NaN,
 * ±Inf included) are passed through. Keeps rate state and definitions between calls (series gone from a scrape are
 * forgotten), so one builder serves one scrape target; not safe for concurrent builds.
 */
export class SeriesBuilder {
  private readonly rates: RateTracker;
  /** Every series of the last scrape (also those over the cap), with the number of the scrape that last saw it. */
  private readonly known = new Map<string, { def: SeriesDef; seen: number }>();
  private scrape = 0;

  /**
   * @param windowMs rate window (--rate-window)
   * @param maxSeries cap on series per scrape, rates included (--max-series); the excess is counted in `dropped`
   */
  constructor(private readonly windowMs: number, private readonly maxSeries: number) {
    this.rates = new RateTracker(windowMs);
  }

  build(families: readonly Family[], scrapeTimeMs: number): Built {
    const scrape = ++this.scrape;
    const defs: SeriesDef[] = [];
    const values: number[] = [];
    const times: number[] = [];
    const counters = new Set<string>();
    let total = 0;
    let duplicates = 0;
    const add = (key: string, name: string, labels: Readonly<Record<string, string>>, kind: Kind, windowMs: number, value: number, time: number): boolean => {
      let entry = this.known.get(key);
      if (entry?.seen === scrape) {
        duplicates++;
        return false;
      }
      if (entry?.def.kind !== kind) this.known.set(key, (entry = { def: { key, name, labels, kind, windowMs }, seen: scrape }));
      entry.seen = scrape;
      total++;
      if (defs.length < this.maxSeries) {
        defs.push(entry.def);
        values.push(value);
        times.push(time);
      }
      return true;
    };
    for (const f of families) {
      for (const smp of f.samples) {
        if (HAS_CREATED.has(f.type) && smp.name === `${f.name}_created`) continue;
        const lk = labelsKey(smp.labels);
        const key = smp.name + lk;
        const t = smp.timestampMs ?? scrapeTimeMs;
        const counter = f.type === 'counter' || ((f.type === 'untyped' || f.type === 'unknown') && smp.name.endsWith('_total'));
        if (!add(key, smp.name, smp.labels, counter ? 'COUNTER' : f.type === 'gauge' ? 'GAUGE' : 'UNTYPED', 0, smp.value, t) || !counter) continue;
        counters.add(key);
        const rate = this.rates.observe(key, t, smp.value);
        if (rate === undefined) continue;
        const name = smp.name.endsWith('_total') ? smp.name.slice(0, -'_total'.length) : `${smp.name}_rate`;
        add(name + lk, name, smp.labels, 'RATE', this.windowMs, rate, t);
      }
    }
    this.rates.retain(counters);
    this.known.forEach((entry, key) => entry.seen !== scrape && this.known.delete(key));
    return { defs, values, times, dropped: total - defs.length, duplicates };
  }
}

/**
 * `{a=1:x,b=2:yz}`: the labels with their names sorted and their values length-prefixed, so it is unique per label
 * set without escaping; '' for no labels.
 */
function labelsKey(labels: Readonly<Record<string, string>>): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  // NOTE: exposition label order is nearly always already sorted or stable; sort in place only when needed
  // (Array.prototype.sort allocates, and this runs for every sample of every scrape).
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  let s = '{';
  for (const k of keys) {
    const v = labels[k]!;
    s += `${k}=${v.length}:${v},`;
  }
  return `${s}}`;
}
