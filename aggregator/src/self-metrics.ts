import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MemoryStore } from './store/memory-store.js';

/** The aggregator's own metrics, on one registry created by main and passed down. */
export interface AggregatorMetrics {
  registry: Registry;
  samplesIngested: Counter;
  snapshots: Counter<'status'>;
  rejected: Counter<'reason'>;
  clampedTimes: Counter<'reason'>;
  streams: Gauge;
  requestDuration: Histogram<'kind' | 'code'>;
  servedAge: Histogram;
  breakerState: Gauge<'breaker'>;
  webhookReviews: Counter<'result'>;
}

/** `clusterName` (--cluster-name) becomes a constant label `cluster` on every metric of the registry. */
export function createAggregatorMetrics(store: MemoryStore, withDefaults = true, clusterName?: string): AggregatorMetrics {
  const registry = new Registry();
  if (clusterName !== undefined) registry.setDefaultLabels({ cluster: clusterName });
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'metrics_relay_aggregator_' });
  const registers = [registry];
  new Gauge({ name: 'metrics_relay_aggregator_series', help: 'Series held in memory.', registers, collect() { this.set(store.seriesTotal); } });
  new Gauge({ name: 'metrics_relay_aggregator_pods', help: 'Pods held in memory.', registers, collect() { this.set(store.podTotal); } });
  new Gauge({ name: 'metrics_relay_aggregator_store_bytes', help: 'Estimated heap bytes held for pods, series and stream definitions.', registers, collect() { this.set(store.bytesUsed); } });
  new Gauge({ name: 'metrics_relay_aggregator_store_budget_bytes', help: 'Memory budget of the store (--max-store-bytes).', registers, collect() { this.set(store.bytesLimit); } });
  return {
    registry,
    samplesIngested: new Counter({ name: 'metrics_relay_aggregator_samples_ingested_total', help: 'Sample values accepted from sidecars.', registers }),
    snapshots: new Counter({ name: 'metrics_relay_aggregator_snapshots_total', help: 'Snapshots received, by scrape status.', labelNames: ['status'], registers }),
    rejected: new Counter({ name: 'metrics_relay_aggregator_rejected_reports_total', help: 'Reports or series refused, by reason.', labelNames: ['reason'], registers }),
    clampedTimes: new Counter({ name: 'metrics_relay_aggregator_clamped_sample_times_total', help: 'Sample times replaced by the receive time, by reason (ahead_of_clock: beyond --max-clock-skew).', labelNames: ['reason'], registers }),
    streams: new Gauge({ name: 'metrics_relay_aggregator_streams', help: 'Open ingest streams.', registers }),
    requestDuration: new Histogram({
      name: 'metrics_relay_aggregator_request_duration_seconds',
      help: 'API request latency by path kind and status code.',
      labelNames: ['kind', 'code'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    servedAge: new Histogram({
      name: 'metrics_relay_aggregator_served_value_age_seconds',
      help: 'Age of the oldest value in each answer served to API clients (now - its sample time).',
      buckets: [0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 300],
      registers,
    }),
    breakerState: new Gauge({ name: 'metrics_relay_aggregator_breaker_state', help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open.', labelNames: ['breaker'], registers }),
    webhookReviews: new Counter({ name: 'metrics_relay_aggregator_webhook_reviews_total', help: 'Admission reviews answered, by result.', labelNames: ['result'], registers }),
  };
}
