import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRelay, eventually, type RelayProcess } from '../helpers/processes.js';
import { get } from '../helpers/http.js';

// The sidecar's limits end to end: one aggregator taking 64 KiB messages, one sidecar told the same, and a page
// with a label value over a 4096-byte cap (set on both) and more series than fit in one message. The first snapshot of the
// stream carries 14 of the 30 cm_wide definitions (16 trimmed), the second 14 more (2 trimmed), the third the
// last two: from then on every series goes as an id and a value, far below the limit.

const LIMIT = 65536;
const page = [
  '# TYPE cm_big gauge',
  `cm_big{v="${'y'.repeat(5000)}"} 1`,
  '# TYPE cm_wide gauge',
  ...Array.from({ length: 30 }, (_, i) => `cm_wide{i="${i}",pad="${'p'.repeat(4000)}"} ${i}`),
  '# TYPE cm_value gauge',
  'cm_value 7',
  '',
].join('\n');

let app: Server;
let agg: RelayProcess | undefined;
let sidecar: RelayProcess | undefined;

beforeAll(async () => {
  app = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(page));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  agg = await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--max-message-bytes', String(LIMIT), '--max-label-value-bytes', '4096', '--log-level', 'warn']);
  sidecar = await startRelay([
    'sidecar', '--target', `http://127.0.0.1:${(app.address() as { port: number }).port}/metrics`, '--aggregator', `127.0.0.1:${agg.ports['ingest']}`, '--insecure',
    '--interval', '500ms', '--pod-name', 'p1', '--pod-namespace', 'lim', '--metrics-port', '0', '--bind-address', '127.0.0.1', '--max-message-bytes', String(LIMIT), '--max-label-value-bytes', '4096',
  ]);
});

afterAll(async () => {
  await sidecar?.stop();
  await agg?.stop();
  await new Promise((r) => app?.close(r));
});

const podMetric = (metric: string) => get(`https://127.0.0.1:${agg!.ports['api']}/apis/custom.metrics.k8s.io/v1beta2/namespaces/lim/pods/p1/${metric}`);
const logs = () => sidecar!.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; reason?: string; families?: string });

describe('sidecar limits (label caps, message size)', () => {
  it('drops the series over the label cap, trims snapshots to the message limit until every other series is relayed', async () => {
    // cm_wide i=0..29, summed: all of them, within a few scrapes.
    await eventually(async () => ((await podMetric('cm_wide')).json?.items?.[0]?.value === '435' ? true : undefined));
    expect((await podMetric('cm_value')).json.items[0].value).toBe('7');
    const big = await podMetric('cm_big');
    expect([big.status, big.json.message]).toEqual([
      404,
      "the server could not find the metric cm_big for pod p1 in namespace lim: it was never reported (no series of that name is held); the pod's sidecar reports: 1 series of families cm_big not sent: series with a label value longer than --max-label-value-bytes (4096)",
    ]);
  });

  it('counts and logs each once per change, and the stream stays up (no reconnect loop)', async () => {
    await new Promise((r) => setTimeout(r, 1500));
    const text = (await get(`http://127.0.0.1:${sidecar!.ports['metrics']}/metrics`)).text;
    const dropped = (reason: string) => Number(new RegExp(`^metrics_relay_sidecar_series_dropped_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
    const scrapes = Number(/^metrics_relay_sidecar_scrape_duration_seconds_count (\d+)$/m.exec(text)?.[1]);
    expect(scrapes).toBeGreaterThanOrEqual(3);
    expect(dropped('label_value_too_long')).toBe(scrapes);
    expect(dropped('snapshot_too_large')).toBe(16 + 2);
    expect(dropped('max_series')).toBe(0);
    const warned = logs().filter((l) => l.level === 40);
    expect(warned.map((l) => [l.msg, l.families])).toEqual([
      ['series with a label value longer than --max-label-value-bytes; those series are not sent', 'cm_big'],
      ["snapshot trimmed: 16 series of families cm_wide over the aggregator's 65536-byte message limit; 1 series of families cm_big not sent: series with a label value longer than --max-label-value-bytes (4096)", 'cm_wide'],
    ]);
    expect(logs().filter((l) => l.msg === "snapshots fit the aggregator's message limit again")).toHaveLength(1);
    expect(logs().filter((l) => l.msg === 'stream to aggregator replica up')).toHaveLength(1);
  });
});
