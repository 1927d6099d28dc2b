import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRelay, eventually, NODE, ROOT, type RelayProcess } from '../helpers/processes.js';
import { get } from '../helpers/http.js';
import { quantityValue } from '../../examples/demo.js';

// Real processes on loopback: the example app (built CLI), one sidecar at a 1s interval, two aggregator replicas.

const NS = 'relay';
const POD = 'web-1';
const INTERVAL_MS = 1000;
let app: RelayProcess | undefined;
let appUrl = '';
const aggs: (RelayProcess | undefined)[] = [];
const aggPorts: Record<string, number>[] = [];
let sidecar: RelayProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'sidecar-relay-'));
const labelsFile = join(dir, 'labels');

/** Starts `node dist/examples/app.js --port 0` and waits for its ports line. */
function startApp(): Promise<RelayProcess> {
  const child = spawn(NODE, [`${ROOT}dist/examples/app.js`, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c: Buffer) => {
      const line = (buf += c.toString()).split('\n').find((l) => l.includes('"msg":"ports"'));
      if (line) resolve({ child, ports: JSON.parse(line) as Record<string, number>, lines: [], exited, stop: () => (child.kill('SIGTERM'), exited) });
    });
    void exited.then((code) => reject(new Error(`example app exited with ${code}`)));
  });
}

const aggregatorArgs = (p?: Record<string, number>) => ['aggregator', '--standalone', '--api-port', String(p?.['api'] ?? 0), '--ingest-port', String(p?.['ingest'] ?? 0), '--metrics-port', String(p?.['metrics'] ?? 0), '--warmup', '30s', '--log-level', 'warn'];
const api = (i: number, path: string) => get(`https://127.0.0.1:${aggPorts[i]!['api']}${path}`);

/** The pod's value of a metric on replica i: its Quantity string, or the 404's message. */
async function podValue(i: number, metric: string, query = ''): Promise<{ status: number; value?: string; window?: number; message?: string }> {
  const r = await api(i, `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NS}/pods/${POD}/${metric}${query}`);
  return r.status === 200 ? { status: 200, value: r.json.items[0].value, window: r.json.items[0].windowSeconds } : { status: r.status, message: r.json?.message };
}
const onBoth = async (metric: string, want: string): Promise<boolean> => (await podValue(0, metric)).value === want && (await podValue(1, metric)).value === want;
const setApp = (q: string) => get(`${appUrl}/${q}`);
async function sidecarMetric(line: string): Promise<number | undefined> {
  const text = (await get(`http://127.0.0.1:${sidecar!.ports['metrics']}/metrics`)).text;
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}
/** ms until cond() holds, polling every 10ms; throws after timeoutMs. */
async function timeUntil(cond: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await eventually(async () => ((await cond()) ? true : undefined), timeoutMs, 10);
  return Date.now() - t0;
}

beforeAll(async () => {
  writeFileSync(labelsFile, 'app="web"\n');
  app = await startApp();
  appUrl = `http://127.0.0.1:${app.ports['port']}`;
  for (let i = 0; i < 2; i++) {
    aggs.push(await startRelay(aggregatorArgs()));
    aggPorts.push(aggs[i]!.ports);
  }
  sidecar = await startRelay([
    'sidecar', '--target', `${appUrl}/metrics`, '--aggregator', aggPorts.map((p) => `127.0.0.1:${p['ingest']}`).join(','), '--insecure',
    '--interval', `${INTERVAL_MS}ms`, '--rate-window', '10s', '--metrics', 'cm_*,http_requests_total', '--pod-name', POD, '--pod-namespace', NS,
    '--pod-uid', 'uid-1', '--pod-labels-file', labelsFile, '--metrics-port', '0', '--bind-address', '127.0.0.1',
  ]);
  await eventually(async () => ((await onBoth('cm_connection_count', '0')) ? true : undefined), 15_000);
});

afterAll(async () => {
  await sidecar?.stop();
  for (const a of aggs) await a?.stop();
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('values flow from the app to every replica', () => {
  it('a changed value is served by both aggregators within one interval', async () => {
    expect((await get(`http://127.0.0.1:${sidecar!.ports['metrics']}/readyz`)).status).toBe(200);
    const took: number[] = [];
    for (const n of [17, 4, 9]) {
      await setApp(`set?connections=${n}`);
      took.push(await timeUntil(() => onBoth('cm_connection_count', String(n)), 5000));
    }
    // One interval at most until the next scrape, plus delivery and this poll's own latency.
    expect(Math.max(...took)).toBeLessThan(INTERVAL_MS + 250);
  });

  it('serves the queue depth as an external metric with only its own labels', async () => {
    await setApp('set?queue=42');
    for (const i of [0, 1]) {
      await eventually(async () => {
        const r = await api(i, `/apis/external.metrics.k8s.io/v1beta1/namespaces/${NS}/cm_queue_depth?labelSelector=queue%3Dorders`);
        return r.status === 200 && r.json.items[0].value === '42' ? r.json.items[0] : undefined;
      }, 3000).then((item: { metricLabels: Record<string, string> }) => expect(item.metricLabels).toEqual({ queue: 'orders' }));
    }
  });

  it("serves the counter's rate within 1% of the request rate driven into the app", async () => {
    // 50 requests/s to /work on a self-correcting schedule for 13s (the rate window is 10s); read it while driving.
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const hit = () => request(`${appUrl}/work`, { agent }, (res) => res.resume()).on('error', () => undefined).end();
    const start = Date.now();
    let sent = 0;
    let rate: { value?: string; window?: number } | undefined;
    while (rate === undefined && Date.now() - start < 16_000) {
      const due = start + sent * 20;
      if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
      hit();
      sent++;
      // Only /work was requested in the last 10s, so the pod's http_requests (the sum over its paths) is that rate.
      // NOTE: no metricLabelSelector on path: "/work" is not a valid label selector value.
      if (Date.now() - start >= 13_000) rate = await podValue(0, 'http_requests');
    }
    agent.destroy();
    expect(rate?.window).toBe(10);
    expect(Math.abs(quantityValue(rate!.value!) - 50) / 50).toBeLessThan(0.01);
    // The raw counter is served as-is under its own name too.
    expect(quantityValue((await podValue(1, 'http_requests_total')).value!)).toBeGreaterThanOrEqual(sent);
  }, 30_000);

  it('a change of the pod labels file reaches both replicas with the next scrape', async () => {
    const byTier = (i: number) => api(i, `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NS}/pods/*/cm_connection_count?labelSelector=tier%3Dfront`);
    expect((await byTier(0)).status).toBe(404);
    writeFileSync(labelsFile, 'app="web"\ntier="front"\n');
    const took = await timeUntil(async () => (await byTier(0)).status === 200 && (await byTier(1)).status === 200, 5000);
    expect(took).toBeLessThan(INTERVAL_MS + 250);
  });
});

describe('losing a replica', () => {
  it('the other keeps serving fresh values; a restarted one is full within one interval and ready only then', async () => {
    const lost = aggs[1]!;
    lost.child.kill('SIGKILL');
    await lost.exited;
    await setApp('set?connections=23');
    expect(await timeUntil(async () => (await podValue(0, 'cm_connection_count')).value === '23', 5000)).toBeLessThan(INTERVAL_MS + 250);
    await eventually(async () => ((await sidecarMetric(`metrics_relay_sidecar_stream_up{replica="127.0.0.1:${aggPorts[1]!['ingest']}"}`)) === 0 ? true : undefined), 5000);

    // Same ports; --warmup 30s, so it can only turn ready early by hearing from every sidecar.
    const restarted = await startRelay(aggregatorArgs(aggPorts[1]));
    aggs[1] = restarted;
    const t0 = Date.now();
    const readyz = `http://127.0.0.1:${aggPorts[1]!['metrics']}/readyz`;
    let sawNotReady = false;
    let fullAfter: number | undefined;
    for (;;) {
      const [ready, v] = await Promise.all([get(readyz), podValue(1, 'cm_connection_count')]);
      if (v.value === '23') fullAfter ??= Date.now() - t0;
      if (ready.status === 200) {
        // The moment it says ready, it holds the pod's values.
        expect((await podValue(1, 'cm_connection_count')).value).toBe('23');
        break;
      }
      sawNotReady = true;
      expect(Date.now() - t0).toBeLessThan(15_000);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(sawNotReady).toBe(true);
    expect(fullAfter).toBeLessThan(INTERVAL_MS + 250);
  }, 30_000);
});

describe('shutdown', () => {
  it("SIGTERM removes the pod's series from both replicas at once and exits 0 within 2s", async () => {
    for (const i of [0, 1]) expect((await podValue(i, 'cm_connection_count')).status).toBe(200);
    const t0 = Date.now();
    expect(await sidecar!.stop()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2000);
    for (const i of [0, 1]) {
      const v = await podValue(i, 'cm_connection_count');
      expect(v.status).toBe(404);
      expect(v.message).toContain('never reported');
    }
    expect(sidecar!.lines.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
  });
});
