import type { Kind } from '../../../common/src/proto.js';
import type { Family, FamilyType, SampleBudget } from '../parse/index.js';
import { RateTracker } from './rate.js';

/**
 * What a series is, apart from its value: interned by the builder, so it is the same object in every scrape
 * for as long as the series lasts (a stream defines it once and then compares by identity).
 */
export interface SeriesDef {
  /** name + sorted labels: unique per series. */
  readonly key: string;
  readonly name: string;
  /** The metric family the series came from (for logs and trim messages). */
  readonly family: string;
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

/** Why a selected series is not sent: a bounded label value of metrics_relay_sidecar_series_dropped_total. */
export type DropReason = 'max_series' | 'label_name_too_long' | 'label_value_too_long' | 'too_many_labels' | 'snapshot_too_large';

/** Series not sent for one reason in one scrape, and the families they came from (at most NAMED_FAMILIES named). */
export interface Drop {
  series: number;
  families: string[];
  /** Families cut but not named (past NAMED_FAMILIES). */
  moreFamilies: number;
}

/** What one scrape yields after selection. */
export interface Built extends ScrapedSeries {
  /** Series not sent, by reason (only reasons that happened). */
  drops: Partial<Record<DropReason, Drop>>;
  /** Samples that repeated a series already taken in this scrape (the first one is kept). */
  duplicates: number;
}

/** Caps on what one scrape may turn into series (flags --max-series, --max-label-name-bytes, …). */
export interface SeriesLimits {
  /** Series per scrape, rates included. */
  maxSeries: number;
  maxLabelNameBytes: number;
  maxLabelValueBytes: number;
  maxLabelsPerSeries: number;
}

const NAMED_FAMILIES = 5;

/** Counts a dropped series under its reason, naming its family (the first NAMED_FAMILIES distinct ones). */
export function countDrop(drops: Partial<Record<DropReason, Drop>>, reason: DropReason, family: string, n = 1): void {
  const d = (drops[reason] ??= { series: 0, families: [], moreFamilies: 0 });
  d.series += n;
  if (d.families.includes(family)) return;
  if (d.families.length < NAMED_FAMILIES) d.families.push(family);
  else d.moreFamilies++;
}

/** `a, b and 3 more families`. NOTE: moreFamilies may count a family twice; it is only for a log line. */
export function familyList(d: Drop): string {
  return d.moreFamilies > 0 ? `${d.families.join(', ')} and ${d.moreFamilies} more` : d.families.join(', ');
}

// NOTE: an OpenMetrics `_created` sample is a creation timestamp, not a value to scale on.
const HAS_CREATED: ReadonlySet<FamilyType> = new Set(['counter', 'histogram', 'summary']);

/** A series taken in this scrape, before the cap is settled. */
interface Taken {
  def: SeriesDef;
  value: number;
  time: number;
  /** It was sent in the previous scrape. */
  relayed: boolean;
}

/**
 * Turns the selected families of one scrape into the series to send, in exposition order, each counter's rate
 * right after it. Every sample goes as-is: counters as COUNTER, gauges as GAUGE, everything else
 * (untyped, histogram and summary parts `_bucket` `_sum` `_count`, …) as UNTYPED. A counter (TYPE counter, or an
 * untyped name ending `_total`) also yields its per-second rate over the window, kind RATE, named without `_total`
 * (`http_requests_total` → `http_requests`; a counter whose name has no `_total` gets `<name>_rate`). Values (NaN,
 * ±Inf included) are passed through.
 *
 * Limits, checked before a series is made: a sample with a label name or value longer than its byte cap, or more
 * labels than allowed, is dropped (reason label_name_too_long, label_value_too_long, too_many_labels). At most
 * maxSeries are sent: series sent in the previous scrape first (so a series keeps being sent whatever appears
 * before it in the page), then new ones in page order; the rest is dropped (max_series). Memory stays bounded by
 * the cap, not the page: the builder remembers only the series it sent (at most maxSeries, with their rate state)
 * and takes at most 2 × maxSeries per scrape; a repeat of a series past the cap counts as dropped, not duplicate.
 * One builder serves one scrape target; not safe for concurrent builds.
 */
export class SeriesBuilder {
  private readonly rates: RateTracker;
  /** The series sent by the last scrape, by key. */
  private sent = new Map<string, SeriesDef>();

  /**
   * What a parse may hold for this builder (parsePage's budget): twice --max-series (a counter makes two series),
   * and past that only series the last scrape sent, so memory stays bounded on any page and a series already
   * relayed is never cut for a new one.
   */
  readonly budget: SampleBudget;

  /** @param windowMs rate window (--rate-window) */
  constructor(private readonly windowMs: number, private readonly limits: SeriesLimits) {
    this.rates = new RateTracker(windowMs);
    this.budget = { max: 2 * limits.maxSeries, keep: (name, labels) => this.sent.has(name + labelsKey(labels)) };
  }

  /** @param cut samples the parse let go (ParsedPage.cut): counted as dropped by the --max-series cap */
  build(families: readonly Family[], scrapeTimeMs: number, cut: ReadonlyMap<string, number> = new Map()): Built {
    const { maxSeries } = this.limits;
    const taken = new Map<string, Taken>();
    const drops: Partial<Record<DropReason, Drop>> = {};
    let fresh = 0;
    let duplicates = 0;
    for (const [family, n] of cut) countDrop(drops, 'max_series', family, n);
    const take = (family: string, key: string, name: string, labels: Readonly<Record<string, string>>, kind: Kind, windowMs: number, value: number, time: number): boolean => {
      if (taken.has(key)) {
        duplicates++;
        return false;
      }
      let def = this.sent.get(key);
      const relayed = def?.kind === kind;
      if (!relayed) {
        // New series beyond the cap can never be sent: not even remembered for this scrape.
        if (fresh >= maxSeries) {
          countDrop(drops, 'max_series', family);
          return false;
        }
        fresh++;
        def = { key, name, family, labels, kind, windowMs };
      }
      taken.set(key, { def: def!, value, time, relayed });
      return true;
    };
    for (const f of families) {
      for (const smp of f.samples) {
        if (HAS_CREATED.has(f.type) && smp.name === `${f.name}_created`) continue;
        const over = this.overLimit(smp.labels);
        if (over) {
          countDrop(drops, over, f.name);
          continue;
        }
        const lk = labelsKey(smp.labels);
        const key = smp.name + lk;
        const t = smp.timestampMs ?? scrapeTimeMs;
        const counter = f.type === 'counter' || ((f.type === 'untyped' || f.type === 'unknown') && smp.name.endsWith('_total'));
        if (!take(f.name, key, smp.name, smp.labels, counter ? 'COUNTER' : f.type === 'gauge' ? 'GAUGE' : 'UNTYPED', 0, smp.value, t) || !counter) continue;
        const rate = this.rates.observe(key, t, smp.value);
        if (rate === undefined) continue;
        const name = smp.name.endsWith('_total') ? smp.name.slice(0, -'_total'.length) : `${smp.name}_rate`;
        take(f.name, name + lk, name, smp.labels, 'RATE', this.windowMs, rate, t);
      }
    }
    // Over the cap: the last new series in page order go (relayed ones are at most maxSeries: they all stay).
    const all = [...taken.values()];
    const keep = all.map(() => true);
    for (let i = all.length - 1, excess = all.length - maxSeries; i >= 0 && excess > 0; i--) {
      if (all[i]!.relayed) continue;
      keep[i] = false;
      countDrop(drops, 'max_series', all[i]!.def.family);
      excess--;
    }
    const defs: SeriesDef[] = [];
    const values: number[] = [];
    const times: number[] = [];
    const sent = new Map<string, SeriesDef>();
    const counters = new Set<string>();
    all.forEach((t, i) => {
      if (!keep[i]) return;
      defs.push(t.def);
      values.push(t.value);
      times.push(t.time);
      sent.set(t.def.key, t.def);
      if (t.def.kind === 'COUNTER') counters.add(t.def.key);
    });
    this.rates.retain(counters);
    this.sent = sent;
    return { defs, values, times, drops, duplicates };
  }

  /** Which label cap a sample breaks, if any. */
  private overLimit(labels: Readonly<Record<string, string>>): DropReason | undefined {
    const { maxLabelsPerSeries, maxLabelNameBytes, maxLabelValueBytes } = this.limits;
    let n = 0;
    for (const k in labels) {
      if (++n > maxLabelsPerSeries) return 'too_many_labels';
      if (overBytes(k, maxLabelNameBytes)) return 'label_name_too_long';
      if (overBytes(labels[k]!, maxLabelValueBytes)) return 'label_value_too_long';
    }
    return undefined;
  }
}

/** Whether s is longer than max bytes in UTF-8 (a UTF-16 unit is 1 to 3 bytes: most strings need no count). */
function overBytes(s: string, max: number): boolean {
  if (s.length > max) return true;
  return s.length * 3 > max && Buffer.byteLength(s) > max;
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
