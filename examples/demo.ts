import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../common/src/errors.js';
import { parseFlags, type FlagSpec } from '../common/src/flags.js';

export const DEMO_FLAGS = [
  { name: 'load', kind: 'bool', default: true, help: 'drive connections up and down on the example apps (--load=false to leave them alone)' },
  { name: 'target', kind: 'int', default: 5, help: 'AverageValue target of the HPA the demo simulates (connections per pod)' },
  { name: 'duration', kind: 'duration', help: 'stop by itself after this long (default: run until Ctrl-C)' },
  { name: 'interval', kind: 'duration', default: '1s', help: 'scrape interval' },
  { name: 'mode', kind: 'string', default: 'sidecar', help: 'who scrapes the apps: a sidecar each (sidecar), or one node agent for all of them (node)' },
] as const satisfies readonly FlagSpec[];

/** Fixed, documented ports. The demo refuses to start (naming the port) if one is taken. */
export const DEMO_PORTS = {
  aggregators: [
    { name: 'aggregator-a', api: 8443, ingest: 9443, metrics: 9090 },
    { name: 'aggregator-b', api: 8444, ingest: 9444, metrics: 9091 },
  ],
  apps: [8081, 8082, 8083],
  sidecars: [9101, 9102, 9103],
};

const NAMESPACE = 'demo';
const METRIC = 'cm_connection_count';
const CLI = fileURLToPath(new URL('../cmd/metrics-relay.js', import.meta.url));
const APP = fileURLToPath(new URL('./app.js', import.meta.url));

/** `metrics-relay demo`: example apps, their sidecars and two standalone aggregators, with a live view. */
export async function runDemo(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const f = parseFlags(DEMO_FLAGS, argv, env);
  const intervalMs = f.interval;
  const target = f.target;
  if (target <= 0) throw new ConfigError('--target must be positive');
  if (f.mode !== 'sidecar' && f.mode !== 'node') throw new ConfigError(`--mode must be sidecar or node, got "${f.mode}"`);
  const all = [...DEMO_PORTS.aggregators.flatMap((a) => [a.api, a.ingest, a.metrics]), ...DEMO_PORTS.apps, ...DEMO_PORTS.sidecars];
  for (const port of all) {
    if (!(await portFree(port))) throw new ConfigError(`port ${port} on 127.0.0.1 is already in use; the demo uses fixed ports (${all.join(', ')}). Stop whatever holds it and try again`);
  }

  const children: ChildProcess[] = [];
  const logs: string[] = [];
  const start = (name: string, args: string[]): ChildProcess => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // Children log JSON; the demo keeps only warnings and errors for its view.
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (/"level":(40|50|60)/.test(line)) logs.push(`${name}: ${line.slice(0, 200)}`);
      if (logs.length > 5) logs.splice(0, logs.length - 5);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    children.push(child);
    return child;
  };
  let stopping = false;
  const stopAll = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    }
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  for (const a of DEMO_PORTS.aggregators) {
    start(a.name, [CLI, 'aggregator', '--standalone', '--api-port', String(a.api), '--ingest-port', String(a.ingest), '--metrics-port', String(a.metrics), '--warmup', '5s', '--log-level', 'warn']);
  }
  const aggregatorList = DEMO_PORTS.aggregators.map((a) => `127.0.0.1:${a.ingest}`).join(',');
  DEMO_PORTS.apps.forEach((port, i) => {
    start(`app-${i + 1}`, [APP, '--port', String(port)]);
    if (f.mode !== 'sidecar') return;
    start(`sidecar-${i + 1}`, [
      CLI, 'sidecar', '--target', `http://127.0.0.1:${port}/metrics`, '--aggregator', aggregatorList, '--insecure',
      '--interval', `${intervalMs}ms`, '--pod-name', `web-${i + 1}`, '--pod-namespace', NAMESPACE, '--pod-uid', `demo-uid-${i + 1}`,
      '--pod-labels', 'app=web', '--metrics-port', String(DEMO_PORTS.sidecars[i]), '--log-level', 'warn',
    ]);
  });
  if (f.mode === 'node') {
    // The pods as the node agent's informer would list them: one node, the apps as its pods.
    const podsFile = join(mkdtempSync(join(tmpdir(), 'metrics-relay-demo-')), 'pods.json');
    writeFileSync(podsFile, JSON.stringify(demoPods(`${intervalMs}ms`)));
    start('node-agent', [CLI, 'node-agent', '--node-name', DEMO_NODE, '--pods-file', podsFile, '--aggregator', aggregatorList, '--insecure', '--metrics-port', String(DEMO_PORTS.sidecars[0]), '--log-level', 'warn']);
  }
  for (const c of children) c.once('exit', (code) => !stopping && logs.push(`a demo process exited with ${code}`));

  const api = DEMO_PORTS.aggregators[0]!.api;
  const podsPath = `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NAMESPACE}/pods/%2A/${METRIC}?labelSelector=app%3Dweb`;
  const servicePath = `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NAMESPACE}/services/web/${METRIC}`;
  const header = [
    `metrics-relay demo: 3 example apps (web-1..3) ${f.mode === 'node' ? `scraped by one node agent (node ${DEMO_NODE})` : 'with sidecars'}, 2 aggregator replicas (--standalone), scrape interval ${intervalMs}ms`,
    'Try, while it runs:',
    `  curl -sk 'https://127.0.0.1:${api}${podsPath}'`,
    `  curl -sk 'https://127.0.0.1:${api}${servicePath}'`,
    // NOTE: a token, though the standalone aggregator ignores it: without credentials kubectl prompts for a user.
    `  kubectl --server https://127.0.0.1:${api} --insecure-skip-tls-verify --token demo get --raw '/apis/custom.metrics.k8s.io/v1beta2'`,
    `  curl -s 'http://127.0.0.1:${DEMO_PORTS.apps[0]}/connection'      # one more connection on web-1`,
    `  open http://127.0.0.1:${DEMO_PORTS.aggregators[0]!.metrics}/ for the aggregator status page; Ctrl-C stops everything`,
  ];

  // NOTE: the commands are printed only once both replicas answer: on a busy machine an aggregator can take
  // seconds to listen, and a printed curl that gets "connection refused" teaches the wrong thing.
  const waited = await waitForAggregators(tty(), () => stopping);
  if (waited !== undefined) {
    console.error(`metrics-relay demo: ${waited}`);
    await stopAll(1);
  }

  let tick = 0;
  const started = Date.now();
  const durationMs = f.duration;
  const timer = setInterval(() => {
    void (async () => {
      tick++;
      if (f.load) await driveLoad(tick);
      const view = await render(tick, target);
      if (tty()) process.stdout.write(`\x1b[2J\x1b[H${[...header, '', ...view, '', ...logs.slice(-3)].join('\n')}\n`);
      else if (tick % 5 === 1) console.log([...(tick === 1 ? header : []), ...view].join('\n'));
      if (durationMs !== undefined && Date.now() - started >= durationMs) {
        clearInterval(timer);
        await stopAll(0);
      }
    })();
  }, 1000);
}

const tty = (): boolean => process.stdout.isTTY === true;

const DEMO_NODE = 'demo-node';

/** The demo's apps as a v1 PodList on one node, opted in, each reached at 127.0.0.1 on its own port. */
function demoPods(interval: string): { apiVersion: string; kind: string; items: unknown[] } {
  const items = DEMO_PORTS.apps.map((port, i) => ({
    metadata: { namespace: NAMESPACE, name: `web-${i + 1}`, uid: `demo-uid-${i + 1}`, labels: { app: 'web' }, annotations: { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/port': String(port), 'metrics-relay.io/interval': interval } },
    spec: { nodeName: DEMO_NODE, containers: [{ name: 'app', ports: [{ containerPort: port }] }] },
    status: { phase: 'Running', podIP: '127.0.0.1' },
  }));
  return { apiVersion: 'v1', kind: 'PodList', items };
}

/**
 * Polls each aggregator's /healthz until both answer, saying meanwhile what it waits for. Returns undefined when
 * both answer, or why it gave up (60 s).
 */
async function waitForAggregators(overwrite: boolean, stopped: () => boolean): Promise<string | undefined> {
  const started = Date.now();
  const pending = new Set(DEMO_PORTS.aggregators);
  let lastSaid = 0;
  while (pending.size > 0 && !stopped()) {
    for (const a of [...pending]) {
      const r = await httpsGet(`https://127.0.0.1:${a.api}/healthz`).catch(() => undefined);
      if (r?.status === 200) pending.delete(a);
    }
    const elapsed = Date.now() - started;
    if (pending.size === 0) break;
    if (elapsed > 60_000) return `gave up after 60s waiting for ${[...pending].map((a) => a.name).join(' and ')} to listen`;
    if (elapsed - lastSaid >= 1000 || lastSaid === 0) {
      lastSaid = elapsed || 1;
      const line = `waiting for ${[...pending].map((a) => `${a.name} (https://127.0.0.1:${a.api})`).join(' and ')} to listen... ${Math.round(elapsed / 1000)}s`;
      if (overwrite) process.stdout.write(`\r\x1b[2K${line}`);
      else console.log(line);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (overwrite) process.stdout.write('\r\x1b[2K');
  else console.log(`both aggregators answer after ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return undefined;
}

/** Connections rise and fall on a slow wave, different per app. */
async function driveLoad(tick: number): Promise<void> {
  await Promise.all(
    DEMO_PORTS.apps.map(async (port, i) => {
      const wanted = Math.round(6 + 5 * Math.sin((tick + i * 7) / 12));
      await httpGet(`http://127.0.0.1:${port}/set?connections=${wanted}`).catch(() => undefined);
    }),
  );
}

interface Item {
  describedObject: { name: string };
  value: string;
  timestamp: string;
}

async function render(tick: number, target: number): Promise<string[]> {
  // Alternate replicas each tick, so the view shows both serve the same values.
  const replica = DEMO_PORTS.aggregators[tick % 2]!;
  const base = `https://127.0.0.1:${replica.api}/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NAMESPACE}`;
  const pods = await httpsGet(`${base}/pods/%2A/${METRIC}?labelSelector=app%3Dweb`).catch((e: Error) => ({ status: 0, body: e.message }));
  const svc = await httpsGet(`${base}/services/web/${METRIC}`).catch((e: Error) => ({ status: 0, body: e.message }));
  const lines = [`answered by ${replica.name} (https://127.0.0.1:${replica.api})`, '', 'POD      cm_connection_count   AGE'];
  if (pods.status !== 200) return [...lines, `  (no values yet: ${statusMessage(pods.body)})`];
  const items = (JSON.parse(pods.body) as { items: Item[] }).items.sort((a, b) => a.describedObject.name.localeCompare(b.describedObject.name));
  const now = Date.now();
  let sum = 0;
  for (const it of items) {
    const v = quantityValue(it.value);
    sum += v;
    lines.push(`${it.describedObject.name.padEnd(9)}${String(v).padStart(19)}   ${Math.max(0, Math.round((now - Date.parse(it.timestamp)) / 1000))}s`);
  }
  if (svc.status === 200) lines.push('', `Object metric services/web (sum over its pods): ${quantityValue((JSON.parse(svc.body) as { items: Item[] }).items[0]!.value)}`);
  lines.push('', hpaLine(items.length, sum, target));
  return lines;
}

/** What an HPA with a Pods metric and target AverageValue would decide (tolerance 0.1, as kube-controller-manager). */
export function hpaDecision(currentReplicas: number, values: number[], target: number, tolerance = 0.1): number {
  if (values.length === 0 || currentReplicas === 0) return currentReplicas;
  const avg = values.reduce((a, b) => a + b, 0) / values.length;
  const ratio = avg / target;
  if (Math.abs(1 - ratio) <= tolerance) return currentReplicas;
  return Math.ceil(ratio * values.length);
}

function hpaLine(pods: number, sum: number, target: number): string {
  if (pods === 0) return 'HPA: no values, no decision';
  const avg = sum / pods;
  const desired = hpaDecision(pods, Array(pods).fill(avg) as number[], target);
  return `HPA with target AverageValue ${target}: average ${avg.toFixed(2)} over ${pods} pods -> desired replicas ${desired}${desired === pods ? ' (within 10% tolerance or exact)' : ''}`;
}

/** Enough of Quantity parsing for the values the API returns (canonical DecimalSI). */
export function quantityValue(q: string): number {
  const m = /^(-?\d+)([numkMGTPE]?)$/.exec(q);
  if (!m) return Number.NaN;
  const scale: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
  return Number(m[1]) * scale[m[2]!]!;
}

function statusMessage(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body;
  } catch {
    return body;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function httpsGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .on('timeout', function (this: { destroy(e: Error): void }) {
        this.destroy(new Error('timeout'));
      })
      .end();
  });
}

function httpGet(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    })
      .on('error', reject)
      .end();
  });
}
