import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { startRelay, eventually, NODE, ROOT, type RelayProcess } from '../helpers/processes.js';
import { get } from '../helpers/http.js';
import { quantityValue } from '../../examples/demo.js';

// Real processes on loopback: the example app, one sidecar, two aggregator replicas.

const NS = 'loop';
let app: RelayProcess;
let appUrl: string;
const aggs: RelayProcess[] = [];
const aggPorts: Record<string, number>[] = [];
let sidecar: RelayProcess;

const startApp = (): Promise<RelayProcess> => {
  // The example app is not a CLI subcommand; start it the same way startRelay starts the CLI.
  const child = spawn(NODE, [`${ROOT}dist/examples/app.js`, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = buf.split('\n').find((l) => l.includes('"msg":"ports"'));
      if (line) {
        const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
        resolve({ child, ports: JSON.parse(line) as Record<string, number>, lines: [], exited, stop: () => (child.kill('SIGTERM'), exited) });
      }
    });
    child.once('exit', (code) => reject(new Error(`example app exited with ${code}`)));
  });
};

const aggregatorArgs = (p?: Record<string, number>) => ['aggregator', '--standalone', '--api-port', String(p?.['api'] ?? 0), '--ingest-port', String(p?.['ingest'] ?? 0), '--metrics-port', String(p?.['metrics'] ?? 0), '--warmup', '20s'];

async function value(i: number, metric: string, pod = 'web-1'): Promise<{ status: number; value?: string; message?: string }> {
  const r = await get(`https://127.0.0.1:${aggPorts[i]!['api']}/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NS}/pods/${pod}/${metric}`);
  return r.status === 200 ? { status: 200, value: r.json.items[0].value } : { status: r.status, message: r.json?.message };
}

async function sidecarMetric(name: string): Promise<string> {
  return (await get(`http://127.0.0.1:${sidecar.ports['metrics']}/metrics`)).text.split('\n').filter((l) => l.startsWith(name)).join('\n');
}

const setApp = (q: string) => get(`${appUrl}/${q}`);

beforeAll(async () => {
  app = await startApp();
  appUrl = `http://127.0.0.1:${app.ports['port']}`;
  for (let i = 0; i < 2; i++) {
    const a = await startRelay(aggregatorArgs());
    aggs.push(a);
    aggPorts.push(a.ports);
  }
  sidecar = await startRelay([
    'sidecar', '--target', `${appUrl}/metrics`, '--aggregator', aggPorts.map((p) => `127.0.0.1:${p['ingest']}`).join(','), '--insecure',
    '--interval', '1s', '--rate-window', '10s', '--metrics', 'cm_*,http_requests_total', '--pod-name', 'web-1', '--pod-namespace', NS,
    '--pod-uid', 'uid-1', '--pod-labels', 'app=web', '--metrics-port', '0',
  ]);
  await eventually(async () => ((await value(0, 'cm_connection_count')).status === 200 && (await value(1, 'cm_connection_count')).status === 200 ? true : undefined));
});

afterAll(async () => {
  await sidecar?.stop();
  for (const a of aggs) await a.stop();
  await app?.stop();
});

describe('values flow from the app to every replica', () => {
  it('serves a changed value on both aggregators within one interval', async () => {
    await setApp('set?connections=17');
    const t0 = Date.now();
    await eventually(async () => ((await value(0, 'cm_connection_count')).value === '17' && (await value(1, 'cm_connection_count')).value === '17' ? true : undefined), 5000, 20);
    // One interval (1s) plus the scrape itself and this poll's own latency.
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it("serves the counter's rate within 1% of the real request rate", async () => {
    // 20 requests/s on a self-correcting schedule for 12s; the rate window is 10s.
    const start = Date.now();
    let k = 0;
    while (Date.now() - start < 12_000) {
      const due = start + k * 50;
      if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
      void setApp('disconnect');
      k++;
    }
    // Only /disconnect was requested in the last 10s, so the pod's http_requests (summed over paths) is its rate.
    const r = await get(`https://127.0.0.1:${aggPorts[0]!['api']}/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NS}/pods/web-1/http_requests`);
    expect(r.status).toBe(200);
    expect(r.json.items[0].windowSeconds).toBe(10);
    const rate = quantityValue(r.json.items[0].value);
    expect(Math.abs(rate - 20) / 20).toBeLessThan(0.01);
  });
});

describe('replica loss', () => {
  it('the other replica keeps serving; a restarted one is full again and ready only then', async () => {
    const old = aggs[1]!;
    expect(await old.stop()).toBe(0);
    await setApp('set?connections=23');
    await eventually(async () => ((await value(0, 'cm_connection_count')).value === '23' ? true : undefined), 3000);

    const restarted = await startRelay(aggregatorArgs(aggPorts[1]));
    aggs[1] = restarted;
    const readyz = `http://127.0.0.1:${aggPorts[1]!['metrics']}/readyz`;
    let sawNotReady = false;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await get(readyz);
      if (r.status === 200) break;
      sawNotReady = true;
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((res) => setTimeout(res, 20));
    }
    // The moment it says ready, it holds the pod's values (the sidecar sent its latest snapshot first).
    expect((await value(1, 'cm_connection_count')).value).toBe('23');
    expect(sawNotReady).toBe(true);
  });
});

describe('a misbehaving app', () => {
  // Each mode: a clear logged error, a counted reason, old values go stale (never zero, never half a scrape),
  // the breaker opens, and after the app recovers it closes and values flow again.
  it.each([
    ['garbage', 'parse'],
    ['truncated', 'connect'],
    ['500', 'http_status'],
    ['hang', 'timeout'],
    ['huge', 'body_too_large'],
  ])('%s -> reason %s', async (mode, reason) => {
    await setApp('set?connections=5');
    await eventually(async () => ((await value(0, 'cm_connection_count')).value === '5' ? true : undefined), 3000);
    const errorsBefore = await sidecarMetric(`metrics_relay_sidecar_scrape_errors_total{reason="${reason}"}`);
    await setApp(`fail?mode=${mode}`);

    // While failing: the last good value or, once the breaker opened, a 404 saying it is stale; never a zero.
    const seen = new Set<string>();
    await eventually(async () => {
      for (const i of [0, 1]) {
        const v = await value(i, 'cm_connection_count');
        seen.add(v.value ?? `404:${/stale since/.test(v.message ?? '') ? 'stale' : v.message}`);
      }
      return (await sidecarMetric('metrics_relay_sidecar_breaker_state ')).endsWith(' 2') && seen.has('404:stale') ? true : undefined;
    }, 15_000, 100);
    expect([...seen].every((s) => s === '5' || s === '404:stale')).toBe(true);
    expect(await sidecarMetric(`metrics_relay_sidecar_scrape_errors_total{reason="${reason}"}`)).not.toBe(errorsBefore);
    expect(sidecar.lines.some((l) => l.includes('"msg":"scrape failed"') && l.includes(`"reason":"${reason}"`))).toBe(true);

    await setApp('fail?mode=ok');
    await setApp('set?connections=6');
    await eventually(async () => ((await value(0, 'cm_connection_count')).value === '6' ? true : undefined), 15_000, 100);
    expect((await sidecarMetric('metrics_relay_sidecar_breaker_state ')).endsWith(' 0')).toBe(true);
    const rss = Number((await sidecarMetric('metrics_relay_sidecar_process_resident_memory_bytes')).split(' ')[1]);
    expect(rss).toBeLessThan(200 * 1024 * 1024);
    expect(sidecar.child.exitCode).toBeNull();
  }, 60_000);
});

describe('shutdown', () => {
  it("SIGTERM removes the pod's series from both replicas at once and exits 0 within 2s", async () => {
    expect((await value(0, 'cm_connection_count')).status).toBe(200);
    const t0 = Date.now();
    expect(await sidecar.stop()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2000);
    for (const i of [0, 1]) {
      const v = await value(i, 'cm_connection_count');
      expect(v.status).toBe(404);
      expect(v.message).toContain('never reported');
    }
  });
});
