import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { createIngestServer, type IngestServer } from '../../aggregator/src/ingest/server.js';
import { WarmUp } from '../../aggregator/src/readiness.js';
import { MemoryStore } from '../../aggregator/src/store/memory-store.js';
import { StoreMetricsProvider } from '../../aggregator/src/api/store-provider.js';
import { standaloneSelectors } from '../../aggregator/src/kube/object-selectors.js';
import { ApiError } from '../../aggregator/src/errors.js';
import { parseSelector } from '../../aggregator/src/selector.js';
import { createAggregatorMetrics, type AggregatorMetrics } from '../../aggregator/src/self-metrics.js';
import { renderStatusPage } from '../../aggregator/src/status-page.js';
import { rfc3339 } from '../../aggregator/src/timestamp.js';
import { memoryAdmission } from '../../aggregator/src/ingest/admission.js';
import { TestReporter } from '../helpers/ingest-client.js';

// The ingest service in this process, on 127.0.0.1, with an injected clock: what one pod sends must not reach
// another pod's values, nor the replica's memory.

const everything = parseSelector('');
let clock = 0;
let store: MemoryStore;
let metrics: AggregatorMetrics;
let provider: StoreMetricsProvider;
let server: IngestServer;
let target: string;
const reporters: TestReporter[] = [];

let nearLimit: string | undefined;

async function start(maxBytes?: number): Promise<void> {
  nearLimit = undefined;
  clock = Date.now();
  store = new MemoryStore({ maxSeriesPerPod: 100, maxSeriesTotal: 10_000, ...(maxBytes ? { maxBytes } : {}) });
  metrics = createAggregatorMetrics(store, false);
  provider = new StoreMetricsProvider(store, standaloneSelectors(store, parseSelector), () => clock);
  server = createIngestServer({ store, metrics, logger: pino({ level: 'silent' }), warmUp: new WarmUp(0, 0), admitStream: () => nearLimit, maxMessageBytes: 4 * 1024 * 1024, maxClockSkewMs: 5000, now: () => clock });
  target = `127.0.0.1:${await server.start('127.0.0.1', 0, grpc.ServerCredentials.createInsecure())}`;
}

function reporter(): TestReporter {
  const r = new TestReporter(target);
  reporters.push(r);
  return r;
}

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value as number | undefined) ?? 0;
}

function notFoundMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(404);
    return (err as ApiError).message;
  }
  throw new Error('expected a NotFound');
}

afterEach(async () => {
  for (const r of reporters.splice(0)) r.close();
  await server.stop(100);
});

describe('sample times are the aggregator\'s to judge', () => {
  beforeEach(() => start());

  it('a sample stamped one hour ahead is served with the receive time and goes stale 15s after the stream stops', async () => {
    const received = clock;
    const r = reporter().hello({ namespace: 'ns', name: 'ahead' });
    expect((await r.snapshot([{ name: 'cm_x', value: 7 }], { scrapeTimeMs: received + 3_600_000 })).accepted).toBe(1);
    const [v] = provider.podMetrics('ns', 'ahead', 'cm_x', everything, everything);
    expect(v!.sampleMs).toBe(received);
    expect(await counter('metrics_relay_aggregator_clamped_sample_times_total', { reason: 'ahead_of_clock' })).toBe(1);
    r.close(); // the sidecar is gone
    clock = received + 15_000;
    expect(provider.podMetrics('ns', 'ahead', 'cm_x', everything, everything)).toHaveLength(1);
    clock = received + 15_001;
    expect(notFoundMessage(() => provider.podMetrics('ns', 'ahead', 'cm_x', everything, everything))).toBe(
      `the server could not find the metric cm_x for pod ahead in namespace ns: stale since ${new Date(received + 15_000).toISOString()} (last sample at ${new Date(received).toISOString()}, values older than 15s are not served)`,
    );
  });

  it('the largest Date (8640000000000000 ms) is served as an RFC 3339 receive time; a time within the skew is kept', async () => {
    const received = clock;
    await reporter().hello({ namespace: 'ns', name: 'far' }).snapshot([{ name: 'cm_x', value: 1 }], { scrapeTimeMs: 8_640_000_000_000_000 });
    await reporter().hello({ namespace: 'ns', name: 'near' }).snapshot([{ name: 'cm_x', value: 2 }], { scrapeTimeMs: received + 4000 });
    const byPod = Object.fromEntries(provider.podMetrics('ns', '*', 'cm_x', everything, everything).map((v) => [v.object.name, v.sampleMs]));
    expect(byPod).toEqual({ far: received, near: received + 4000 });
    expect(rfc3339(byPod['far']!)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(await counter('metrics_relay_aggregator_clamped_sample_times_total', { reason: 'ahead_of_clock' })).toBe(1);
  });
});

describe('byte limits on labels', () => {
  beforeEach(() => start());

  it('refuses series over the label limits in the Ack, counts them, and the 404 for them repeats why', async () => {
    const r = reporter().hello({ namespace: 'ns', name: 'labels', labels: { app: 'web' } });
    const ack = await r.snapshot([
      { name: 'cm_ok', value: 1 },
      { name: 'cm_value', labels: { big: 'x'.repeat(3_000_000) }, value: 2 },
      { name: 'cm_key', labels: { ['k'.repeat(200)]: 'v' }, value: 3 },
      { name: 'cm_many', labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v'])), value: 4 },
    ]);
    expect(ack).toMatchObject({ accepted: 1, refused: 3 });
    expect(ack.reason).toBe('series "cm_value": the value of label "big" is 3000000 bytes, longer than --max-label-value-bytes (2048); series "cm_key": label name "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk..." is 200 bytes, longer than --max-label-name-bytes (128); series "cm_many" has more than --max-labels-per-series (32) labels');
    expect(await counter('metrics_relay_aggregator_rejected_reports_total', { reason: 'label_limit' })).toBe(3);
    expect(notFoundMessage(() => provider.podMetrics('ns', 'labels', 'cm_value', everything, everything))).toBe(
      'the server could not find the metric cm_value for pod labels in namespace ns: the series of pod labels were refused at ingest: series "cm_value": the value of label "big" is 3000000 bytes, longer than --max-label-value-bytes (2048)',
    );
    expect(notFoundMessage(() => provider.podMetrics('ns', '*', 'cm_many', everything, everything))).toMatch(/for pods in namespace ns: the series of pod labels were refused at ingest: series "cm_many" has more than/);
    expect(provider.podMetrics('ns', 'labels', 'cm_ok', everything, everything)[0]!.value).toBe(1);
    // The steady state (ids only) keeps refusing the same series, and the status page shows why.
    expect(await r.snapshot([{ name: 'cm_ok', value: 5 }, { name: 'cm_key', labels: { ['k'.repeat(200)]: 'v' }, value: 3 }])).toMatchObject({ accepted: 1, refused: 1 });
    expect(provider.podMetrics('ns', 'labels', 'cm_ok', everything, everything)[0]!.value).toBe(5);
    expect(await renderStatusPage(store, metrics, undefined, clock)).toContain('cm_key: series &#34;cm_key&#34;: label name');
  });

  it('ends a stream whose pod labels no Kubernetes pod can have', async () => {
    const r = reporter().hello({ namespace: 'ns', name: 'forged', labels: { app: 'x'.repeat(64) } });
    expect(await r.endOfStream()).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: 'Hello for pod ns/forged: the value of pod label "app" is longer than Kubernetes allows (63 bytes)' });
    expect(store.getPod('ns', 'forged')).toBeUndefined();
  });
});

describe('the memory budget', () => {
  beforeEach(() => start(40_000));

  it('refuses what would pass the budget in the Ack and at Hello, never evicting another pod', async () => {
    const a = reporter().hello({ namespace: 'ns', name: 'a', labels: { app: 'web' } });
    expect((await a.snapshot([{ name: 'cm_x', value: 1 }])).accepted).toBe(1);
    const b = reporter().hello({ namespace: 'ns', name: 'b', labels: { app: 'web' } });
    const wide = Array.from({ length: 60 }, (_, i) => ({ name: 'cm_x', labels: { i: String(i), pad: 'p'.repeat(2000) }, value: 2 }));
    const ack = await b.snapshot(wide);
    expect(ack.refused).toBeGreaterThan(0);
    expect(ack.accepted + ack.refused).toBe(60);
    expect(ack.reason).toBe('memory budget of this aggregator (40000 bytes, --max-store-bytes) reached');
    expect(store.bytesUsed).toBeLessThanOrEqual(40_000);
    expect(await counter('metrics_relay_aggregator_rejected_reports_total', { reason: 'memory_budget' })).toBe(ack.refused);
    // Pod a keeps its value; a new pod is refused at Hello, with the reason.
    expect(provider.podMetrics('ns', 'a', 'cm_x', everything, everything)[0]!.value).toBe(1);
    // (labels a Kubernetes pod may have: 100 values of 60 bytes, more than b's refused series left room for)
    const c = reporter().hello({ namespace: 'ns', name: 'c', labels: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`l${i}`, 'x'.repeat(60)])) });
    expect(await c.endOfStream()).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'pod ns/c cannot be held: memory budget of this aggregator (40000 bytes, --max-store-bytes) reached' });
    // When b's stream ends, its definitions' bytes are given back.
    const before = store.bytesUsed;
    b.close();
    await waitFor(() => store.bytesUsed < before);
  });
});

describe('near the container memory limit', () => {
  beforeEach(() => start());

  it('refuses new streams with RESOURCE_EXHAUSTED and the reason, counts them, says so on the status page, and keeps the streams it holds', async () => {
    const a = reporter().hello({ namespace: 'ns', name: 'a' });
    expect((await a.snapshot([{ name: 'cm_x', value: 1 }])).accepted).toBe(1);
    nearLimit = memoryAdmission(512 * 1048576, () => 500 * 1048576)();
    const b = reporter().hello({ namespace: 'ns', name: 'b' });
    expect(await b.endOfStream()).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, details: nearLimit });
    expect(nearLimit).toContain('near its memory limit (resident 500 MiB of 512 MiB');
    expect(await counter('metrics_relay_aggregator_rejected_reports_total', { reason: 'memory_limit' })).toBe(1);
    expect(await renderStatusPage(store, metrics, undefined, clock)).toContain('1 new ingest streams refused: this replica is near its container memory limit');
    // The stream already held goes on.
    expect((await a.snapshot([{ name: 'cm_x', value: 2 }])).accepted).toBe(1);
    expect(provider.podMetrics('ns', 'a', 'cm_x', everything, everything)[0]!.value).toBe(2);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
