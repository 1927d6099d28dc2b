import type { Labels } from '../store/memory-store.js';

/** Byte limits on what one series may define (--max-label-name-bytes, --max-label-value-bytes, --max-labels-per-series). */
export interface LabelLimits {
  maxNameBytes: number;
  /** Also bounds the metric name (Prometheus holds it as the value of the label __name__). */
  maxValueBytes: number;
  maxLabels: number;
}

// NOTE: about Prometheus-ecosystem defaults (Mimir: 1024 / 2048 / 30); names are shorter in practice.
export const DEFAULT_LABEL_LIMITS: LabelLimits = { maxNameBytes: 128, maxValueBytes: 2048, maxLabels: 32 };

/** UTF-8 length, skipping the count for strings too short to pass `limit` (3 bytes per UTF-16 unit at most). */
function over(s: string, limit: number): number | undefined {
  if (s.length * 3 <= limit) return undefined;
  const n = Buffer.byteLength(s);
  return n > limit ? n : undefined;
}

const shown = (s: string): string => JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);

/** Why a series definition breaks the limits (the text of its refusal), or undefined when it does not. */
export function seriesLabelProblem(name: string, labels: Labels, limits: LabelLimits): string | undefined {
  let n = over(name, limits.maxValueBytes);
  if (n !== undefined) return `metric name ${shown(name)} is ${n} bytes, longer than --max-label-value-bytes (${limits.maxValueBytes})`;
  let count = 0;
  for (const k in labels) {
    if (++count > limits.maxLabels) return `series ${shown(name)} has more than --max-labels-per-series (${limits.maxLabels}) labels`;
    if ((n = over(k, limits.maxNameBytes)) !== undefined) return `series ${shown(name)}: label name ${shown(k)} is ${n} bytes, longer than --max-label-name-bytes (${limits.maxNameBytes})`;
    if ((n = over(labels[k]!, limits.maxValueBytes)) !== undefined) return `series ${shown(name)}: the value of label ${shown(k)} is ${n} bytes, longer than --max-label-value-bytes (${limits.maxValueBytes})`;
  }
  return undefined;
}

// Kubernetes' own validation of pod labels: a key is an optional DNS-subdomain prefix (253) + "/" + a name (63),
// a value at most 63 bytes. Labels from the downward API never pass these; the count is ours.
const POD_LABEL_KEY_BYTES = 317;
const POD_LABEL_VALUE_BYTES = 63;
export const MAX_POD_LABELS = 256;

/** Why a pod's labels cannot be those of a Kubernetes pod, or undefined. */
export function podLabelProblem(labels: Labels): string | undefined {
  let count = 0;
  for (const k in labels) {
    if (++count > MAX_POD_LABELS) return `more than ${MAX_POD_LABELS} pod labels`;
    if (over(k, POD_LABEL_KEY_BYTES) !== undefined) return `pod label name ${shown(k)} is longer than Kubernetes allows (${POD_LABEL_KEY_BYTES} bytes)`;
    if (over(labels[k]!, POD_LABEL_VALUE_BYTES) !== undefined) return `the value of pod label ${shown(k)} is longer than Kubernetes allows (${POD_LABEL_VALUE_BYTES} bytes)`;
  }
  return undefined;
}
