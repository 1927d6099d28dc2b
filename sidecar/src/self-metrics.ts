import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The sidecar's own metrics, on one registry created by main. */
export function createSidecarMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'metrics_relay_sidecar_' });
  const registers = [registry];
  return {
    registry,
    scrapeDuration: new Histogram({ name: 'metrics_relay_sidecar_scrape_duration_seconds', help: 'Time to scrape and parse the app.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
    scrapeErrors: new Counter({ name: 'metrics_relay_sidecar_scrape_errors_total', help: 'Failed scrapes by reason.', labelNames: ['reason'], registers }),
    seriesSelected: new Gauge({ name: 'metrics_relay_sidecar_series_selected', help: 'Series sent from the last good scrape.', registers }),
    seriesDropped: new Counter({ name: 'metrics_relay_sidecar_series_dropped_total', help: 'Series dropped by the --max-series cap.', registers }),
    streamUp: new Gauge({ name: 'metrics_relay_sidecar_stream_up', help: 'Whether the stream to an aggregator replica is up.', labelNames: ['replica'], registers }),
    breakerState: new Gauge({ name: 'metrics_relay_sidecar_breaker_state', help: 'Scrape breaker: 0 closed, 1 half-open, 2 open.', registers }),
  };
}
export type SidecarMetrics = ReturnType<typeof createSidecarMetrics>;
