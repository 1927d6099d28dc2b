// `npm run bench:cluster`: the cluster's bill (issue 16). PODS pods x 5 series (one process serves every pod's page,
// each pod on its own loopback address), scraped every 1 s and every 5 s, one mode at a time:
// - Prometheus 2.42 (Debian's package) scraping the same pods through file_sd, and the query prometheus-adapter
//   sends for an HPA's Pods metric: the reference;
// - sidecar mode: a sample of real sidecars (the image's bundle and node flags) and, for the other pods, stand-ins
//   that hold one TLS stream each and send what a sidecar sends (stream-clients.ts), into one aggregator;
// - node mode: one node agent scraping every pod, then NODES agents each scraping its node's share, into one aggregator.
// Per process: peak RSS, peak anonymous memory and CPU over a window after a warm-up; then the query of every pod
// that an HPA makes (p50/p99). Last, the whole-cluster table for PODS pods on NODES nodes, and the targets.
// Knobs (for quick runs): CLUSTER_PODS, CLUSTER_NODES, CLUSTER_SIDECARS, CLUSTER_INTERVALS (ms, comma list),
// CLUSTER_WARMUP_MS, CLUSTER_MEASURE_MS (at most 60 s), CLUSTER_QUERIES, CLUSTER_MODES (prometheus,sidecar,node).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { servingKeyPair } from '../../common/src/tls.js';
import { get, type HttpResult } from '../helpers/http.js';
import { CLI, eventually, startRelay, type RelayProcess } from '../helpers/processes.js';
import { APP_PORT, HPA_METRIC, NAMESPACE, podAddress, podList, podName, relayedSeries } from './cluster-pods.js';
import { imageNodeFlags, shippedNodeAgent, shippedSidecar } from './image.js';
import { measureFootprints, type Footprint } from './proc.js';
import { adapterPodsQuery, prometheusVersion, startPrometheus } from './prometheus.js';
import { percentile, report } from './report.js';
import { startStreamClients, stopStreamClients, type StreamClients } from './stream-clients.js';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const PODS = env('CLUSTER_PODS', 1000);
const NODES = env('CLUSTER_NODES', 20);
const SAMPLE = Math.min(PODS, env('CLUSTER_SIDECARS', 10));
const INTERVALS = (process.env['CLUSTER_INTERVALS'] ?? '1000,5000').split(',').map(Number);
const WARMUP_MS = env('CLUSTER_WARMUP_MS', 30_000);
const MEASURE_MS = Math.min(60_000, env('CLUSTER_MEASURE_MS', 60_000));
const QUERIES = env('CLUSTER_QUERIES', 200);
const MODES = (process.env['CLUSTER_MODES'] ?? 'prometheus,sidecar,node').split(',');
/** The queries stop after this long even when fewer than QUERIES were made. */
const QUERY_BUDGET_MS = 30_000;
const QUERY_GAP_MS = 50;
/** Longest wait for every pod's value to be served after a mode starts. */
const READY_MS = 120_000;
const STANDINS_PER_PROCESS = 2500;
const TARGETS = fileURLToPath(new URL('./cluster-targets.js', import.meta.url));

interface Query {
  p50: number;
  p99: number;
  n: number;
  /** Answers that held fewer than PODS pods. */
  short: number;
}

/** One mode's whole cluster (one aggregator replica) and what makes it up. */
interface Mode {
  name: string;
  parts: string;
  rssMib: number;
  anonMib: number;
  cpuShare: number;
  query: Query;
  /** What a second aggregator replica adds (none for Prometheus). */
  replica?: Footprint;
}

interface Tls {
  cert: string;
  key: string;
}

export async function run(): Promise<void> {
  // Before anything starts: a missing Prometheus fails the run at once, naming the install command.
  const version = MODES.includes('prometheus') ? prometheusVersion() : 'not run';
  const dir = mkdtempSync(join(tmpdir(), 'metrics-relay-cluster-'));
  const pair = await servingKeyPair(undefined, undefined, ['localhost', '127.0.0.1']);
  const tls = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
  writeFileSync(tls.cert, pair.cert);
  writeFileSync(tls.key, pair.key);
  console.log(
    `${PODS} pods x 5 series (3 gauges, 2 counters; a relay sends ${relayedSeries().length} series a pod, rates included), ${NODES} nodes; ` +
      `warm-up ${WARMUP_MS / 1000} s, then a ${MEASURE_MS / 1000} s window (peak RSS and anonymous memory, CPU), then up to ${QUERIES} queries. ` +
      `Prometheus: ${version}; aggregator: node ${imageNodeFlags('Dockerfile.aggregator').join(' ')} (Dockerfile.aggregator); sidecar: node ${shippedSidecar().slice(0, -1).join(' ')} (Dockerfile.sidecar); node agent: node ${shippedNodeAgent().slice(0, -1).join(' ')} (the chart's DaemonSet command).`,
  );
  const apps = await startRelay([String(PODS)], { entry: [TARGETS], timeoutMs: 60_000 });
  try {
    for (const intervalMs of INTERVALS) {
      console.log(`\n-- scraped every ${intervalMs / 1000} s`);
      const modes: Mode[] = [];
      if (MODES.includes('prometheus')) modes.push(await prometheusMode(join(dir, `prometheus-${intervalMs}`), intervalMs));
      if (MODES.includes('sidecar')) modes.push(await sidecarMode(tls, intervalMs));
      if (MODES.includes('node')) {
        await nodeMode(tls, intervalMs, 1);
        modes.push(await nodeMode(tls, intervalMs, NODES));
      }
      printCluster(intervalMs, modes);
    }
  } finally {
    await apps.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function prometheusMode(dir: string, intervalMs: number): Promise<Mode> {
  const targets = Array.from({ length: PODS }, (_, i) => ({ target: `${podAddress(i)}:${APP_PORT}`, labels: { namespace: NAMESPACE, pod: podName(i) } }));
  const started = Date.now();
  const prom = await startPrometheus(dir, targets, intervalMs);
  try {
    const { fps: [fp], scrapeShare } = await steady([prom.child.pid!], () => metricSum([`${prom.url}/metrics`], 'prometheus_target_interval_length_seconds_count'), PODS / (intervalMs / 1000));
    const query = adapterPodsQuery(HPA_METRIC, NAMESPACE, targets.map((t) => t.labels.pod));
    const q = await timeQueries(`${prom.url}/api/v1/query?query=${encodeURIComponent(query)}`, (r) => r.json?.data?.result?.length ?? 0);
    const head = await metricSum([`${prom.url}/metrics`], 'prometheus_tsdb_head_series');
    const age = `${Math.round((Date.now() - started) / 1000)} s after start (its head block grows for 2 h before it is cut)`;
    printProcess('prometheus', fp!, `${scrapesMade(scrapeShare)}; ${head} head series (the pods' plus 5 per target that Prometheus adds: up, scrape_*); ${age}`);
    printQuery(`prometheus-adapter's query (GET /api/v1/query, ${query.length.toLocaleString('en-US')} characters: sum(${HPA_METRIC}{namespace,pod=~"p-0|p-1|..."}) by (pod))`, q);
    return { name: 'Prometheus 2.42', parts: '1 prometheus (prometheus-adapter not counted)', rssMib: fp!.peakRssMib, anonMib: fp!.peakAnonMib, cpuShare: fp!.cpuShare, query: q };
  } finally {
    await prom.stop();
  }
}

async function sidecarMode(tls: Tls, intervalMs: number): Promise<Mode> {
  const agg = await startAggregator(tls);
  const sidecars: RelayProcess[] = [];
  let standIns: StreamClients | undefined;
  try {
    for (let i = 0; i < SAMPLE; i++) {
      sidecars.push(
        await startRelay([
          'sidecar', '--target', `http://${podAddress(i)}:${APP_PORT}/metrics`, '--aggregator', `127.0.0.1:${agg.ports['ingest']}`, '--ca-file', tls.cert,
          '--interval', `${intervalMs}ms`, '--pod-name', podName(i), '--pod-namespace', NAMESPACE, '--pod-uid', `uid-${i}`, '--pod-labels', 'app=bench',
          '--metrics-port', '0', '--bind-address', '127.0.0.1', '--log-level', 'warn',
        ], { entry: shippedSidecar() }),
      );
    }
    const spec = { target: `127.0.0.1:${agg.ports['ingest']}`, caFile: tls.cert, first: SAMPLE, intervalMs, namespace: NAMESPACE, podPrefix: 'p-', podsPerApp: PODS, podLabels: { app: 'bench' }, series: relayedSeries() };
    standIns = startStreamClients(spec, PODS - SAMPLE, STANDINS_PER_PROCESS);
    await servedForEveryPod(agg);
    const ops = sidecars.map((s) => `http://127.0.0.1:${s.ports['metrics']}/metrics`);
    const { fps: [aggFp, ...sampled], scrapeShare } = await steady([agg.child.pid!, ...sidecars.map((s) => s.child.pid!)], () => metricSum(ops, 'metrics_relay_sidecar_scrape_duration_seconds_count'), SAMPLE / (intervalMs / 1000));
    const q = await timeQueries(apiQueryUrl(agg), (r) => r.json?.items?.length ?? 0);
    const sidecar = mean(sampled);
    printProcess(`sidecar, mean of ${SAMPLE} (spread: RSS ${range(sampled, (f) => f.peakRssMib)} MiB, anonymous ${range(sampled, (f) => f.peakAnonMib)} MiB)`, sidecar, scrapesMade(scrapeShare));
    printProcess(`aggregator with ${PODS} sidecar streams (${SAMPLE} real sidecars, ${PODS - SAMPLE} stand-ins: one TLS stream each, sending a sidecar's snapshots)`, aggFp!, await held(agg));
    printQuery('our pods/* for every pod (the HPA\'s request)', q);
    return relayCluster('sidecar mode', `${PODS} sidecars + 1 aggregator`, PODS, sidecar, aggFp!, q);
  } finally {
    if (standIns) await stopStreamClients(standIns);
    await Promise.all(sidecars.map((s) => s.stop()));
    await agg.stop();
  }
}

/** `nodes` node agents, each with its node's share of the pods (a pods file of that node's pods), and one aggregator. */
async function nodeMode(tls: Tls, intervalMs: number, nodes: number): Promise<Mode> {
  const agg = await startAggregator(tls);
  const agents: RelayProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'metrics-relay-nodes-'));
  const perNode = Math.ceil(PODS / nodes);
  try {
    for (let n = 0; n < nodes; n++) {
      const pods = Array.from({ length: Math.min(perNode, PODS - n * perNode) }, (_, k) => n * perNode + k);
      const file = join(dir, `node-${n}.json`);
      writeFileSync(file, JSON.stringify(podList(pods, `node-${n}`)));
      agents.push(
        await startRelay([
          'node-agent', '--node-name', `node-${n}`, '--aggregator', `127.0.0.1:${agg.ports['ingest']}`, '--ca-file', tls.cert, '--pods-file', file,
          '--interval', `${intervalMs}ms`, '--metrics-port', '0', '--bind-address', '127.0.0.1', '--log-level', 'warn',
        ], { entry: shippedNodeAgent() }),
      );
    }
    await servedForEveryPod(agg);
    const ops = agents.map((a) => `http://127.0.0.1:${a.ports['metrics']}/metrics`);
    const { fps: [aggFp, ...measured], scrapeShare } = await steady([agg.child.pid!, ...agents.map((a) => a.child.pid!)], () => metricSum(ops, 'metrics_relay_node_agent_scrape_duration_seconds_count'), PODS / (intervalMs / 1000));
    const q = await timeQueries(apiQueryUrl(agg), (r) => r.json?.items?.length ?? 0);
    const agent = mean(measured);
    const label = nodes === 1 ? `node agent with ${PODS} pods` : `node agent with ${perNode} pods, mean of ${nodes} (spread: RSS ${range(measured, (f) => f.peakRssMib)} MiB, anonymous ${range(measured, (f) => f.peakAnonMib)} MiB)`;
    printProcess(label, agent, scrapesMade(scrapeShare));
    printProcess(`aggregator with ${nodes} node agent${nodes === 1 ? '' : 's'}`, aggFp!, await held(agg));
    printQuery(`our pods/* for every pod, ${nodes} node agent${nodes === 1 ? '' : 's'}`, q);
    return relayCluster('node mode', `${nodes} node agents (${perNode} pods each) + 1 aggregator`, nodes, agent, aggFp!, q);
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await agg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A relay mode's whole cluster: `count` agents (sidecars or node agents) like `agent`, and one aggregator. */
function relayCluster(name: string, parts: string, count: number, agent: Footprint, aggregator: Footprint, query: Query): Mode {
  return {
    name,
    parts,
    rssMib: count * agent.peakRssMib + aggregator.peakRssMib,
    anonMib: count * agent.peakAnonMib + aggregator.peakAnonMib,
    cpuShare: count * agent.cpuShare + aggregator.cpuShare,
    query,
    replica: aggregator,
  };
}

/** A standalone aggregator serving TLS on ingest (as in a cluster), with the image's node flags. */
function startAggregator(tls: Tls): Promise<RelayProcess> {
  return startRelay(
    ['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--log-level', 'warn', '--tls-cert-file', tls.cert, '--tls-key-file', tls.key],
    { entry: [...imageNodeFlags('Dockerfile.aggregator'), CLI] },
  );
}

/** What the HPA controller asks for a Pods metric over its pods (label selector app=bench: every pod). */
function apiQueryUrl(agg: RelayProcess): string {
  return `https://127.0.0.1:${agg.ports['api']}/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NAMESPACE}/pods/%2A/${HPA_METRIC}?labelSelector=app%3Dbench`;
}

async function servedForEveryPod(agg: RelayProcess): Promise<void> {
  await eventually(async () => (((await get(apiQueryUrl(agg))).json?.items?.length ?? 0) >= PODS ? true : undefined), READY_MS, 1000);
}

/**
 * Warm-up, then one window over every process at once; and how many of the scrapes due in the window were made
 * (`scrapes` reads a running count; scheduledPerSecond is what the interval asks), which falls below 1 when the
 * scrapers (or this machine) cannot keep up.
 */
async function steady(pids: number[], scrapes: () => Promise<number>, scheduledPerSecond: number): Promise<{ fps: Footprint[]; scrapeShare: number }> {
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const before = await scrapes();
  const t0 = performance.now();
  const fps = await measureFootprints(pids, MEASURE_MS, 1000);
  const made = (await scrapes()) - before;
  return { fps, scrapeShare: made / (((performance.now() - t0) / 1000) * scheduledPerSecond) };
}

/** The sum over every series of `name` (a counter or gauge, any labels) on the /metrics pages at urls. */
async function metricSum(urls: string[], name: string): Promise<number> {
  let sum = 0;
  for (const url of urls) {
    for (const line of (await get(url)).text.split('\n')) if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * QUERIES requests one after another (one kept-alive connection, QUERY_GAP_MS apart, at most QUERY_BUDGET_MS),
 * timed to the answer's last byte; the first, which opens the connection, is not counted.
 */
async function timeQueries(url: string, pods: (r: HttpResult) => number): Promise<Query> {
  const agent = url.startsWith('https:') ? new HttpsAgent({ keepAlive: true, maxSockets: 1 }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
  const ms: number[] = [];
  let short = 0;
  try {
    await get(url, { agent });
    const started = Date.now();
    while (ms.length < QUERIES && Date.now() - started < QUERY_BUDGET_MS) {
      const r = await get(url, { agent });
      if (r.status !== 200) throw new Error(`${url.slice(0, 100)}...: ${r.status} ${r.text.slice(0, 300)}`);
      ms.push(r.ms);
      if (pods(r) < PODS) short++;
      await new Promise((r) => setTimeout(r, QUERY_GAP_MS));
    }
  } finally {
    agent.destroy();
  }
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), n: ms.length, short };
}

/** What the aggregator holds, from its own /metrics. */
async function held(agg: RelayProcess): Promise<string> {
  const gauge = (name: string): Promise<number> => metricSum([`http://127.0.0.1:${agg.ports['metrics']}/metrics`], `metrics_relay_aggregator_${name}`);
  return `holds ${await gauge('pods')} pods, ${await gauge('series')} series, ${await gauge('streams')} streams`;
}

function mean(fps: Footprint[]): Footprint {
  const avg = (f: (x: Footprint) => number): number => fps.reduce((a, x) => a + f(x), 0) / fps.length;
  return { peakRssMib: avg((f) => f.peakRssMib), peakAnonMib: avg((f) => f.peakAnonMib), cpuShare: avg((f) => f.cpuShare) };
}

function range(fps: Footprint[], f: (x: Footprint) => number): string {
  return `${Math.min(...fps.map(f)).toFixed(1)}-${Math.max(...fps.map(f)).toFixed(1)}`;
}

function printProcess(label: string, fp: Footprint, note?: string): void {
  console.log(`${label}: RSS ${fp.peakRssMib.toFixed(1)} MiB, anonymous ${fp.peakAnonMib.toFixed(1)} MiB, CPU ${pct(fp.cpuShare)} of a core${note ? `; ${note}` : ''}`);
}

function scrapesMade(share: number): string {
  return `${pct(share)} of the scrapes due in the window made`;
}

function printQuery(label: string, q: Query): void {
  console.log(`${label}: p50 ${q.p50.toFixed(1)} / p99 ${q.p99.toFixed(1)} ms over ${q.n} requests${q.short ? `, ${q.short} answers with fewer than ${PODS} pods` : ''}`);
}

function printCluster(intervalMs: number, modes: Mode[]): void {
  const s = `${intervalMs / 1000} s`;
  const rows = [
    ['mode', 'processes', 'RSS', 'anonymous', 'CPU (cores)', 'query p50 / p99'],
    ...modes.map((m) => [m.name, m.parts, mem(m.rssMib), mem(m.anonMib), (m.cpuShare).toFixed(2), `${m.query.p50.toFixed(1)} / ${m.query.p99.toFixed(1)} ms`]),
  ];
  console.log(`\nwhole cluster, ${PODS.toLocaleString('en-US')} pods on ${NODES} nodes, ${s} scrape, 1 aggregator replica:`);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(`| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`);
  console.log(
    '(RSS sums count the node binary\'s file pages, ~40 MiB, once per process; processes of one image on one node share them, ' +
      'so for many sidecars on a node the anonymous sum is the closer figure. CPU: the window\'s mean.)',
  );
  for (const m of modes.filter((m) => m.replica)) {
    const r = m.replica!;
    console.log(
      `${m.name} with the chart's default of 2 replicas: + ${mem(r.peakRssMib)} RSS (${mem(r.peakAnonMib)} anonymous), + ${pct(r.cpuShare)} of a core ` +
        `-> ${mem(m.rssMib + r.peakRssMib)}, ${mem(m.anonMib + r.peakAnonMib)}, ${(m.cpuShare + r.cpuShare).toFixed(2)} cores ` +
        `(every replica holds every stream; each ${m.name === 'node mode' ? 'agent' : 'sidecar'} holds a second stream, not measured here)`,
    );
  }
  const prom = modes.find((m) => m.name.startsWith('Prometheus'));
  const node = modes.find((m) => m.name === 'node mode');
  const sidecar = modes.find((m) => m.name === 'sidecar mode');
  if (prom && node) {
    report({ name: `node mode whole-cluster RSS at ${s}`, value: node.rssMib, unit: 'MiB', target: `<= ${Math.round(2 * prom.rssMib)}`, baseline: { name: 'Prometheus', value: prom.rssMib } });
    report({ name: `node mode whole-cluster anonymous memory at ${s}`, value: node.anonMib, unit: 'MiB', target: `<= ${Math.round(2 * prom.anonMib)}`, baseline: { name: 'Prometheus', value: prom.anonMib } });
  }
  for (const m of [sidecar, node]) {
    if (prom && m) report({ name: `query p99, Prometheus's over ${m.name}'s at ${s}`, value: prom.query.p99 / m.query.p99, unit: 'x', target: '>= 10' });
  }
  if (sidecar) report({ name: `sidecar per-pod anonymous memory at ${s} (issue 14's target)`, value: (sidecar.anonMib - sidecar.replica!.peakAnonMib) / PODS, unit: 'MiB', target: '<= 20' });
}

function mem(mib: number): string {
  return mib >= 1024 ? `${(mib / 1024).toFixed(2)} GiB` : `${mib.toFixed(0)} MiB`;
}

function pct(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}
