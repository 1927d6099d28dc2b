import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRelay, eventually, type RelayProcess } from '../helpers/processes.js';
import { get } from '../helpers/http.js';
import { startExampleApp, type ExampleApp, type FailMode } from '../../examples/app.js';

// A misbehaving app, one mode per pod, all at once: each its own example app (in this process) and its own
// sidecar process, streaming to the same two aggregator processes.

const NS = 'failures';
const aggs: RelayProcess[] = [];
const running: { app: ExampleApp; sidecar?: RelayProcess }[] = [];
/** Bound on the sidecar's RSS while apps misbehave: a 50 MB body is read only up to the 10 MiB cap (V8 frees those
 * read buffers lazily, so repeated aborted reads plateau at about 155 MB; steady state is about 80 MB). */
const RSS_BOUND = 200 * 1024 * 1024;

beforeAll(async () => {
  for (let i = 0; i < 2; i++) aggs.push(await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--log-level', 'warn']));
});
afterAll(async () => {
  await Promise.all(running.map(async (r) => {
    await r.sidecar?.stop();
    await r.app.close();
  }));
  for (const a of aggs) await a.stop();
});

/** What replica i serves for the pod: the value, 'stale' (404 saying so), or anything else as 'status: message'. */
async function served(i: number, pod: string, path: string): Promise<string> {
  const r = await get(`https://127.0.0.1:${aggs[i]!.ports['api']}${path.replace('{pod}', pod)}`);
  if (r.status === 200) return r.json.items[0].value as string;
  return r.status === 404 && /stale since/.test(r.json?.message ?? '') ? 'stale' : `${r.status}: ${r.json?.message}`;
}
const CONNECTIONS = `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NS}/pods/{pod}/cm_connection_count`;
const QUEUE = `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NS}/pods/{pod}/cm_queue_depth`;

describe.concurrent('a misbehaving app', () => {
  it.each<[FailMode, string]>([
    ['garbage', 'parse'],
    ['truncated', 'connect'],
    ['500', 'http_status'],
    ['hang', 'timeout'],
    ['huge', 'body_too_large'],
  ])('%s: a logged error with reason %s, stale (never zero, never half a scrape), breaker opens then closes, bounded memory', async (mode, reason) => {
    const pod = `app-${mode}`;
    const app = await startExampleApp();
    const entry: (typeof running)[number] = { app };
    running.push(entry);
    app.setConnections(5);
    app.setQueue(7);
    const sidecar = await startRelay([
      'sidecar', '--target', `http://127.0.0.1:${app.port}/metrics`, '--aggregator', aggs.map((a) => `127.0.0.1:${a.ports['ingest']}`).join(','), '--insecure',
      '--interval', '1s', '--pod-name', pod, '--pod-namespace', NS, '--metrics-port', '0', '--bind-address', '127.0.0.1',
    ]);
    entry.sidecar = sidecar;
    const selfMetric = async (line: string): Promise<number> => {
      const text = (await get(`http://127.0.0.1:${sidecar.ports['metrics']}/metrics`)).text;
      return Number(text.split('\n').find((l) => l.startsWith(`${line} `))?.slice(line.length + 1));
    };
    const both = async (path: string) => [await served(0, pod, path), await served(1, pod, path)];
    await eventually(async () => ((await both(CONNECTIONS)).every((v) => v === '5') ? true : undefined), 15_000);
    expect(await selfMetric(`metrics_relay_sidecar_scrape_errors_total{reason="${reason}"}`)).toBe(0);

    app.setFailMode(mode);
    // Only a scrape of a bad body could carry these: they must never be served while the app misbehaves.
    app.setConnections(99);
    app.setQueue(98);
    const seen = new Set<string>();
    await eventually(async () => {
      const now = [...(await both(CONNECTIONS)), ...(await both(QUEUE))];
      for (const v of now) seen.add(v);
      return (await selfMetric('metrics_relay_sidecar_breaker_state')) === 2 && now.every((v) => v === 'stale') ? true : undefined;
    }, 20_000, 100);
    expect([...seen].every((v) => ['5', '7', 'stale'].includes(v))).toBe(true);
    expect(await selfMetric(`metrics_relay_sidecar_scrape_errors_total{reason="${reason}"}`)).toBeGreaterThanOrEqual(3);
    // Log lines come on another pipe than the metrics: wait for them too.
    const failedLine = await eventually(() => sidecar.lines.find((l) => l.includes('"msg":"scrape failed"') && l.includes(`"reason":"${reason}"`)), 5000);
    expect(failedLine).toContain('"level":50');
    expect(JSON.parse(failedLine).err).toContain(`GET http://127.0.0.1:${app.port}/metrics`);
    await eventually(() => (sidecar.lines.some((l) => l.includes('scrape breaker open')) ? true : undefined), 5000);
    await eventually(async () => ((await selfMetric('metrics_relay_sidecar_scrape_errors_total{reason="breaker_open"}')) > 0 ? true : undefined), 5000);

    app.setFailMode('ok');
    await eventually(async () => ((await both(CONNECTIONS)).every((v) => v === '99') && (await both(QUEUE)).every((v) => v === '98') ? true : undefined), 15_000, 100);
    expect(await selfMetric('metrics_relay_sidecar_breaker_state')).toBe(0);
    await eventually(() => (sidecar.lines.some((l) => l.includes('scrape breaker closed')) ? true : undefined), 5000);
    // Each transition is logged once.
    expect(sidecar.lines.filter((l) => l.includes('scrape breaker open'))).toHaveLength(1);
    expect(await selfMetric('metrics_relay_sidecar_process_resident_memory_bytes')).toBeLessThan(RSS_BOUND);
    expect(sidecar.child.exitCode).toBeNull();
  }, 60_000);
});
