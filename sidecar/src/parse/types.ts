// What a parse yields, shared by the parser and its callers.

export type Format = 'text' | 'openmetrics';
export type FamilyType = 'counter' | 'gauge' | 'histogram' | 'gaugehistogram' | 'summary' | 'untyped' | 'unknown' | 'info' | 'stateset';

/** One exposition line: its own metric name (e.g. `x_bucket`), labels, value, and its timestamp if it has one. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** Whole milliseconds since the epoch (OpenMetrics seconds are converted, truncated as Prometheus does). */
  timestampMs?: number;
}

/** A metric family and its samples in exposition order. */
export interface Family {
  name: string;
  type: FamilyType;
  help?: string;
  /** OpenMetrics `# UNIT`, when not empty. */
  unit?: string;
  samples: Sample[];
}

/** A malformed exposition: the 1-based line and what is wrong with it; the message reads "line N: reason". */
export class ParseError extends Error {
  override readonly name = 'ParseError';
  constructor(readonly line: number, reason: string) {
    super(`line ${line}: ${reason}`);
  }
}

/**
 * Why the parser let something pass that it would rather refuse (see docs/parser.md): a bounded label value of
 * metrics_relay_sidecar_parse_warnings_total. Only selected families are checked for these.
 */
export type WarningReason =
  | 'repeated_metadata' // a second HELP, TYPE or UNIT line for a family
  | 'metadata_after_samples' // TYPE, HELP or UNIT after the family's samples
  | 'invalid_metadata' // OpenMetrics: a unit on an info or stateset, a name that clashes with a typed family's sample
  | 'family_not_contiguous' // OpenMetrics: a family's (or a histogram's or summary's label set's) lines apart
  | 'invalid_sample' // a value or label an OpenMetrics family type (or expfmt, in text) rules out
  | 'invalid_histogram' // bucket structure, _sum/_count rules of a histogram
  | 'invalid_exemplar'; // an exemplar where OpenMetrics allows none, or too long

/** The first occurrence of a reason in one page, and how many times it occurred. */
export interface ParseWarning {
  reason: WarningReason;
  /** 1-based line of the first occurrence. */
  line: number;
  /** What was wrong at that line, e.g. `second HELP line for metric name "x"`. */
  message: string;
  count: number;
}

/** A parsed page: its selected families, and what was let pass (one entry per reason). */
export interface ParsedPage {
  families: Family[];
  warnings: ParseWarning[];
  /** Samples of selected families not held because of the budget, by family name. */
  cut: ReadonlyMap<string, number>;
}

/**
 * Bounds what a parse holds, whatever the page: once `max` samples of selected families are held, a further sample
 * is held only if `keep(name, labels)` says so (a series the caller already relays); the others are still checked
 * like every line, then counted in ParsedPage.cut and let go.
 */
export interface SampleBudget {
  max: number;
  keep(name: string, labels: Readonly<Record<string, string>>): boolean;
}
