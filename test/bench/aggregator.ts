import { once } from 'node:events';
import * as tls from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CLI, startRelay } from '../helpers/processes.js';
import { imageNodeFlags } from './image.js';
import * as grpc from '@grpc/grpc-js';
import { TestReporter, type TestSeries } from '../helpers/ingest-client.js';
import { loadIngest, type WireAck, type WireReportRequest } from '../../common/src/proto.js';
import { MemoryStore, type SeriesDefinition } from '../../aggregator/src/store/memory-store.js';
import { percentile, report } from './report.js';
import { STORE_SHARE_OF_LIMIT } from '../../aggregator/src/store/memory-budget.js';

// Aggregator benchmarks (issue 2 targets): ingest rate, pods/* and discovery latency, bytes per stored series.

export async function run(): Promise<void> {
  await runIngestAndQuery();
  memoryPerSeries();
  await memoryAtBudget();
}

/**
 * The store filled until the memory budget refuses (at the default budget for the chart's 512Mi limit),
 * through real ingest streams into a real aggregator process: its RSS and heap against that limit.
 */
export async function memoryAtBudget(): Promise<void> {
  const LIMIT = 512 * 1024 * 1024;
  const agg = await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--max-store-bytes', String(Math.floor(LIMIT * STORE_SHARE_OF_LIMIT)), '--max-reports-per-second', '1000', '--log-level', 'warn']);
  const target = `127.0.0.1:${agg.ports['ingest']}`;
  const metricsUrl = `http://127.0.0.1:${agg.ports['metrics']}/metrics`;
  const gauge = async (name: string): Promise<number> => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await fetch(metricsUrl)).text())?.[1]);
  let series = 0;
  try {
    // Pods of 1000 series each (2 labels, ~60 bytes), until one is refused; bounded at 3000 pods and 120 s.
    const started = Date.now();
    for (let p = 0; p < 3000 && Date.now() - started < 120_000; p++) {
      const r = new TestReporter(target).hello({ namespace: 'mem', name: `pod-${p}`, uid: `uid-${p}`, labels: { app: 'web', 'pod-template-hash': '5d8f9c7b6d' } }, 60_000);
      const ack = await r.snapshot(Array.from({ length: 1000 }, (_, i) => ({ name: `cm_metric_${Math.floor(i / 10)}`, labels: { path: `/api/v${i % 7}/item`, code: String(200 + (i % 5)) + String(i) }, value: i })));
      r.close();
      series += ack.accepted;
      if (ack.refused > 0) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const rss = await gauge('metrics_relay_aggregator_process_resident_memory_bytes');
    const heap = await gauge('metrics_relay_aggregator_nodejs_heap_size_used_bytes');
    const estimate = await gauge('metrics_relay_aggregator_store_bytes');
    const mib = (b: number) => Math.round(b / 2 ** 20);
    report({ name: `RSS with the store full at the default budget for 512Mi (${series} series)`, value: mib(rss), unit: 'MiB', target: '<= 512' });
    report({ name: 'V8 heap used, same moment', value: mib(heap), unit: 'MiB', baseline: { name: "the store's own estimate", value: mib(estimate) } });
    report({ name: 'store estimate per series', value: estimate / Math.max(1, series), unit: 'bytes' });
  } finally {
    await agg.stop();
  }
}

/**
 * Ingest and query figures of the aggregator as its image runs it (the ENTRYPOINT's node flags), beside the same
 * measurement with V8's default flags, in the same run.
 */
export async function runIngestAndQuery(): Promise<void> {
  const shipped = imageNodeFlags('Dockerfile.aggregator');
  await ingestAndQuery([], 'V8 defaults');
  await ingestAndQuery(shipped, `image flags ${shipped.join(' ')}`);
}

async function ingestAndQuery(nodeFlags: string[], label: string): Promise<void> {
  console.log(`-- aggregator with ${label}`);
  const agg = await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--max-series', '3000000', '--max-reports-per-second', '1000000', '--log-level', 'warn'], { entry: [...nodeFlags, CLI] });
  const target = `127.0.0.1:${agg.ports['ingest']}`;
  try {
    // Ingest: 20 pods x 1000 series each, snapshots pipelined (up to 4 un-acked per stream), for ~5 s.
    const wide = await ingestRate(target, 20, 1000, 5000);
    const narrow = await ingestRate(target, 20, 10, 3000, 'narrow');
    report({ name: 'ingest, 1000 series per snapshot', value: wide, unit: 'samples/s', target: '>= 200000', baseline: { name: '10 series per snapshot', value: narrow } });

    // Queries: 1000 pods report cm_q (plus 1000 metric names spread over them for discovery).
    for (let p = 0; p < 1000; p++) {
      const r = new TestReporter(target).hello({ namespace: 'q', name: `pod-${p}`, labels: { app: 'web', shard: String(p % 10) } }, 60_000);
      const series: TestSeries[] = [{ name: 'cm_q', value: p }, { name: `cm_name_${p}`, value: 1 }];
      await r.snapshot(series);
      // Closing a stream keeps the pod's values (only a goodbye deletes them): the queries below then run
      // without 1000 live streams in this process adding noise to the client side.
      r.close();
    }
    const api = agg.ports['api']!;
    const baseline = await latencies(api, '/healthz', 1000);
    const pods = await latencies(api, '/apis/custom.metrics.k8s.io/v1beta2/namespaces/q/pods/%2A/cm_q?labelSelector=app%3Dweb', 1000);
    const disco = await latencies(api, '/apis/custom.metrics.k8s.io/v1beta2', 1000);
    const p99base = percentile(baseline, 99);
    report({ name: 'pods/* over 1,000 pods, p99', value: percentile(pods, 99), unit: 'ms', target: '<= 5', baseline: { name: '/healthz p99 on the same connection', value: p99base } });
    report({ name: 'pods/* over 1,000 pods, p50', value: percentile(pods, 50), unit: 'ms' });
    report({ name: 'discovery with 1,000 metric names, p99', value: percentile(disco, 99), unit: 'ms', target: '<= 5', baseline: { name: '/healthz p99 on the same connection', value: p99base } });
  } finally {
    await agg.stop();
  }
}

/**
 * Samples/s the aggregator accepts from `pods` concurrent streams. Each stream defines its series once, then
 * sends one pre-encoded steady-state snapshot over and over (up to 8 un-acked), so the figure is the server's
 * cost, not the bench client's encoding.
 */
async function ingestRate(target: string, pods: number, seriesPerPod: number, durationMs: number, ns = 'bench'): Promise<number> {
  const { service } = loadIngest();
  const method = service['Report'] as grpc.MethodDefinition<WireReportRequest, WireAck>;
  const started = { ms: 0 };
  let accepted = 0;
  const streams = Array.from({ length: pods }, (_, p) => {
    const client = new grpc.Client(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const call = client.makeBidiStreamRequest(method.path, (b: Buffer) => b, method.responseDeserialize);
    const ids = Array.from({ length: seriesPerPod }, (_, i) => i);
    const values = ids.map((i) => i * 1.5);
    const snapshot = (defs: boolean): Buffer =>
      method.requestSerialize({
        snapshot: {
          seq: 1, status: 'OK', error: '', scrape_time_ms: Date.now(), ids, values, timestamps_ms: [], pod_labels: null,
          defs: defs ? ids.map((i) => ({ id: i, name: `cm_s${i % 50}`, labels: { i: String(i), p: String(p) }, kind: 'GAUGE', window_ms: 0 })) : [],
        },
      } as unknown as WireReportRequest);
    call.write(method.requestSerialize({ hello: { pod: { namespace: ns, name: `pod-${p}`, uid: '', labels: {} }, interval_ms: 1000, agent: 'bench' } } as WireReportRequest));
    call.write(snapshot(true));
    const steady = snapshot(false);
    return { client, call, steady };
  });
  await Promise.all(
    streams.map(
      ({ call, steady }) =>
        new Promise<void>((resolve, reject) => {
          let first = true;
          let inFlight = 0;
          const pump = () => {
            while (inFlight < 8 && Date.now() - started.ms < durationMs) {
              inFlight++;
              call.write(steady);
            }
            if (inFlight === 0) resolve();
          };
          call.on('data', (ack: WireAck) => {
            if (first) {
              first = false; // the defining snapshot: not counted
              started.ms ||= Date.now();
            } else {
              inFlight--;
              accepted += ack.accepted;
            }
            pump();
          });
          call.on('error', reject);
        }),
    ),
  );
  const rate = accepted / ((Date.now() - started.ms) / 1000);
  for (const s of streams) {
    s.call.cancel();
    s.client.close();
  }
  return rate;
}

/**
 * Milliseconds from sending each of n GETs to the last byte of its answer, one at a time on one kept-alive TLS
 * connection, after 200 unrecorded warm-up requests (JIT tiers).
 * NOTE: a bare HTTP/1.1 client on a TLS socket, not node:https: Node's HTTP client spends about 1 ms of CPU and
 * a major GC every ~100 ms on 200 KB answers, and on 2 cores that was the larger part of the tail measured. The
 * kube-apiserver's Go client reads the answer; this one counts its bytes. Both send Accept-Encoding: gzip.
 */
async function latencies(port: number, path: string, n: number): Promise<number[]> {
  let done: (() => void) | undefined;
  let head = '';
  let remaining = -1;
  const received = (chunk: Buffer): void => {
    if (remaining < 0) {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = head.slice(9, 12);
      if (status !== '200') socket.destroy(new Error(`${path}: HTTP ${status}`));
      remaining = Number(/^content-length: *(\d+)/im.exec(head.slice(0, end))?.[1] ?? NaN) - (head.length - end - 4);
      if (Number.isNaN(remaining)) socket.destroy(new Error(`${path}: no Content-Length`));
    } else remaining -= chunk.length;
    if (remaining <= 0) {
      head = '';
      remaining = -1;
      done?.();
    }
  };
  // NOTE: reads land in one reused buffer (onread): a new Buffer per TLS record made this process run a major GC
  // every ~150 ms (external memory), and those pauses were the tail of the figure.
  const buffer = Buffer.alloc(64 * 1024);
  // (tls.connect passes onread to its net.Socket; @types/node does not list it for TLS.)
  const onread = { buffer, callback: (size: number) => received(buffer.subarray(0, size)) };
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, onread } as tls.ConnectionOptions);
  await once(socket, 'secureConnect');
  const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n`;
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      socket.once('error', reject);
      done = () => {
        socket.off('error', reject);
        resolve(Number(process.hrtime.bigint() - t0) / 1e6);
      };
      socket.write(request);
    });
  try {
    for (let i = 0; i < 200; i++) await one();
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await one());
    return out;
  } finally {
    socket.destroy();
  }
}

/** Heap bytes per stored series at 1,000,000 series (1000 pods x 1000 series, 2 labels each). */
function memoryPerSeries(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const PODS = 1000;
  const PER_POD = 1000;
  const measure = (fill: () => unknown): number => {
    gc();
    const before = process.memoryUsage().heapUsed;
    const held = fill();
    gc();
    const after = process.memoryUsage().heapUsed;
    if (!held) throw new Error('unreachable');
    return (after - before) / (PODS * PER_POD);
  };
  const ours = measure(() => {
    const store = new MemoryStore({ maxSeriesPerPod: PER_POD, maxSeriesTotal: PODS * PER_POD });
    for (let p = 0; p < PODS; p++) {
      const pod = store.upsertPod('bench', `pod-${p}`, `uid-${p}`, { app: 'web' }, 5000, Date.now());
      const defs: SeriesDefinition[] = [];
      for (let i = 0; i < PER_POD; i++) {
        const labels = { path: `/api/v${i % 7}/item`, code: String(200 + (i % 5)) + String(i) };
        const name = `cm_metric_${i % 100}`;
        defs.push({ name, labels, kind: 'GAUGE', windowMs: 0 });
      }
      store.replaceSeries(pod, defs, new Float64Array(PER_POD).fill(p), new Float64Array(PER_POD).fill(Date.now()), Date.now(), Date.now());
    }
    return store;
  });
  // Baseline: the same series as the plainest JS representation, one object each in a Map by "name{labels}".
  const naive = measure(() => {
    const m = new Map<string, unknown>();
    for (let p = 0; p < PODS; p++) {
      for (let i = 0; i < PER_POD; i++) {
        const labels = { pod: `pod-${p}`, path: `/api/v${i % 7}/item`, code: String(200 + (i % 5)) + String(i) };
        m.set(`cm_metric_${i % 100}${JSON.stringify(labels)}`, { name: `cm_metric_${i % 100}`, labels, value: p, ts: Date.now() });
      }
    }
    return m;
  });
  report({ name: 'heap per stored series at 1,000,000 series', value: ours, unit: 'bytes', target: '<= 300', baseline: { name: 'naive Map of objects', value: naive } });
}
