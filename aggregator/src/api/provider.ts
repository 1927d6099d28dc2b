import type { Selector } from '../selector.js';
import { labelsKey, type MemoryStore, type Pod, type SeriesDefinition } from '../store/memory-store.js';
import type { Freshness } from '../store/freshness.js';
import type { Aggregation, MetricPolicy } from '../rules.js';
import { internal, notFound, unavailable, ApiError } from './status.js';
import { quantityProblem } from './quantity.js';
import { definitionBytes } from '../store/memory-estimate.js';

/** Bytes of one answer item beyond its names and labels (describedObject, timestamp, window, value, keys). */
const ITEM_BYTES = 200;

/** A namespaced kind whose objects select pods, as named in API paths (group-qualified plural). */
export interface ObjectKind {
  resource: string;
  kind: string;
  apiVersion: string;
}

export const OBJECT_KINDS: readonly ObjectKind[] = [
  { resource: 'services', kind: 'Service', apiVersion: 'v1' },
  { resource: 'deployments.apps', kind: 'Deployment', apiVersion: 'apps/v1' },
  { resource: 'statefulsets.apps', kind: 'StatefulSet', apiVersion: 'apps/v1' },
  { resource: 'replicasets.apps', kind: 'ReplicaSet', apiVersion: 'apps/v1' },
  { resource: 'daemonsets.apps', kind: 'DaemonSet', apiVersion: 'apps/v1' },
  { resource: 'jobs.batch', kind: 'Job', apiVersion: 'batch/v1' },
];
export const POD_KIND: ObjectKind = { resource: 'pods', kind: 'Pod', apiVersion: 'v1' };
export const NAMESPACE_KIND: ObjectKind = { resource: 'namespaces', kind: 'Namespace', apiVersion: 'v1' };

/** Resolves objects that select pods. Implemented by the Kubernetes informers, or by the standalone convention. */
export interface ObjectSelectors {
  /**
   * The pod selector of one object. Throws ApiError: NotFound when the object does not exist, ServiceUnavailable
   * when the cache cannot answer.
   */
  podSelector(kind: ObjectKind, namespace: string, name: string): Selector;
  /** Names of the objects of a kind in a namespace whose own labels match `selector`. Throws ApiError likewise. */
  list(kind: ObjectKind, namespace: string, selector: Selector): string[];
}

/** The object a value describes (describedObject on the wire). */
export interface DescribedObject {
  kind: string;
  apiVersion: string;
  namespace?: string;
  name: string;
}

/** One value to serve, before wire encoding. */
export interface MetricValue {
  object: DescribedObject;
  metric: string;
  value: number;
  sampleMs: number;
  windowMs: number;
}

export interface ExternalValue {
  metric: string;
  labels: Readonly<Record<string, string>>;
  value: number;
  sampleMs: number;
  windowMs: number;
}

/** A pod's value for one metric: the fresh series of that name matching the metric selector, summed. */
interface PodValue {
  value: number;
  sampleMs: number;
  windowMs: number;
}

/** Why nothing could be served: the outcomes a 404 message tells apart (README, "Troubleshooting"). */
type Miss = { why: 'no-series' } | { why: 'stale'; lastMs: number; reason: string };

/**
 * Answers metric queries from the store: the custom-metrics-apiserver "provider". Knows nothing of HTTP.
 * Every method returns values to serve or throws ApiError with a message saying why not.
 */
export class MetricsProvider {
  private readonly podObjects = new WeakMap<Pod, DescribedObject>();

  constructor(
    private readonly store: MemoryStore,
    private readonly freshness: Freshness,
    private readonly objects: ObjectSelectors,
    private readonly now: () => number = Date.now,
    /** --max-response-bytes: an answer estimated larger is refused before it is built. */
    private readonly maxAnswerBytes = Infinity,
  ) {}

  /** Pods metric for one pod (C1 with pods) or every pod matching `selector` (C2). */
  podMetrics(namespace: string, podName: string | '*', metric: string, selector: Selector, metricSelector: Selector): MetricValue[] {
    const pods = this.store.podsWithMetric(namespace, metric);
    if (!pods || pods.size === 0) throw this.neverReported(metric, podName === '*' ? 'pods' : `pod ${podName}`, namespace, podName === '*' ? undefined : podName);
    const policy = this.freshness.policy(metric);
    const now = this.now();
    const out: MetricValue[] = [];
    let matched = 0;
    let seriesSeen = 0;
    let lastMs = -Infinity;
    let reason = '';
    const itemBytes = ITEM_BYTES + namespace.length + 2 * metric.length + 2 * metricSelector.toString().length;
    let answerBytes = 0;
    const consider = (pod: Pod, indexes: readonly number[]): void => {
      matched++;
      const v = this.podValue(pod, indexes, metricSelector, policy, now);
      if ('value' in v) {
        answerBytes += itemBytes + pod.name.length;
        if (answerBytes > this.maxAnswerBytes) throw this.tooLarge(`pods/${podName}/${metric} in namespace ${namespace}`, selector);
        out.push({ object: this.describePod(pod), metric, value: v.value, sampleMs: v.sampleMs, windowMs: v.windowMs });
      } else if (v.why === 'stale') {
        seriesSeen++;
        if (v.lastMs > lastMs) ({ lastMs, reason } = v);
      }
    };
    if (podName === '*') {
      // NOTE: forEach, not for-of: for-of would make a [pod, indexes] array per entry.
      pods.forEach((indexes, pod) => {
        if (selector.matches(pod.labels)) consider(pod, indexes);
      });
    } else {
      const pod = this.store.getPod(namespace, podName);
      const indexes = pod && pods.get(pod);
      if (pod && indexes && selector.matches(pod.labels)) consider(pod, indexes);
    }
    if (out.length > 0) return out;
    const target = podName !== '*' ? `pod ${podName}` : selector.empty ? 'pods' : `pods matching selector "${selector.toString()}"`;
    if (matched === 0) {
      const refused = podName === '*' ? undefined : this.refusal(namespace, metric, podName);
      if (refused) throw notFound(`the server could not find the metric ${metric} for pod ${podName} in namespace ${namespace}: ${refused}`);
      const why = podName !== '*' ? `pod ${podName} does not report it${this.sidecarNote(namespace, podName)}` : selector.empty ? 'no pod of that metric in the namespace' : `no pod matched the selector "${selector.toString()}" (${pods.size} pod(s) in namespace ${namespace} report it)`;
      throw notFound(`the server could not find the metric ${metric} for pods in namespace ${namespace}: ${why}`);
    }
    if (seriesSeen === 0) throw notFound(`the server could not find the metric ${metric} for ${target} in namespace ${namespace}: no series matched the metricLabelSelector "${metricSelector.toString()}"`);
    throw this.staleError(metric, target, namespace, reason);
  }

  /** Object metric (C1 for non-pod kinds): the aggregate of the fresh values of the pods the object selects. */
  objectMetric(kind: ObjectKind, namespace: string, name: string, metric: string, metricSelector: Selector): MetricValue {
    const selector = this.objects.podSelector(kind, namespace, name);
    return this.aggregate({ kind: kind.kind, apiVersion: kind.apiVersion, namespace, name }, `${kind.resource} ${name}`, namespace, metric, metricSelector, (pod) => selector.matches(pod.labels));
  }

  /** Object metric over a whole namespace (C3: namespaces/{ns}/metrics/{metric}). */
  namespaceMetric(namespace: string, metric: string, metricSelector: Selector): MetricValue {
    return this.aggregate({ kind: 'Namespace', apiVersion: 'v1', name: namespace }, `namespace ${namespace}`, namespace, metric, metricSelector, () => true);
  }

  /** Object metrics for every object of a kind matching `selector` (C2 for non-pod kinds); objects without fresh values are left out. */
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
   * External metric: the series named `metric` (case-insensitive) in the namespace whose own labels match
   * `selector`. Series with identical labels from several pods are de-duplicated, the freshest winning, because
   * the HPA sums every item.
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
      const policy = this.freshness.policy(name);
      for (const [pod, indexes] of this.store.podsWithMetric(namespace, name) ?? []) {
        for (const i of indexes) {
          const def = pod.defs[i]!;
          const value = pod.values[i]!;
          const sampleMs = pod.times[i]!;
          if (!selector.matches(def.labels)) continue;
          matched++;
          if (!this.freshness.servable(pod, value, sampleMs, policy, now)) {
            if (sampleMs > lastMs) {
              lastMs = sampleMs;
              reason = this.freshness.staleReason(pod, value, sampleMs, policy);
            }
            continue;
          }
          const key = `${def.name}\u0000${labelsKey(def.labels)}`;
          const held = best.get(key);
          if (!held) {
            answerBytes += ITEM_BYTES + 2 * (def.bytes ?? definitionBytes(def));
            if (answerBytes > this.maxAnswerBytes) throw this.tooLarge(`external metric ${metric} in namespace ${namespace}`, selector);
          }
          if (!held || sampleMs > held.sampleMs) {
            best.set(key, { metric: def.name, labels: def.labels, value, sampleMs, windowMs: windowOf(pod, def) });
          }
        }
      }
    }
    if (best.size > 0) return [...best.values()];
    if (matched === 0) throw notFound(`the server could not find the external metric ${metric} in namespace ${namespace}: ${selector.empty ? 'no series of that metric in the namespace' : `no series matched the selector "${selector.toString()}"`}`);
    throw this.staleError(metric, selector.empty ? 'series' : `series matching "${selector.toString()}"`, namespace, reason);
  }

  private aggregate(object: DescribedObject, what: string, namespace: string, metric: string, metricSelector: Selector, podFilter: (pod: Pod) => boolean): MetricValue {
    const pods = this.store.podsWithMetric(namespace, metric);
    if (!pods || pods.size === 0) throw this.neverReported(metric, what, namespace, undefined, podFilter);
    const policy = this.freshness.policy(metric);
    const now = this.now();
    const values: PodValue[] = [];
    let matched = 0;
    let lastMs = -Infinity;
    let reason = '';
    let seriesSeen = 0;
    for (const [pod, indexes] of pods) {
      if (!podFilter(pod)) continue;
      matched++;
      const v = this.podValue(pod, indexes, metricSelector, policy, now);
      if ('value' in v) values.push(v);
      else if (v.why === 'stale') {
        seriesSeen++;
        if (v.lastMs > lastMs) ({ lastMs, reason } = v);
      }
    }
    if (values.length > 0) {
      const value = combine(policy.aggregation, values.map((v) => v.value));
      // Each pod's value is servable; their sum may still not be (the one item of this answer).
      const problem = quantityProblem(value);
      if (problem) throw notFound(`the server could not find the metric ${metric} for ${what} in namespace ${namespace}: the ${policy.aggregation} of ${values.length} pod value(s) cannot be a Kubernetes quantity: ${problem}`);
      let sampleMs = 0;
      let windowMs = 0;
      for (const v of values) {
        if (v.sampleMs > sampleMs) sampleMs = v.sampleMs;
        if (v.windowMs > windowMs) windowMs = v.windowMs;
      }
      return { object, metric, value, sampleMs, windowMs };
    }
    if (matched === 0) throw notFound(`the server could not find the metric ${metric} for ${what} in namespace ${namespace}: no pod matched (${pods.size} pod(s) in the namespace report it, none selected by ${what})`);
    if (seriesSeen === 0) throw notFound(`the server could not find the metric ${metric} for ${what} in namespace ${namespace}: no series matched the metricLabelSelector "${metricSelector.toString()}"`);
    throw this.staleError(metric, what, namespace, reason);
  }

  /** The pod's value from its series at `indexes` (one metric name). */
  private podValue(pod: Pod, indexes: readonly number[], metricSelector: Selector, policy: MetricPolicy, now: number): PodValue | Miss {
    let sum = 0;
    let count = 0;
    let sampleMs = 0;
    let windowMs = 0;
    let lastMs = -Infinity;
    let lastIndex = -1;
    let anyMatched = false;
    for (const i of indexes) {
      const def = pod.defs[i]!;
      if (!metricSelector.empty && !metricSelector.matches(def.labels)) continue;
      anyMatched = true;
      const t = pod.times[i]!;
      if (!this.freshness.servable(pod, pod.values[i]!, t, policy, now)) {
        if (t > lastMs) [lastMs, lastIndex] = [t, i];
        continue;
      }
      sum += pod.values[i]!;
      count++;
      if (t > sampleMs) sampleMs = t;
      windowMs = Math.max(windowMs, windowOf(pod, def));
    }
    if (count > 0) return { value: sum, sampleMs, windowMs };
    if (!anyMatched) return { why: 'no-series' };
    return { why: 'stale', lastMs, reason: this.freshness.staleReason(pod, pod.values[lastIndex]!, lastMs, policy) };
  }

  /** One DescribedObject per held pod, so that a list over many pods allocates (and encodes) none anew. */
  private describePod(pod: Pod): DescribedObject {
    let d = this.podObjects.get(pod);
    if (!d) this.podObjects.set(pod, (d = { kind: 'Pod', apiVersion: 'v1', namespace: pod.namespace, name: pod.name }));
    return d;
  }

  /** Not held at all: say so, or why a pod's series of that name were refused at ingest (the Ack's reason). */
  private neverReported(metric: string, what: string, namespace: string, podName?: string, podFilter?: (pod: Pod) => boolean, caseless = false): ApiError {
    const refused = this.refusal(namespace, metric, podName, podFilter, caseless);
    return notFound(`the server could not find the metric ${metric} for ${what} in namespace ${namespace}: ${refused ?? 'it was never reported (no series of that name is held)'}${podName === undefined ? '' : this.sidecarNote(namespace, podName)}`);
  }

  /** The refusal of `metric` by one pod, or by the first pod of the namespace (passing podFilter) that had one. */
  private refusal(namespace: string, metric: string, podName?: string, podFilter?: (pod: Pod) => boolean, caseless = false): string | undefined {
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

  /** What the pod's sidecar last said it left out or failed at (Snapshot.error), as a 404 suffix; '' if nothing. */
  private sidecarNote(namespace: string, podName: string): string {
    const error = podName === '*' ? '' : this.store.getPod(namespace, podName)?.lastError;
    return error ? `; the pod's sidecar reports: ${error}` : '';
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

/** Object resolution for --standalone: no Kubernetes API, so objects are found by the pod-label convention. */
export function standaloneSelectors(store: MemoryStore, parse: (s: string) => Selector): ObjectSelectors {
  const LABELS = ['app.kubernetes.io/name', 'app'];
  const selectorFor = (namespace: string, name: string): Selector | undefined => {
    for (const label of LABELS) {
      for (const pod of store.podsIn(namespace)) if (pod.labels[label] === name) return parse(`${label}=${name}`);
    }
    return undefined;
  };
  return {
    podSelector(kind, namespace, name) {
      const sel = selectorFor(namespace, name);
      if (sel) return sel;
      throw notFound(`${kind.resource} ${name} in namespace ${namespace}: in --standalone mode there is no Kubernetes API to read its selector; an object named N is taken to select the pods labelled app.kubernetes.io/name=N or app=N, and no reporting pod in ${namespace} carries such a label`);
    },
    list(kind) {
      throw unavailable(`listing ${kind.resource} needs the Kubernetes API, which --standalone mode does not use; ask for one object by name`);
    },
  };
}
