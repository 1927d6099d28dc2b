// `npm run bench:scale`: one aggregator replica under live load, as a cluster gives it. 1,000, 5,000 and 10,000
// ingest streams over TLS, held open by several client processes (stream-clients.ts: 20 series per pod every 5 s,
// jittered), while this process queries like 1,000 HPAs at a 15 s sync would (~70 requests/s: pods/* over 200 pods,
// Object, External). The baseline, taken first in the same run, is a quiet replica holding 1,000 pods with no live
// stream. Bounded: each step ramps for at most 90 s and measures for MEASURE_MS.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, get } from 'node:https';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { servingKeyPair } from '../../common/src/tls.js';
import { quantityValue } from '../../examples/demo.js';
import { CLI, startRelay, type RelayProcess } from '../helpers/processes.js';
import { imageNodeFlags } from './image.js';
import { percentile, report } from './report.js';
import { startStreamClients, stopStreamClients, totalCounts as total, type StreamClients, type StreamCounts as Counts } from './stream-clients.js';

const INTERVAL_MS = 5000;
const SERIES = 20;
const PODS_PER_APP = 200;
const STREAMS_PER_CLIENT = 2500;
const MEASURE_MS = Number(process.env['SCALE_MEASURE_MS'] ?? 20_000);
const QUERIES_PER_SECOND = 70;
const STEPS = (process.env['SCALE_STEPS'] ?? '1000,5000,10000').split(',').map(Number);

interface Step { streams: number; rssMiB: number; heapMiB: number; cpu: number; p50: number; p99: number; max: number; errors: number; ageP99: number; sent: number; acked: number }

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'metrics-relay-scale-'));
  const pair = await servingKeyPair(undefined, undefined, ['localhost', '127.0.0.1']);
  writeFileSync(join(dir, 'tls.crt'), pair.cert);
  writeFileSync(join(dir, 'tls.key'), pair.key);
  // What the image runs: its ENTRYPOINT's node flags.
  const agg = await startRelay([
    'aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--log-level', 'warn',
    '--tls-cert-file', join(dir, 'tls.crt'), '--tls-key-file', join(dir, 'tls.key'), '--stale-after', '10m', '--expire-after', '1h',
  ], { entry: [...imageNodeFlags('Dockerfile.aggregator'), CLI] });
  const target = `127.0.0.1:${agg.ports['ingest']}`;
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const idle = await sample(agg);
    report({ name: 'idle RSS (standalone, TLS ingest, no stream)', value: idle.rssMiB, unit: 'MiB', target: '<= 80' });

    // Baseline: 1,000 pods report once, then their streams close (values stay held): a quiet replica.
    const warm = startClients(target, join(dir, 'tls.crt'), 1000);
    await waitFor(() => total(warm.counts).sent >= 1000, 90_000);
    await stopStreamClients(warm);
    const quiet = await measure(agg, 1000, undefined);
    print('quiet replica, 1,000 pods held, no live stream', quiet);

    for (const streams of STEPS) {
      const clients = startClients(target, join(dir, 'tls.crt'), streams);
      try {
        await waitFor(() => total(clients.counts).open >= streams && total(clients.counts).acked >= streams, 90_000);
        await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS));
        const step = await measure(agg, streams, clients.counts);
        print(`${streams.toLocaleString('en-US')} live streams`, step, quiet);
        if (streams === 10_000) {
          report({ name: 'RSS at 10,000 streams', value: step.rssMiB, unit: 'MiB', target: '<= 512' });
          report({ name: 'bytes per stream at 10,000 (RSS over idle)', value: ((step.rssMiB - idle.rssMiB) * 1048576) / streams, unit: 'B', target: '<= 25000' });
          report({ name: 'CPU at 10,000 streams', value: step.cpu * 100, unit: '% of a core', target: '<= 50' });
          report({ name: 'pods/* p99 while ingesting 10,000 streams', value: step.p99, unit: 'ms', target: '<= 10', baseline: { name: 'quiet replica', value: quiet.p99 } });
          report({ name: 'served value age p99 at 10,000 streams', value: step.ageP99, unit: 'ms', target: `<= ${INTERVAL_MS + 250}` });
        }
      } finally {
        await stopStreamClients(clients);
      }
    }
  } finally {
    await agg.stop();
  }
}

function print(label: string, s: Step, baseline?: Step): void {
  const vs = baseline ? ` (quiet p99 ${baseline.p99.toFixed(1)} ms)` : '';
  console.log(
    `${label}: RSS ${s.rssMiB.toFixed(0)} MiB, heap ${s.heapMiB.toFixed(0)} MiB, CPU ${(s.cpu * 100).toFixed(1)}% of a core; ` +
      `queries p50 ${s.p50.toFixed(1)} / p99 ${s.p99.toFixed(1)} / max ${s.max.toFixed(0)} ms${vs}, ${s.errors} errors; ${Number.isNaN(s.ageP99) ? '' : `served age p99 ${s.ageP99.toFixed(0)} ms; `}` +
      `snapshots sent ${s.sent}, acks lost ${s.sent - s.acked}`,
  );
}

function startClients(target: string, caFile: string, streams: number): StreamClients {
  const series = Array.from({ length: SERIES }, (_, k) => ({ name: `cm_s${k}`, kind: 'GAUGE' as const, windowMs: 0, labels: { app: 'app-{app}' } }));
  return startStreamClients({ target, caFile, first: 0, intervalMs: INTERVAL_MS, namespace: 'scale', podPrefix: 'pod-', podsPerApp: PODS_PER_APP, podLabels: { app: 'app-{app}', pod: '{p}' }, series }, streams, STREAMS_PER_CLIENT);
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`scale bench: not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** RSS (from /proc), V8 heap used (the aggregator's own /metrics) and CPU seconds so far. */
async function sample(agg: RelayProcess): Promise<{ rssMiB: number; heapMiB: number; cpuS: number }> {
  const status = readFileSync(`/proc/${agg.child.pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
  const stat = readFileSync(`/proc/${agg.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const cpuS = (Number(stat[11]) + Number(stat[12])) / 100;
  const metrics = await new Promise<string>((resolve, reject) => {
    httpGet(`http://127.0.0.1:${agg.ports['metrics']}/metrics`, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  const heap = Number(/^metrics_relay_aggregator_nodejs_heap_size_used_bytes\S* (\S+)/m.exec(metrics)?.[1] ?? NaN);
  return { rssMiB: rssKiB / 1024, heapMiB: heap / 1048576, cpuS };
}

/** ~70 queries a second for MEASURE_MS over the pods present: latencies, errors, and the age of every value served. */
async function measure(agg: RelayProcess, pods: number, counts: Counts[] | undefined): Promise<Step> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: false });
  const base = `https://127.0.0.1:${agg.ports['api']}`;
  const apps = Math.max(1, Math.floor(pods / PODS_PER_APP));
  const latencies: number[] = [];
  const ages: number[] = [];
  let errors = 0;
  const before = await sample(agg);
  const sentBefore = counts ? total(counts) : undefined;
  const started = Date.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; Date.now() - started < MEASURE_MS; i++) {
    const app = `app-${i % apps}`;
    const kind = i % 10;
    const path = kind < 5
      ? `/apis/custom.metrics.k8s.io/v1beta2/namespaces/scale/pods/%2A/cm_s${i % SERIES}?labelSelector=app%3D${app}`
      : kind < 8 ? `/apis/custom.metrics.k8s.io/v1beta2/namespaces/scale/services/${app}/cm_s0` : `/apis/external.metrics.k8s.io/v1beta1/namespaces/scale/cm_s1?labelSelector=app%3D${app}`;
    const t0 = process.hrtime.bigint();
    inflight.push(
      fetchJson(agent, base + path).then(
        ({ status, body }) => {
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (status !== 200) return void errors++;
          if (kind >= 5 || !counts) return;
          const now = Date.now();
          for (const it of (JSON.parse(body) as { items: { value: string }[] }).items) ages.push(now - quantityValue(it.value));
        },
        () => void errors++,
      ),
    );
    await new Promise((r) => setTimeout(r, 1000 / QUERIES_PER_SECOND));
  }
  await Promise.all(inflight);
  const after = await sample(agg);
  const sentAfter = counts ? total(counts) : undefined;
  agent.destroy();
  return {
    streams: pods,
    rssMiB: after.rssMiB,
    heapMiB: after.heapMiB,
    cpu: (after.cpuS - before.cpuS) / ((Date.now() - started) / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: Math.max(...latencies),
    errors,
    ageP99: ages.length ? percentile(ages, 99) : NaN,
    sent: sentAfter && sentBefore ? sentAfter.sent - sentBefore.sent : 0,
    // Acks trail snapshots by a round trip: what was unacknowledged at the start is owed, not lost.
    acked: sentAfter && sentBefore ? sentAfter.sent - sentBefore.sent - Math.max(0, sentAfter.sent - sentAfter.acked - (sentBefore.sent - sentBefore.acked)) : 0,
  };
}

function fetchJson(agent: Agent, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}
