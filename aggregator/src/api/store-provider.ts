import type { Selector } from '../selector.js';
import { ALL_PODS, labelsKey, type MemoryStore, type Pod, type PodFilter, type SeriesDefinition } from '../store/memory-store.js';
import { definitionBytes } from '../store/memory-estimate.js';
import type { Aggregation, MetricPolicy } from '../rules.js';
import { internal, notFound, ApiError } from '../errors.js';
import { quantityProblem } from '../quantity.js';
import type { ObjectKind, ObjectSelectors } from '../kube/object-selectors.js';
import type { DescribedObject, ExternalValue, MetricsProvider, MetricValue } from './provider.js';

/** Bytes of one answer item beyond its names and labels (describedObject, timestamp, window, value, keys). */
const ITEM_BYTES = 200;

/** Receives one pod's value: its servable series summed, their newest sample time and widest window. */
type TakePodValue = (pod: Pod, value: number, sampleMs: number, windowMs: number) => void;

/** What a scan of the pods' values found when it found none: the outcomes a 404 message tells apart (README, "Troubleshooting"). */
interface PodScan {
  policy: MetricPolicy;
  /** Pods the pod filter selected. */
  matched: number;
  /** Pods with series matching the metricLabelSelector, none of them servable. */
  stalePods: number;
  /** Why the newest of those series is not served. */
  reason: string;
}

/**
 * The MetricsProvider over the memory store: reads every value through store.series(), which judges freshness.
 * Knows nothing of HTTP.
 */
export class StoreMetricsProvider implements MetricsProvider {
  private readonly podObjects = new WeakMap<Pod, DescribedObject>();

  constructor(
    private readonly store: MemoryStore,
    private readonly objects: ObjectSelectors,
    private readonly now: () => number = Date.now,
    /** --max-response-bytes: an answer estimated larger is refused before it is built. */
    private readonly maxAnswerBytes = Infinity,
  ) {}

  podMetrics(namespace: string, podName: string, metric: string, selector: Selector, metricSelector: Selector): MetricValue[] {
    const one = podName === '*' ? undefined : podName;
    if (this.store.podCountWithMetric(namespace, metric) === 0) throw this.neverReported(metric, one === undefined ? 'pods' : `pod ${one}`, namespace, one);
    const wanted = one === undefined ? undefined : this.store.getPod(namespace, one);
    const podFilter: PodFilter = one === undefined ? (pod) => selector.matches(pod.labels) : (pod) => pod === wanted && selector.matches(pod.labels);
    const out: MetricValue[] = [];
    const itemBytes = ITEM_BYTES + namespace.length + 2 * metric.length + 2 * metricSelector.toString().length;
    let answerBytes = 0;
    const scan = this.scanPods(namespace, metric, podFilter, metricSelector, (pod, value, sampleMs, windowMs) => {
      answerBytes += itemBytes + pod.name.length;
      if (answerBytes > this.maxAnswerBytes) throw this.tooLarge(`pods/${podName}/${metric} in namespace ${namespace}`, selector);
      out.push({ object: this.describePod(pod), metric, value, sampleMs, windowMs });
    });
    if (out.length > 0) return out;
    const target = one !== undefined ? `pod ${one}` : selector.empty ? 'pods' : `pods matching selector "${selector.toString()}"`;
    if (scan.matched === 0) {
      const refused = one === undefined ? undefined : this.refusal(namespace, metric, one);
      if (refused) throw notFound(`the server could not find the metric ${metric} for pod ${one} in namespace ${namespace}: ${refused}`);
      const why = one !== undefined ? `pod ${one} does not report it${this.sidecarNote(namespace, one)}` : selector.empty ? 'no pod of that metric in the namespace' : `no pod matched the selector "${selector.toString()}" (${this.store.podCountWithMetric(namespace, metric)} pod(s) in namespace ${namespace} report it)`;
      throw notFound(`the server could not find the metric ${metric} for pods in namespace ${namespace}: ${why}`);
    }
    if (scan.stalePods === 0) throw notFound(`the server could not find the metric ${metric} for ${target} in namespace ${namespace}: no series matched the metricLabelSelector "${metricSelector.toString()}"`);
    throw this.staleError(metric, target, namespace, scan.reason);
  }

  objectMetric(kind: ObjectKind, namespace: string, name: string, metric: string, metricSelector: Selector): MetricValue {
    const selector = this.objects.podSelector(kind, namespace, name);
    return this.aggregate({ kind: kind.kind, apiVersion: kind.apiVersion, namespace, name }, `${kind.resource} ${name}`, namespace, metric, metricSelector, (pod) => selector.matches(pod.labels));
  }

  namespaceMetric(namespace: string, metric: string, metricSelector: Selector): MetricValue {
    return this.aggregate({ kind: 'Namespace', apiVersion: 'v1', name: namespace }, `namespace ${namespace}`, namespace, metric, metricSelector, ALL_PODS);
  }

  objectMetrics(kind: ObjectKind, namespace: string, metric: string, selector: Selector, metricSelector: Selector): MetricValue[] {
    const names = this.objects.list(kind, namespace, selector);
    const out: MetricValue[] = [];
    let firstMiss: ApiError | undefined;
    for (const name of names) {
      try {
        out.push(this.objectMetric(kind, namespace, name, metric, metricSelector));
      } catch (err) {
        if (!(err instanceof ApiError) || err.code !== 404) throw err;
        firstMiss ??= err;
      }
    }
    if (out.length > 0) return out;
    if (firstMiss) throw firstMiss;
    throw notFound(`the server could not find the metric ${metric} for ${kind.resource} in namespace ${namespace}: ${selector.empty ? `no ${kind.resource} in the namespace` : `no ${kind.resource} matched the selector "${selector.toString()}"`}`);
  }

  /**
   * Series with identical labels from several pods are de-duplicated, the freshest winning, because the HPA sums
   * every item.
   */
  externalMetrics(namespace: string, metric: string, selector: Selector): ExternalValue[] {
    const names = this.store.namesMatchingLower(namespace, metric.toLowerCase());
    if (!names || names.size === 0) throw this.neverReported(metric, 'external metrics', namespace, undefined, undefined, true);
    const now = this.now();
    const best = new Map<string, ExternalValue>();
    let matched = 0;
    let lastMs = -Infinity;
    let reason = '';
    // Counted as items are kept (de-duplicated), so the keys and the answer stay within about the limit.
    let answerBytes = 0;
    for (const name of names) {
      for (const s of this.store.series(namespace, name, ALL_PODS, now)) {
        const def = s.def;
        if (!selector.matches(def.labels)) continue;
        matched++;
        if (!s.servable) {
          if (s.sampleMs > lastMs) {
            lastMs = s.sampleMs;
            reason = s.staleReason();
          }
          continue;
        }
        const key = `${def.name}\u0000${labelsKey(def.labels)}`;
        const held = best.get(key);
        if (!held) {
          answerBytes += ITEM_BYTES + 2 * (def.bytes ?? definitionBytes(def));
          if (answerBytes > this.maxAnswerBytes) throw this.tooLarge(`external metric ${metric} in namespace ${namespace}`, selector);
        }
        if (!held || s.sampleMs > held.sampleMs) {
          best.set(key, { metric: def.name, labels: def.labels, value: s.value, sampleMs: s.sampleMs, windowMs: windowOf(s.pod, def) });
        }
      }
    }
    if (best.size > 0) return [...best.values()];
    if (matched === 0) throw notFound(`the server could not find the external metric ${metric} in namespace ${namespace}: ${selector.empty ? 'no series of that metric in the namespace' : `no series matched the selector "${selector.toString()}"`}`);
    throw this.staleError(metric, selector.empty ? 'series' : `series matching "${selector.toString()}"`, namespace, reason);
  }

  metricNames(): string[] {
    const now = this.now();
    const names = new Set<string>();
    for (const namespace of this.store.namespaces()) {
      for (const name of this.store.metricNamesIn(namespace)) {
        if (names.has(name)) continue;
        for (const s of this.store.series(namespace, name, ALL_PODS, now)) {
          if (s.servable) {
            names.add(name);
            break;
          }
        }
      }
    }
    return [...names].sort();
  }

  private aggregate(object: DescribedObject, what: string, namespace: string, metric: string, metricSelector: Selector, podFilter: PodFilter): MetricValue {
    if (this.store.podCountWithMetric(namespace, metric) === 0) throw this.neverReported(metric, what, namespace, undefined, podFilter);
    const values: number[] = [];
    let sampleMs = 0;
    let windowMs = 0;
    const scan = this.scanPods(namespace, metric, podFilter, metricSelector, (_pod, value, podSampleMs, podWindowMs) => {
      values.push(value);
      if (podSampleMs > sampleMs) sampleMs = podSampleMs;
      if (podWindowMs > windowMs) windowMs = podWindowMs;
    });
    if (values.length > 0) {
      const aggregation = scan.policy.aggregation;
      const value = combine(aggregation, values);
      // Each pod's value is servable; their sum may still not be (the one item of this answer).
      const problem = quantityProblem(value);
      if (problem) throw notFound(`the server could not find the metric ${metric} for ${what} in namespace ${namespace}: the ${aggregation} of ${values.length} pod value(s) cannot be a Kubernetes quantity: ${problem}`);
      return { object, metric, value, sampleMs, windowMs };
    }
    if (scan.matched === 0) throw notFound(`the server could not find the metric ${metric} for ${what} in namespace ${namespace}: no pod matched (${this.store.podCountWithMetric(namespace, metric)} pod(s) in the namespace report it, none selected by ${what})`);
    if (scan.stalePods === 0) throw notFound(`the server could not find the metric ${metric} for ${what} in namespace ${namespace}: no series matched the metricLabelSelector "${metricSelector.toString()}"`);
    throw this.staleError(metric, what, namespace, scan.reason);
  }

  /**
   * Each selected pod's value of `metric`: the sum of its servable series matching metricSelector, handed to `take`.
   * Returns what a 404 needs when no pod had one.
   */
  private scanPods(namespace: string, metric: string, podFilter: PodFilter, metricSelector: Selector, take: TakePodValue): PodScan {
    const series = this.store.series(namespace, metric, podFilter, this.now());
    const scan: PodScan = { policy: series.policy, matched: 0, stalePods: 0, reason: '' };
    let newestStaleMs = -Infinity;
    // The pod being summed: series() visits a pod's series one after another.
    let pod: Pod | undefined;
    let sum = 0;
    let count = 0;
    let sampleMs = 0;
    let windowMs = 0;
    let anyMatched = false;
    let podStaleMs = -Infinity;
    let podReason = '';
    const endPod = (): void => {
      if (!pod) return;
      if (count > 0) take(pod, sum, sampleMs, windowMs);
      else if (anyMatched) {
        scan.stalePods++;
        if (podStaleMs > newestStaleMs) {
          newestStaleMs = podStaleMs;
          scan.reason = podReason;
        }
      }
    };
    for (const s of series) {
      if (s.pod !== pod) {
        endPod();
        pod = s.pod;
        scan.matched++;
        sum = 0;
        count = 0;
        sampleMs = 0;
        windowMs = 0;
        anyMatched = false;
        podStaleMs = -Infinity;
      }
      if (!metricSelector.empty && !metricSelector.matches(s.def.labels)) continue;
      anyMatched = true;
      if (!s.servable) {
        // Worded only when it could be the one the 404 tells: newer than every stale series before it.
        if (s.sampleMs > podStaleMs) {
          podStaleMs = s.sampleMs;
          if (podStaleMs > newestStaleMs) podReason = s.staleReason();
        }
        continue;
      }
      sum += s.value;
      count++;
      if (s.sampleMs > sampleMs) sampleMs = s.sampleMs;
      windowMs = Math.max(windowMs, windowOf(s.pod, s.def));
    }
    endPod();
    return scan;
  }

  /** One DescribedObject per held pod, so that a list over many pods allocates (and encodes) none anew. */
  private describePod(pod: Pod): DescribedObject {
    let d = this.podObjects.get(pod);
    if (!d) this.podObjects.set(pod, (d = { kind: 'Pod', apiVersion: 'v1', namespace: pod.namespace, name: pod.name }));
    return d;
  }

  /** Not held at all: say so, or why a pod's series of that name were refused at ingest (the Ack's reason). */
  private neverReported(metric: string, what: string, namespace: string, podName?: string, podFilter?: PodFilter, caseless = false): ApiError {
    const refused = this.refusal(namespace, metric, podName, podFilter, caseless);
    return notFound(`the server could not find the metric ${metric} for ${what} in namespace ${namespace}: ${refused ?? 'it was never reported (no series of that name is held)'}${podName === undefined ? '' : this.sidecarNote(namespace, podName)}`);
  }

  /** The refusal of `metric` by one pod, or by the first pod of the namespace (passing podFilter) that had one. */
  private refusal(namespace: string, metric: string, podName?: string, podFilter?: PodFilter, caseless = false): string | undefined {
    const explain = (pod: Pod, why: string) => `the series of pod ${pod.name} were refused at ingest: ${why}`;
    if (podName !== undefined) {
      const pod = this.store.getPod(namespace, podName);
      const why = pod && this.store.refusal(pod, metric);
      return pod && why ? explain(pod, why) : undefined;
    }
    const lower = metric.toLowerCase();
    for (const pod of this.store.podsIn(namespace)) {
      if (podFilter && !podFilter(pod)) continue;
      for (const [name, why] of pod.refused) if (name === metric || (caseless && name.toLowerCase() === lower)) return explain(pod, why);
    }
    return undefined;
  }

  /** A Status for an answer over --max-response-bytes, before it is built. */
  private tooLarge(what: string, selector: Selector): ApiError {
    return internal(`the answer for ${what} would be larger than this server's limit of ${this.maxAnswerBytes} bytes (--max-response-bytes): ${selector.empty ? 'no labelSelector was given' : `the labelSelector "${selector.toString()}" matched too much`}; narrow the labelSelector`);
  }

  /** What the pod's sidecar or node agent last said it left out or failed at (Snapshot.error), as a 404 suffix; '' if nothing. */
  private sidecarNote(namespace: string, podName: string): string {
    const pod = this.store.getPod(namespace, podName);
    return pod?.lastError ? `; the pod's ${pod.reporter} reports: ${pod.lastError}` : '';
  }

  private staleError(metric: string, what: string, namespace: string, reason: string): ApiError {
    return notFound(`the server could not find the metric ${metric} for ${what} in namespace ${namespace}: ${reason}`);
  }
}

/** The window a value covers: the rate window for rates, the scrape interval otherwise. */
function windowOf(pod: Pod, def: SeriesDefinition): number {
  return def.windowMs > 0 ? def.windowMs : pod.intervalMs;
}

function combine(aggregation: Aggregation, values: number[]): number {
  switch (aggregation) {
    case 'sum':
      return values.reduce((a, b) => a + b, 0);
    case 'avg':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'max':
      return Math.max(...values);
    case 'min':
      return Math.min(...values);
  }
}
