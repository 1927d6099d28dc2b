import type { Kind } from '../../../common/src/proto.js';
import { NAME_BYTES, POD_BYTES, SERIES_BYTES, definitionBytes, labelsBytes, stringBytes } from './memory-estimate.js';

/** Labels of a pod or a series. Treated as immutable once stored. */
export type Labels = Readonly<Record<string, string>>;

/** What a stream defines once and then references by id; shared by every snapshot of that stream. */
export interface SeriesDefinition {
  name: string;
  labels: Labels;
  kind: Kind;
  /** Rate window in ms for RATE series; 0 otherwise. */
  windowMs: number;
  /** Estimated heap bytes of the name and labels (definitionBytes); computed by the store when absent. */
  bytes?: number;
}

/** A pod as held by the store. Fields are read-only for callers. */
export interface Pod {
  readonly namespace: string;
  readonly name: string;
  uid: string;
  labels: Labels;
  intervalMs: number;
  /** Last time (ms) any snapshot or status arrived for the pod. */
  lastReportMs: number;
  /** Set while the sidecar reports its scrape breaker open: every series of the pod is stale. */
  staleSinceMs: number | undefined;
  /** Last scrape error reported, for diagnostics. */
  lastError: string;
  /**
   * The pod's current series, column-wise: defs[i] has value values[i] sampled at times[i] (ms).
   * NOTE: columns instead of one object per series keep a stored series near 200 bytes at a million series.
   */
  defs: readonly SeriesDefinition[];
  values: Float64Array;
  times: Float64Array;
  /** Indexes into the columns, by metric name (the same arrays as in the store's metric index). */
  byName: Map<string, readonly number[]>;
  seriesCount: number;
  /** Scrape time of the snapshot that produced the held series (later scrapes win across streams). */
  snapshotMs: number;
  /** Metric names of the last snapshot that were refused, with why (at most MAX_REFUSED_NAMES), for the 404. */
  refused: ReadonlyMap<string, string>;
  /** Estimated heap bytes of the pod entry itself (identity, labels, last error, refusals) and of its series. */
  fixedBytes: number;
  seriesBytes: number;
}

export interface StoreLimits {
  maxSeriesPerPod: number;
  maxSeriesTotal: number;
  /** Estimated heap bytes all pods and series may hold (memory-estimate.ts); unlimited when absent. */
  maxBytes?: number;
}

/** Refused metric names remembered per pod: enough to explain a 404, bounded so refusals cannot fill memory. */
export const MAX_REFUSED_NAMES = 16;

export interface ApplyResult {
  accepted: number;
  refused: number;
  reason: string;
  /** What refused series (counter label of metrics_relay_aggregator_rejected_reports_total). */
  cause: 'series_limit' | 'memory_budget';
}

/**
 * In-memory latest-value store: namespace -> pod -> series, indexed by metric name for queries and discovery.
 * Freshness is decided by the caller at read time (see staleness.ts); the store only holds and expires.
 * Not thread-safe in the abstract sense, but all access is on the one JS thread.
 */
export class MemoryStore {
  private readonly pods = new Map<string, Map<string, Pod>>();
  /**
   * namespace -> metric name -> pods holding at least one series of that name, each with the indexes of those
   * series. NOTE: a query over many pods then reads each pod's indexes from this one map instead of probing every
   * pod's own byName map, whose memory is cold by the time a request comes (most of a 1000-pod query's cost).
   */
  private readonly index = new Map<string, Map<string, Map<Pod, readonly number[]>>>();
  /** namespace -> lower-cased name -> exact names (external metrics are matched case-insensitively). */
  private readonly lowerIndex = new Map<string, Map<string, Set<string>>>();
  private total = 0;
  private used = 0;
  private readonly maxBytes: number;

  constructor(private readonly limits: StoreLimits) {
    this.maxBytes = limits.maxBytes ?? Infinity;
    this.budgetReason = `memory budget of this aggregator (${this.maxBytes} bytes, --max-store-bytes) reached`;
  }

  get seriesTotal(): number {
    return this.total;
  }

  /** Estimated heap bytes held: pods, series, and what streams charged (chargeBytes). */
  get bytesUsed(): number {
    return this.used;
  }

  get bytesLimit(): number {
    return this.maxBytes;
  }

  /** Whether `bytes` more would pass the budget. */
  private overBudget(bytes: number): boolean {
    return this.used + bytes > this.maxBytes;
  }

  /** The refusal text of the memory budget (one string, shared by every refusal). */
  readonly budgetReason: string;

  /** Takes `bytes` from the budget for memory held outside the store (a stream's definitions). False if they do not fit. */
  chargeBytes(bytes: number): boolean {
    if (this.overBudget(bytes)) return false;
    this.used += bytes;
    return true;
  }

  releaseBytes(bytes: number): void {
    this.used -= bytes;
  }

  /** Why a pod not yet held cannot be (memory budget), or undefined when it can, or is already held. */
  admitPod(namespace: string, name: string, uid: string, labels: Labels): string | undefined {
    if (this.getPod(namespace, name)) return undefined;
    return this.overBudget(podFixedBytes(namespace, name, uid, labels, '', EMPTY_REFUSED)) ? this.budgetReason : undefined;
  }

  get podTotal(): number {
    let n = 0;
    for (const m of this.pods.values()) n += m.size;
    return n;
  }

  /** Registers (or refreshes the identity of) a pod. Returns the held entry. */
  upsertPod(namespace: string, name: string, uid: string, labels: Labels, intervalMs: number, nowMs: number): Pod {
    let byName = this.pods.get(namespace);
    if (!byName) this.pods.set(namespace, (byName = new Map()));
    let pod = byName.get(name);
    if (!pod) {
      pod = { namespace, name, uid, labels, intervalMs, lastReportMs: nowMs, staleSinceMs: undefined, lastError: '', defs: [], values: EMPTY, times: EMPTY, byName: new Map(), seriesCount: 0, snapshotMs: 0, refused: EMPTY_REFUSED, fixedBytes: 0, seriesBytes: 0 };
      byName.set(name, pod);
    } else {
      if (pod.uid !== uid && uid !== '') this.clearSeries(pod); // a new pod with the same name: old values are not its values
      pod.uid = uid;
      pod.labels = labels;
      pod.intervalMs = intervalMs;
      pod.lastReportMs = nowMs;
    }
    this.refixBytes(pod);
    return pod;
  }

  /** Replaces the pod's labels (the downward API file changed). */
  setPodLabels(pod: Pod, labels: Labels): void {
    pod.labels = labels;
    this.refixBytes(pod);
  }

  getPod(namespace: string, name: string): Pod | undefined {
    return this.pods.get(namespace)?.get(name);
  }

  /**
   * Replaces the pod's series with exactly `series` (values parallel to defs). Series beyond the per-pod or total
   * limit are refused and counted; the accepted ones are applied. A snapshot older than the held one is ignored.
   */
  replaceSeries(pod: Pod, defs: readonly SeriesDefinition[], values: ArrayLike<number>, sampleMs: ArrayLike<number>, snapshotMs: number, nowMs: number, refusedEarlier: ReadonlyMap<string, string> = EMPTY_REFUSED): ApplyResult {
    pod.lastReportMs = nowMs;
    pod.staleSinceMs = undefined;
    pod.lastError = '';
    if (snapshotMs < pod.snapshotMs) return { accepted: 0, refused: 0, reason: 'older than the held snapshot (ignored)', cause: 'series_limit' };
    pod.snapshotMs = snapshotMs;
    const room = Math.min(this.limits.maxSeriesPerPod, this.limits.maxSeriesTotal - (this.total - pod.seriesCount));
    const n = defs.length;
    let accepted = Math.max(0, Math.min(n, room));
    let reason = '';
    if (accepted < n) {
      reason = room >= this.limits.maxSeriesPerPod || accepted === this.limits.maxSeriesPerPod
        ? `series limit per pod (${this.limits.maxSeriesPerPod}) reached`
        : `total series limit of this aggregator (${this.limits.maxSeriesTotal}) reached`;
    }
    // The memory budget: the same series as held cost nothing new; otherwise keep the prefix that fits.
    let seriesBytes = pod.seriesBytes;
    if (!sameDefs(pod.defs, defs, accepted)) {
      const bytesRoom = this.maxBytes - (this.used - pod.seriesBytes);
      seriesBytes = 0;
      for (let i = 0; i < accepted; i++) {
        const d = defs[i]!;
        // A new name costs its index entries; sidecars send a family's series together, so "new" is "unlike the last".
        const cost = SERIES_BYTES + (d.bytes ??= definitionBytes(d)) + (i === 0 || defs[i - 1]!.name !== d.name ? NAME_BYTES : 0);
        if (seriesBytes + cost > bytesRoom) {
          accepted = i;
          reason = this.budgetReason;
          break;
        }
        seriesBytes += cost;
      }
    }
    if (accepted < n || refusedEarlier.size > 0 || pod.refused.size > 0) {
      this.setRefused(pod, defs, accepted, reason, refusedEarlier);
    }
    const vals = new Float64Array(accepted);
    const times = new Float64Array(accepted);
    for (let i = 0; i < accepted; i++) {
      vals[i] = values[i]!;
      times[i] = sampleMs[i]!;
    }
    // Steady state: the same series as last time, in the same order; only the values change.
    if (!sameDefs(pod.defs, defs, accepted)) {
      const old = pod.byName;
      const next = new Map<string, number[]>();
      for (let i = 0; i < accepted; i++) {
        const name = defs[i]!.name;
        let list = next.get(name);
        if (!list) next.set(name, (list = []));
        list.push(i);
      }
      // Maintain the name index: names gone from this pod, names new to it.
      for (const name of old.keys()) if (!next.has(name)) this.unindex(pod, name);
      for (const [name, indexes] of next) this.indexName(pod, name, indexes);
      pod.byName = next;
      pod.defs = accepted === n ? defs : defs.slice(0, accepted);
    }
    pod.values = vals;
    pod.times = times;
    this.total += accepted - pod.seriesCount;
    pod.seriesCount = accepted;
    this.used += seriesBytes - pod.seriesBytes;
    pod.seriesBytes = seriesBytes;
    return { accepted, refused: n - accepted, reason, cause: reason === this.budgetReason ? 'memory_budget' : 'series_limit' };
  }

  /** Records a failed scrape; with breakerOpen the pod's series are stale at once. */
  markFailed(pod: Pod, error: string, breakerOpen: boolean, nowMs: number): void {
    pod.lastReportMs = nowMs;
    pod.lastError = error;
    if (breakerOpen && pod.staleSinceMs === undefined) pod.staleSinceMs = nowMs;
    this.refixBytes(pod);
  }

  /** Why the pod's series named `metric` were refused in its last snapshot, if they were. */
  refusal(pod: Pod, metric: string): string | undefined {
    return pod.refused.get(metric);
  }

  /** Deletes a pod and all its series at once (goodbye, pod deleted). Returns whether it was held. */
  deletePod(namespace: string, name: string, uid?: string): boolean {
    const byName = this.pods.get(namespace);
    const pod = byName?.get(name);
    if (!byName || !pod || (uid !== undefined && uid !== '' && pod.uid !== '' && pod.uid !== uid)) return false;
    this.clearSeries(pod);
    this.used -= pod.fixedBytes;
    pod.fixedBytes = 0;
    byName.delete(name);
    if (byName.size === 0) this.pods.delete(namespace);
    return true;
  }

  /** Deletes pods not reported for expireAfterMs. Returns how many. */
  expire(nowMs: number, expireAfterMs: number): number {
    let n = 0;
    for (const byName of [...this.pods.values()]) {
      for (const pod of [...byName.values()]) {
        if (nowMs - pod.lastReportMs > expireAfterMs && this.deletePod(pod.namespace, pod.name)) n++;
      }
    }
    return n;
  }

  /** Pods of a namespace holding at least one series named `metric`, with those series' indexes (live view; do not mutate). */
  podsWithMetric(namespace: string, metric: string): ReadonlyMap<Pod, readonly number[]> | undefined {
    return this.index.get(namespace)?.get(metric);
  }

  /** Exact metric names in the namespace whose lower-cased form is `lowerName`. */
  namesMatchingLower(namespace: string, lowerName: string): ReadonlySet<string> | undefined {
    return this.lowerIndex.get(namespace)?.get(lowerName);
  }

  /** Every pod of a namespace. */
  podsIn(namespace: string): Iterable<Pod> {
    return this.pods.get(namespace)?.values() ?? [];
  }

  /** Every namespace -> metric name -> pods entry (for discovery). */
  metricIndex(): ReadonlyMap<string, ReadonlyMap<string, ReadonlyMap<Pod, readonly number[]>>> {
    return this.index;
  }

  allPods(): Iterable<Pod> {
    const maps = this.pods;
    return (function* () {
      for (const m of maps.values()) yield* m.values();
    })();
  }

  /** The pod's refusals: names refused by the ingest checks first, then those cut here, up to MAX_REFUSED_NAMES. */
  private setRefused(pod: Pod, defs: readonly SeriesDefinition[], accepted: number, reason: string, earlier: ReadonlyMap<string, string>): void {
    const refused = new Map<string, string>();
    for (const [name, why] of earlier) {
      if (refused.size >= MAX_REFUSED_NAMES) break;
      refused.set(name, why);
    }
    for (let i = accepted; i < defs.length && refused.size < MAX_REFUSED_NAMES; i++) {
      if (!refused.has(defs[i]!.name)) refused.set(defs[i]!.name, reason);
    }
    pod.refused = refused.size > 0 ? refused : EMPTY_REFUSED;
    this.refixBytes(pod);
  }

  /** Recomputes the pod entry's own bytes after its identity, labels, error or refusals changed. */
  private refixBytes(pod: Pod): void {
    const bytes = podFixedBytes(pod.namespace, pod.name, pod.uid, pod.labels, pod.lastError, pod.refused);
    this.used += bytes - pod.fixedBytes;
    pod.fixedBytes = bytes;
  }

  private clearSeries(pod: Pod): void {
    for (const name of pod.byName.keys()) this.unindex(pod, name);
    this.total -= pod.seriesCount;
    this.used -= pod.seriesBytes;
    pod.seriesBytes = 0;
    pod.refused = EMPTY_REFUSED;
    pod.byName = new Map();
    pod.defs = [];
    pod.values = EMPTY;
    pod.times = EMPTY;
    pod.seriesCount = 0;
    pod.snapshotMs = 0;
  }

  private indexName(pod: Pod, name: string, indexes: readonly number[]): void {
    let byMetric = this.index.get(pod.namespace);
    if (!byMetric) this.index.set(pod.namespace, (byMetric = new Map()));
    let pods = byMetric.get(name);
    if (!pods) {
      byMetric.set(name, (pods = new Map()));
      let lower = this.lowerIndex.get(pod.namespace);
      if (!lower) this.lowerIndex.set(pod.namespace, (lower = new Map()));
      const key = name.toLowerCase();
      let names = lower.get(key);
      if (!names) lower.set(key, (names = new Set()));
      names.add(name);
    }
    pods.set(pod, indexes);
  }

  private unindex(pod: Pod, name: string): void {
    const byMetric = this.index.get(pod.namespace);
    const pods = byMetric?.get(name);
    if (!byMetric || !pods) return;
    pods.delete(pod);
    if (pods.size > 0) return;
    byMetric.delete(name);
    if (byMetric.size === 0) this.index.delete(pod.namespace);
    const lower = this.lowerIndex.get(pod.namespace);
    const names = lower?.get(name.toLowerCase());
    names?.delete(name);
    if (lower && names && names.size === 0) {
      lower.delete(name.toLowerCase());
      if (lower.size === 0) this.lowerIndex.delete(pod.namespace);
    }
  }
}

const EMPTY = new Float64Array(0);
const EMPTY_REFUSED: ReadonlyMap<string, string> = new Map();

function podFixedBytes(namespace: string, name: string, uid: string, labels: Labels, lastError: string, refused: ReadonlyMap<string, string>): number {
  let bytes = POD_BYTES + stringBytes(namespace) + stringBytes(name) + stringBytes(uid) + labelsBytes(labels) + stringBytes(lastError);
  for (const [metric, why] of refused) bytes += stringBytes(metric) + stringBytes(why);
  return bytes;
}

function sameDefs(held: readonly SeriesDefinition[], next: readonly SeriesDefinition[], n: number): boolean {
  if (held.length !== n) return false;
  for (let i = 0; i < n; i++) if (held[i] !== next[i]) return false;
  return true;
}

/** Canonical key of a label set: sorted `k=v` joined by commas (values JSON-quoted so commas cannot collide). */
export function labelsKey(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  keys.sort();
  let out = '';
  for (const k of keys) out += (out ? ',' : '') + k + '=' + JSON.stringify(labels[k]);
  return out;
}
