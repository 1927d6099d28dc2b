import { INGEST_LIMITS, SERIES_ID_LIMIT, type ScrapeStatus, type WireSeriesDef, type WireSnapshot } from '../../../common/src/proto.js';
import { mapSize, seriesDefSize } from './codec.js';
import type { PodLabels } from '../labels-file.js';
import { countDrop, familyList, type Drop, type DropReason, type ScrapedSeries, type SeriesDef } from '../series/builder.js';

/** The result of one scrape, shared by every replica stream (each encodes it with its own series ids). */
export interface Snapshot {
  status: ScrapeStatus;
  /** Why the scrape failed; '' when OK. */
  error: string;
  scrapeTimeMs: number;
  /** Empty unless status is OK. */
  series: ScrapedSeries;
  /** The pod's labels at this scrape; a new object only when they changed. */
  podLabels: PodLabels;
}

/** No series (a failed scrape). */
export const NO_SERIES: ScrapedSeries = Object.freeze({ defs: [], values: [], times: [] });

/** Bytes of a snapshot besides its series, at most (seq, status, times, the trim message, framing). */
const HEADER_BYTES = 1024;
/** Per series besides its definition, at most: an id (3 bytes), a double, a timestamp (10). */
const SERIES_BYTES = 3 + 8 + 10;

/** A snapshot as one stream sends it, and the series left out to fit the message limit (undefined: none). */
export interface Encoded {
  snapshot: WireSnapshot;
  trimmed: Drop | undefined;
}
/** Known series (and their ids) kept per stream before ids of series gone from the snapshot are recycled. */
const SWEEP_AT = 4096;

/**
 * Encodes snapshots for ONE stream, per the contract in ingest.proto: a series is defined (SeriesDef) the first
 * time this stream sends it and referenced by id after that (series are told apart by their interned SeriesDef
 * object); seq counts from 1. A new stream needs a new
 * encoder (ids live as long as the stream). pod_labels is sent when a snapshot's labels object differs from the
 * one the stream last carried (in its Hello or an earlier snapshot).
 *
 * Memory stays bounded under series churn: once more than max(4096, 2×snapshot) series are known, ids of series
 * absent from the snapshot being encoded are freed and reused (redefining an id replaces its definition).
 * Requires snapshots of at most 20,000 series (config caps --max-series), so ids stay below SERIES_ID_LIMIT.
 *
 * A snapshot never exceeds the aggregator's message limit: one that would (sized before encoding, with a margin of
 * a sixteenth) is trimmed — series this stream has already defined are kept first (they cost a few bytes each),
 * then new ones in order while they fit — and goes with status OK and `error` saying what was cut and why.
 */
export class SnapshotEncoder {
  private readonly ids = new Map<SeriesDef, number>();
  private readonly free: number[] = [];
  private nextId = 0;
  private seq = 0;

  /** @param labels the labels the stream's Hello carried. */
  constructor(private labels: PodLabels) {}

  /** @param maxMessageBytes the aggregator's message limit (its Ack's max_message_bytes). */
  encode(s: Snapshot, maxMessageBytes = INGEST_LIMITS.maxMessageBytes): Encoded {
    const { defs: sd, values, times } = s.series;
    const n = sd.length;
    if (this.ids.size + n > Math.max(SWEEP_AT, 2 * n)) this.sweep(sd);
    const keep = this.fit(s, maxMessageBytes);
    const defs: WireSeriesDef[] = [];
    const ids: number[] = [];
    // Untrimmed, the builder's columns go as they are.
    const vals = keep ? [] : (values as number[]);
    const ts = keep ? [] : (times as number[]);
    const cut: Partial<Record<DropReason, Drop>> = {};
    let ownTimes = false;
    for (let i = 0; i < n; i++) {
      const d = sd[i]!;
      if (keep && !keep[i]) {
        countDrop(cut, 'snapshot_too_large', d.family);
        continue;
      }
      let id = this.ids.get(d);
      if (id === undefined) {
        id = this.free.pop() ?? this.nextId++;
        if (id >= SERIES_ID_LIMIT) throw new Error(`series id ${id} over the limit: more series per snapshot than a stream can define`);
        this.ids.set(d, id);
        defs.push({ id, name: d.name, labels: d.labels, kind: d.kind, window_ms: d.windowMs });
      }
      ids.push(id);
      if (keep) {
        vals.push(values[i]!);
        ts.push(times[i]!);
      }
      if (times[i] !== s.scrapeTimeMs) ownTimes = true;
    }
    const labelsChanged = s.podLabels !== this.labels;
    this.labels = s.podLabels;
    const trimmed = cut.snapshot_too_large;
    const trim = trimmed ? `snapshot trimmed: ${trimmed.series} series of families ${familyList(trimmed)} over the aggregator's ${maxMessageBytes}-byte message limit` : '';
    const error = [trim, s.error].filter((e) => e !== '').join('; ');
    return {
      snapshot: {
        seq: ++this.seq,
        status: s.status,
        error,
        scrape_time_ms: s.scrapeTimeMs,
        defs,
        ids,
        values: vals,
        timestamps_ms: ownTimes ? ts : [],
        pod_labels: labelsChanged ? { labels: s.podLabels } : null,
      },
      trimmed,
    };
  }

  /**
   * Which series to send so the message stays below the limit with a margin: undefined when all fit, else a flag
   * per series (defined ones first, then new ones in order while they fit).
   */
  private fit(s: Snapshot, maxMessageBytes: number): boolean[] | undefined {
    const sd = s.series.defs;
    let budget = maxMessageBytes - Math.ceil(maxMessageBytes / 16) - HEADER_BYTES - Buffer.byteLength(s.error);
    if (s.podLabels !== this.labels) budget -= mapSize(s.podLabels) + 8;
    const cost = sd.map((d) => SERIES_BYTES + (this.ids.has(d) ? 0 : seriesDefSize({ name: d.name, labels: d.labels, window_ms: d.windowMs })));
    let total = 0;
    for (const c of cost) total += c;
    if (total <= budget) return undefined;
    const keep = sd.map(() => false);
    for (const defined of [true, false]) {
      sd.forEach((d, i) => {
        if (this.ids.has(d) !== defined || cost[i]! > budget) return;
        keep[i] = true;
        budget -= cost[i]!;
      });
    }
    return keep;
  }

  /** Frees the ids of known series that are not in `keep`. */
  private sweep(keep: readonly SeriesDef[]): void {
    const present = new Set(keep);
    for (const [def, id] of this.ids) {
      if (present.has(def)) continue;
      this.ids.delete(def);
      this.free.push(id);
    }
  }
}
