import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import type { ScrapeFailure } from './scrape/scrape.js';
import type { WarningReason } from './parse/index.js';
import type { DropReason } from './series/builder.js';

/** What one pod's scrape path counts (the node agent sums them over its pods). */
export interface ScrapeMetrics {
  scrapeDuration: Histogram;
  scrapeErrors: Counter<'reason'>;
  parseWarnings: Counter<'reason'>;
  /** Series sent from the pod's last good scrape. */
  seriesSelected: { set(value: number): void };
  seriesDropped: Counter<'reason'>;
}

/** The sidecar's own metrics. */
export interface SidecarMetrics extends ScrapeMetrics {
  seriesSelected: Gauge;
  streamUp: Gauge<'replica'>;
  breakerState: Gauge;
}

const REASONS: readonly ScrapeFailure[] = ['timeout', 'http_status', 'body_too_large', 'parse', 'connect', 'breaker_open'];
const WARNING_REASONS: readonly WarningReason[] = ['repeated_metadata', 'metadata_after_samples', 'invalid_metadata', 'family_not_contiguous', 'invalid_sample', 'invalid_histogram', 'invalid_exemplar'];
const DROP_REASONS: readonly DropReason[] = ['max_series', 'label_name_too_long', 'label_value_too_long', 'too_many_labels', 'snapshot_too_large'];

/**
 * Registers the sidecar's metrics on `registry` (created by main), with the process and Node.js defaults
 * prefixed `metrics_relay_sidecar_` (e.g. metrics_relay_sidecar_process_resident_memory_bytes).
 */
export function createSidecarMetrics(registry: Registry): SidecarMetrics {
  const registers = [registry];
  return {
    ...createScrapeMetrics(registry, 'metrics_relay_sidecar_'),
    seriesSelected: new Gauge({ name: 'metrics_relay_sidecar_series_selected', help: 'Series sent from the last good scrape (after the --max-series cap).', registers }),
    streamUp: new Gauge({ name: 'metrics_relay_sidecar_stream_up', help: 'Whether the stream to an aggregator replica is up (1) or not (0).', labelNames: ['replica'], registers }),
    breakerState: new Gauge({ name: 'metrics_relay_sidecar_breaker_state', help: 'Scrape breaker: 0 closed, 1 half-open, 2 open.', registers }),
  };
}

/**
 * The scrape metrics named `<prefix>…`, with the process and Node.js defaults under the same prefix. Their
 * seriesSelected does nothing: the caller registers its own gauge.
 */
export function createScrapeMetrics(registry: Registry, prefix: string): ScrapeMetrics {
  // NOTE: the event-loop delay monitor samples every 100ms instead of every 10ms: a sidecar idles between scrapes
  // and 100 wake-ups a second would be most of its CPU.
  collectDefaultMetrics({ register: registry, prefix, eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  const scrapeErrors = new Counter({ name: `${prefix}scrape_errors_total`, help: 'Failed scrapes by reason (breaker_open: not tried, the breaker is open).', labelNames: ['reason'], registers });
  const seriesDropped = new Counter({
    name: `${prefix}series_dropped_total`,
    help: 'Selected series not sent, summed over scrapes, by reason: max_series (the --max-series cap), label_name_too_long, label_value_too_long, too_many_labels (the --max-label-* caps), snapshot_too_large (trimmed to fit an aggregator\'s message limit; counted per replica stream).',
    labelNames: ['reason'],
    registers,
  });
  // Every reason shows from the start (at 0), so rate() over it works before the first failure.
  for (const reason of REASONS) scrapeErrors.inc({ reason }, 0);
  const parseWarnings = new Counter({
    name: `${prefix}parse_warnings_total`,
    help: 'Format rules broken by selected families that the sidecar let pass (as the Prometheus server does), by reason; see docs/parser.md.',
    labelNames: ['reason'],
    registers,
  });
  for (const reason of WARNING_REASONS) parseWarnings.inc({ reason }, 0);
  for (const reason of DROP_REASONS) seriesDropped.inc({ reason }, 0);
  return {
    scrapeDuration: new Histogram({
      name: `${prefix}scrape_duration_seconds`,
      help: 'Time to scrape and parse the app, failed scrapes included.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    scrapeErrors,
    parseWarnings,
    seriesSelected: { set: () => undefined },
    seriesDropped,
  };
}
