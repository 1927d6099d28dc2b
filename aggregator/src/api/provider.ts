import type { Selector } from '../selector.js';
import type { ObjectKind } from '../kube/object-selectors.js';

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

/**
 * What the metrics APIs ask of the values held: the custom-metrics-apiserver "provider". The routes and discovery
 * know only this; store-provider.ts answers from the store. Every method returns values to serve or throws ApiError
 * (aggregator/src/errors.ts) with a message saying why not (docs/protocol.md#errors).
 */
export interface MetricsProvider {
  /** Pods metric for one pod (podName) or every pod matching `selector` (podName '*'). */
  podMetrics(namespace: string, podName: string, metric: string, selector: Selector, metricSelector: Selector): MetricValue[];
  /** Object metric for one object by name: the aggregate of the values of the pods it selects. */
  objectMetric(kind: ObjectKind, namespace: string, name: string, metric: string, metricSelector: Selector): MetricValue;
  /** Object metrics for every object of a kind matching `selector`; objects without values are left out. */
  objectMetrics(kind: ObjectKind, namespace: string, metric: string, selector: Selector, metricSelector: Selector): MetricValue[];
  /** Object metric over a whole namespace (namespaces/{ns}/metrics/{metric}). */
  namespaceMetric(namespace: string, metric: string, metricSelector: Selector): MetricValue;
  /** External metric: the series named `metric` (case-insensitive) in the namespace whose own labels match `selector`. */
  externalMetrics(namespace: string, metric: string, selector: Selector): ExternalValue[];
  /** Every metric name with at least one value that may be served now, sorted and unique (discovery). */
  metricNames(): string[];
}
