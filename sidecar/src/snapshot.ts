import type { ScrapeStatus, WireSeriesDef, WireSnapshot } from '../../common/src/proto.js';
import type { PodLabels } from './labels-file.js';
import type { ScrapedSeries, SeriesDef } from './series.js';

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

/** Series ids are below this (ingest.proto: ids must be < 65536). */
const ID_LIMIT = 65536;
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
 * Requires snapshots of at most 20,000 series (config caps --max-series), so ids stay below ID_LIMIT.
 */
export class SnapshotEncoder {
  private readonly ids = new Map<SeriesDef, number>();
  private readonly free: number[] = [];
  private nextId = 0;
  private seq = 0;

  /** @param labels the labels the stream's Hello carried. */
  constructor(private labels: PodLabels) {}

  encode(s: Snapshot): WireSnapshot {
    const { defs: sd, values, times } = s.series;
    const n = sd.length;
    if (this.ids.size + n > Math.max(SWEEP_AT, 2 * n)) this.sweep(sd);
    const defs: WireSeriesDef[] = [];
    const ids = new Array<number>(n);
    let ownTimes = false;
    for (let i = 0; i < n; i++) {
      const d = sd[i]!;
      let id = this.ids.get(d);
      if (id === undefined) {
        id = this.free.pop() ?? this.nextId++;
        if (id >= ID_LIMIT) throw new Error(`series id ${id} over the limit: more series per snapshot than a stream can define`);
        this.ids.set(d, id);
        defs.push({ id, name: d.name, labels: d.labels, kind: d.kind, window_ms: d.windowMs });
      }
      ids[i] = id;
      if (times[i] !== s.scrapeTimeMs) ownTimes = true;
    }
    const labelsChanged = s.podLabels !== this.labels;
    this.labels = s.podLabels;
    return {
      seq: ++this.seq,
      status: s.status,
      error: s.error,
      scrape_time_ms: s.scrapeTimeMs,
      defs,
      ids,
      values: values as number[],
      timestamps_ms: ownTimes ? (times as number[]) : [],
      pod_labels: labelsChanged ? { labels: s.podLabels } : null,
    };
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
