import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { get } from '../helpers/http.js';
import { startRelay, type RelayProcess } from '../helpers/processes.js';
import { percentile, report } from './report.js';

// The sidecar's footprint at a 1s interval on a 1,000-series /metrics, and the freshness of served values.

const SERIES = 1000;

/** An app whose /metrics holds SERIES gauges (cm_bench{i}) plus one value the bench changes (cm_fresh). */
async function benchApp(): Promise<{ server: Server; port: number; set(v: number): void }> {
  let fresh = 0;
  const server = createServer((_req, res) => {
    let body = '# HELP cm_bench A bench gauge.\n# TYPE cm_bench gauge\n';
    for (let i = 0; i < SERIES - 1; i++) body += `cm_bench{i="${i}",shard="${i % 16}"} ${i * 1.5}\n`;
    body += `# TYPE cm_fresh gauge\ncm_fresh ${fresh}\n`;
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, set: (v) => (fresh = v) };
}

/** CPU seconds (user + system) and RSS bytes of a process, from /proc. */
function usage(pid: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (100/s on Linux)
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuSeconds: ticks / 100, rssBytes: rssKb * 1024 };
}

export async function run(): Promise<void> {
  const app = await benchApp();
  let agg: RelayProcess | undefined;
  let sidecar: RelayProcess | undefined;
  try {
    agg = await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--log-level', 'warn']);
    sidecar = await startRelay(['sidecar', '--target', `http://127.0.0.1:${app.port}/metrics`, '--aggregator', `127.0.0.1:${agg.ports['ingest']}`, '--insecure', '--interval', '1s', '--pod-name', 'bench', '--pod-namespace', 'bench', '--metrics-port', '0', '--log-level', 'warn']);
    const pid = sidecar.child.pid!;

    // Footprint: 5s to settle, then 15s measured.
    await new Promise((r) => setTimeout(r, 5000));
    const a = usage(pid);
    const t0 = Date.now();
    let peakRss = a.rssBytes;
    while (Date.now() - t0 < 15_000) {
      await new Promise((r) => setTimeout(r, 500));
      peakRss = Math.max(peakRss, usage(pid).rssBytes);
    }
    const b = usage(pid);
    const cpuPercent = (100 * (b.cpuSeconds - a.cpuSeconds)) / ((Date.now() - t0) / 1000);
    report({ name: `sidecar RSS at 1s interval, ${SERIES} series (peak over 15s)`, value: peakRss / 1024 / 1024, unit: 'MB', target: '<= 60' });
    report({ name: `sidecar CPU at 1s interval, ${SERIES} series`, value: cpuPercent, unit: '% of one core', target: '<= 2' });

    // Freshness: change the value, poll the API until it serves it; 100 changes at random points of the interval.
    const url = `https://127.0.0.1:${agg.ports['api']}/apis/custom.metrics.k8s.io/v1beta2/namespaces/bench/pods/bench/cm_fresh`;
    const delays: number[] = [];
    for (let k = 1; k <= 100; k++) {
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
      const changed = performance.now();
      app.set(k);
      for (;;) {
        const r = await get(url);
        if (r.status === 200 && r.json.items[0].value === String(k)) break;
        if (performance.now() - changed > 10_000) throw new Error(`value ${k} not served within 10s`);
        await new Promise((res) => setTimeout(res, 5));
      }
      delays.push(performance.now() - changed);
    }
    report({ name: 'freshness (app change -> API), p50', value: percentile(delays, 50), unit: 'ms' });
    report({ name: 'freshness (app change -> API), p99', value: percentile(delays, 99), unit: 'ms', target: '<= 1250', baseline: { name: 'the 1s interval alone', value: 1000 } });
  } finally {
    await sidecar?.stop();
    await agg?.stop();
    app.server.close();
  }
}
