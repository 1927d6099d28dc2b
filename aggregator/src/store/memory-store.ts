import type { Kind } from '../../../common/src/proto.js';
import { NAME_BYTES, POD_BYTES, SERIES_BYTES, definitionBytes, labelsBytes, stringBytes } from './memory-estimate.js';
import { Freshness } from './freshness.js';
import { noRules, type MetricPolicy } from '../rules.js';

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

/** Who scrapes a pod: its own sidecar, or the node agent of its node. */
export type Reporter = 'sidecar' | 'node agent';

/** A pod as the store holds it; callers see it read-only (Pod) and change it through the store's methods. */
interface HeldPod {
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
  /** Who scrapes the pod (the stream's Hello.agent): named in the 404s that repeat its errors. */
  reporter: Reporter;
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

/** A held pod, read-only: only the store changes it (labels, errors, series), keeping its indexes and bytes right. */
export type Pod = Readonly<HeldPod>;

/** The store's writable view of a pod it handed out. */
const held = (pod: Pod): HeldPod => pod;

/** Which pods a read visits. */
export type PodFilter = (pod: Pod) => boolean;
export const ALL_PODS: PodFilter = () => true;

/**
 * One held series as series() visits it: its pod, definition, value and sample time, and whether it may be served
 * now. NOTE: one object is reused for every series of an iteration (a 1000-pod answer allocates nothing per
 * value): read its fields in the loop, never keep it.
 */
export interface HeldSeries {
  readonly pod: Pod;
  readonly def: SeriesDefinition;
  readonly value: number;
  readonly sampleMs: number;
  /** Freshness.servable: the staleness rules of docs/architecture.md#staleness-rules, applied here only. */
  readonly servable: boolean;
  /** Why it is not servable, as a 404 says it ("stale since ..."). */
  staleReason(): string;
}

/** The series of one metric name that series() visits, with the rules (policy) of that name. */
export interface SeriesOfMetric extends Iterable<HeldSeries> {
  readonly policy: MetricPolicy;
}

/** What the status page shows of one pod: how many of its series may be served now, and its newest sample time. */
export interface PodSummary {
  pod: Pod;
  fresh: number;
  newestMs: number;
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
 * Every read of values goes through series(), which judges each value by the store's Freshness at read time
 * (docs/architecture.md#staleness-rules). Not thread-safe in the abstract sense, but all access is on the one JS thread.
 */
export class MemoryStore {
  private readonly pods = new Map<string, Map<string, HeldPod>>();
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

  constructor(
    private readonly limits: StoreLimits,
    /** Judges which held values may be served (default: no per-metric rules, no --stale-after). */
    private readonly freshness = new Freshness(() => noRules, undefined),
  ) {
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
  upsertPod(namespace: string, name: string, uid: string, labels: Labels, intervalMs: number, nowMs: number, reporter: Reporter = 'sidecar'): Pod {
    let byName = this.pods.get(namespace);
    if (!byName) this.pods.set(namespace, (byName = new Map()));
    let pod = byName.get(name);
    if (!pod) {
      pod = { namespace, name, uid, labels, intervalMs, lastReportMs: nowMs, staleSinceMs: undefined, lastError: '', reporter, defs: [], values: EMPTY, times: EMPTY, byName: new Map(), seriesCount: 0, snapshotMs: 0, refused: EMPTY_REFUSED, fixedBytes: 0, seriesBytes: 0 };
      byName.set(name, pod);
    } else {
      if (pod.uid !== uid && uid !== '') this.clearSeries(pod); // a new pod with the same name: old values are not its values
      pod.uid = uid;
      pod.labels = labels;
      pod.intervalMs = intervalMs;
      pod.lastReportMs = nowMs;
      pod.reporter = reporter;
    }
    this.refixBytes(pod);
    return pod;
  }

  /** Replaces the pod's labels (the downward API file changed). */
  setPodLabels(pod: Pod, labels: Labels): void {
    held(pod).labels = labels;
    this.refixBytes(held(pod));
  }

  /** What the pod's sidecar says it left out or failed at (an OK snapshot's error); the 404s for the pod repeat it. */
  setLastError(pod: Pod, error: string): void {
    if (pod.lastError === error) return; // the steady state: no error, snapshot after snapshot
    held(pod).lastError = error;
    this.refixBytes(held(pod));
  }

  getPod(namespace: string, name: string): Pod | undefined {
    return this.pods.get(namespace)?.get(name);
  }

  /**
   * Replaces the pod's series with exactly `series` (values parallel to defs). Series beyond the per-pod or total
   * limit are refused and counted; the accepted ones are applied. A snapshot older than the held one is ignored.
   */
  replaceSeries(heldPod: Pod, defs: readonly SeriesDefinition[], values: ArrayLike<number>, sampleMs: ArrayLike<number>, snapshotMs: number, nowMs: number, refusedEarlier: ReadonlyMap<string, string> = EMPTY_REFUSED): ApplyResult {
    const pod = held(heldPod);
    pod.lastReportMs = nowMs;
    pod.staleSinceMs = undefined;
    if (pod.lastError !== '') this.setLastError(pod, '');
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
  markFailed(heldPod: Pod, error: string, breakerOpen: boolean, nowMs: number): void {
    const pod = held(heldPod);
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

  /**
   * The one read of held values: every series named `metric` in `namespace` of the pods `podFilter` accepts (asked
   * once per pod), pod by pod, each judged servable at nowMs.
   */
  series(namespace: string, metric: string, podFilter: PodFilter, nowMs: number): SeriesOfMetric {
    const pods = this.index.get(namespace)?.get(metric);
    const policy = this.freshness.policy(metric);
    const freshness = this.freshness;
    return { policy, [Symbol.iterator]: () => new SeriesCursor(pods, podFilter, freshness, policy, nowMs) };
  }

  /** How many pods of a namespace hold at least one series named `metric`. */
  podCountWithMetric(namespace: string, metric: string): number {
    return this.index.get(namespace)?.get(metric)?.size ?? 0;
  }

  /** Namespaces holding at least one series. */
  namespaces(): Iterable<string> {
    return this.index.keys();
  }

  /** Metric names held in a namespace. */
  metricNamesIn(namespace: string): Iterable<string> {
    return this.index.get(namespace)?.keys() ?? [];
  }

  /** Every pod, with how many of its series may be served at nowMs and its newest sample time (the status page). */
  podSummaries(nowMs: number): PodSummary[] {
    const byPod = new Map<Pod, PodSummary>();
    for (const pod of this.allPods()) byPod.set(pod, { pod, fresh: 0, newestMs: 0 });
    for (const namespace of this.namespaces()) {
      for (const name of this.metricNamesIn(namespace)) {
        for (const s of this.series(namespace, name, ALL_PODS, nowMs)) {
          const summary = byPod.get(s.pod)!;
          if (s.servable) summary.fresh++;
          if (s.sampleMs > summary.newestMs) summary.newestMs = s.sampleMs;
        }
      }
    }
    return [...byPod.values()];
  }

  /** Exact metric names in the namespace whose lower-cased form is `lowerName`. */
  namesMatchingLower(namespace: string, lowerName: string): ReadonlySet<string> | undefined {
    return this.lowerIndex.get(namespace)?.get(lowerName);
  }

  /** Every pod of a namespace. */
  podsIn(namespace: string): Iterable<Pod> {
    return this.pods.get(namespace)?.values() ?? [];
  }

  allPods(): Iterable<Pod> {
    const maps = this.pods;
    return (function* () {
      for (const m of maps.values()) yield* m.values();
    })();
  }

  /** The pod's refusals: names refused by the ingest checks first, then those cut here, up to MAX_REFUSED_NAMES. */
  private setRefused(pod: HeldPod, defs: readonly SeriesDefinition[], accepted: number, reason: string, earlier: ReadonlyMap<string, string>): void {
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
  private refixBytes(pod: HeldPod): void {
    const bytes = podFixedBytes(pod.namespace, pod.name, pod.uid, pod.labels, pod.lastError, pod.refused);
    this.used += bytes - pod.fixedBytes;
    pod.fixedBytes = bytes;
  }

  private clearSeries(pod: HeldPod): void {
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

/** The iterator of series(): walks the pods of one metric name and, in each, the indexes of its series. */
class SeriesCursor implements HeldSeries, Iterator<HeldSeries> {
  pod!: Pod;
  def!: SeriesDefinition;
  value = 0;
  sampleMs = 0;
  servable = false;
  private readonly podIterator: Iterator<Pod> | undefined;
  private indexes: readonly number[] = [];
  private at = 0;
  /** The one result object handed out, the cursor itself as its value. */
  private readonly result: IteratorYieldResult<HeldSeries> = { done: false, value: this };

  constructor(
    private readonly pods: ReadonlyMap<Pod, readonly number[]> | undefined,
    private readonly podFilter: PodFilter,
    private readonly freshness: Freshness,
    private readonly policy: MetricPolicy,
    private readonly nowMs: number,
  ) {
    this.podIterator = pods?.keys();
  }

  next(): IteratorResult<HeldSeries> {
    while (this.at >= this.indexes.length) {
      const next = this.podIterator?.next();
      if (!next || next.done) return DONE;
      if (!this.podFilter(next.value)) continue;
      this.pod = next.value;
      this.indexes = this.pods!.get(next.value)!;
      this.at = 0;
    }
    const pod = this.pod;
    const i = this.indexes[this.at++]!;
    this.def = pod.defs[i]!;
    this.value = pod.values[i]!;
    this.sampleMs = pod.times[i]!;
    this.servable = this.freshness.servable(pod, this.value, this.sampleMs, this.policy, this.nowMs);
    return this.result;
  }

  staleReason(): string {
    return this.freshness.staleReason(this.pod, this.value, this.sampleMs, this.policy);
  }
}
const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

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
