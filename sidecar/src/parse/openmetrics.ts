// OpenMetrics rules that span lines (a MetricPoint's group of samples, a histogram's shape) and its number forms.

import { parseDecimalString, parseFloatAt, parseFloatString } from './numbers.js';
import type { FamilyType, Sample, WarningReason } from './types.js';

/** What these rules need of a family. */
export interface FamilyShape {
  readonly name: string;
  readonly type: FamilyType;
}

export interface GroupProblem {
  /** Index of the offending sample in its family. */
  at: number;
  message: string;
  reason: WarningReason;
}

/** The first broken OpenMetrics rule of one histogram group (samples[from..]), if any. */
export function histogramProblem(meta: FamilyShape, samples: Sample[], from: number): GroupProblem | undefined {
  const fail = (at: number, message: string): GroupProblem => ({ at, message, reason: 'invalid_histogram' });
  const gauge = meta.type === 'gaugehistogram';
  const bucketName = `${meta.name}_bucket`;
  const sumName = meta.name + (gauge ? '_gsum' : '_sum');
  const countName = meta.name + (gauge ? '_gcount' : '_count');
  let sum = -1;
  let count = -1;
  let lastBucket = -1;
  let prevLe = -Infinity;
  let negativeBuckets = false;
  for (let k = from; k < samples.length; k++) {
    const smp = samples[k]!;
    if (smp.name === sumName) sum = k;
    else if (smp.name === countName) count = k;
    else if (smp.name === bucketName) {
      const raw = smp.labels['le']!;
      const le = raw === '+Inf' ? Infinity : parseDecimalString(raw);
      if (le === undefined) return fail(k, `invalid le ${JSON.stringify(raw)}`);
      if (le <= prevLe) return fail(k, 'buckets must be in increasing le order');
      if (lastBucket >= 0 && smp.value < samples[lastBucket]!.value) return fail(k, 'bucket counts must not decrease');
      if (le < 0) negativeBuckets = true;
      prevLe = le;
      lastBucket = k;
    }
  }
  if (lastBucket < 0) return fail(from, `${meta.name} has no buckets`);
  if (prevLe !== Infinity) return fail(lastBucket, `${meta.name} needs a +Inf bucket`);
  if ((sum < 0) !== (count < 0)) return fail(Math.max(sum, count), `${meta.name} needs both ${sumName} and ${countName}, or neither`);
  if (count >= 0 && samples[count]!.value !== samples[lastBucket]!.value) return fail(count, `${countName} must equal the +Inf bucket`);
  if (sum >= 0) {
    if (negativeBuckets && !gauge) return fail(sum, `histogram ${meta.name} has negative buckets and must not have a _sum`);
    if (!negativeBuckets && !(samples[sum]!.value >= 0)) return fail(sum, `${sumName} may be negative only with negative buckets`);
  }
  return undefined;
}

/** The label OpenMetrics groups samples across: MetricPoints are label sets without it. */
export function groupIgnores(meta: FamilyShape): string {
  const t = meta.type;
  return t === 'histogram' || t === 'gaugehistogram' ? 'le' : t === 'summary' ? 'quantile' : t === 'stateset' ? meta.name : '';
}

export function groupKey(labels: Record<string, string>, ignored: string): string {
  return Object.keys(labels)
    .filter((k) => k !== ignored)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',');
}

/**
 * OpenMetrics timestamp: seconds (a float, not Inf or NaN) as whole milliseconds, computed as Prometheus does:
 * the float times 1000, truncated toward zero (so 1.0009 is 1000, and 0.3 is 300 but 1.001 is 1000).
 */
export function omTimestampAt(s: string, i: number, j: number): number | undefined {
  const seconds = parseFloatAt(s, i, j);
  if (seconds === undefined || !Number.isFinite(seconds)) return undefined;
  return Math.trunc(seconds * 1000) + 0; // + 0: no -0
}

/**
 * A float label value (`le`, `quantile`) as Prometheus writes it (Go's shortest 'g' format: exponent from 1e+06 and below 1e-04; ".0" added to whole
 * numbers: "1" → "1.0", "1e3" → "1000.0", "1e-05" stays); left as it is if not a float.
 */
export function openMetricsFloat(v: string): string {
  const f = parseFloatString(v);
  if (f === undefined) return v;
  if (Number.isNaN(f)) return 'NaN';
  if (f === Infinity) return '+Inf';
  if (f === -Infinity) return '-Inf';
  if (f === 0) return '0.0';
  const [mantissa, exp] = f.toExponential().split('e') as [string, string];
  const e = Number(exp);
  if (e < -4 || e >= 6) return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  const plain = String(f);
  return plain.includes('.') ? plain : `${plain}.0`;
}
