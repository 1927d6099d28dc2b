import { createServer, type Server } from 'node:http';
import { Agent, request } from 'node:https';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { INJECTION_DEFAULTS } from '../../aggregator/src/webhook/inject.js';
import { startRelay, eventually, ROOT, type RelayProcess } from '../helpers/processes.js';
import { imageNodeFlags, shippedSidecar } from './image.js';
import { CLOCK_TICKS, cpuTicks, measureFootprints, memoryMib, type Footprint } from './proc.js';
import { percentile, report } from './report.js';

// Sidecar benchmarks: its footprint at a 1s interval on a 1,000-series /metrics, and freshness (a value changed in
// the app until the aggregator API serves it) over 100 changes. One aggregator, one sidecar; under 2 minutes.
// Then its peak memory on three hostile pages (runPages; alone: node dist/test/bench/run.js sidecar:pages).

const SERIES = 1000;
const INTERVAL_MS = 1000;
const CHANGES = 100;
const FOOTPRINT_MS = 15_000;

export async function run(): Promise<void> {
  await runFootprint();
  await runPages();
}

async function runFootprint(): Promise<void> {
  const target = await startTarget();
  let agg: RelayProcess | undefined;
  let sidecar: RelayProcess | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  try {
    ({ agg, sidecar } = await startPair(target.port));
    const url = `https://127.0.0.1:${agg.ports['api']}/apis/custom.metrics.k8s.io/v1beta2/namespaces/bench/pods/bench-0/cm_bench_value?metricLabelSelector=series%3D0`;
    await eventually(async () => ((await servedValue(agent, url)) === '0' ? true : undefined), 15_000);
    // Start-up (module loading, the first definitions) settles before the steady state is measured.
    await sleep(3000);

    // NOTE: the footprint is measured during the first 15s of the freshness run: the sidecar's work is the same
    // (one scrape a second), the API polling loads only the aggregator, and the bench stays under 2 minutes.
    const footprint = measureFootprints([sidecar.child.pid!], FOOTPRINT_MS);
    const latencies: number[] = [];
    let missed = 0;
    for (let i = 1; i <= CHANGES; i++) {
      // A random phase against the scrape grid, so the changes cover every point of the interval.
      await sleep(Math.random() * INTERVAL_MS);
      target.set(i);
      const t0 = performance.now();
      if (await pollUntil(async () => (await servedValue(agent, url)) === String(i), 5000)) latencies.push(performance.now() - t0);
      else missed++;
    }
    const [fp] = (await footprint) as [Footprint];
    const floor = await floorRssMb(`http://127.0.0.1:${target.port}/metrics`, `127.0.0.1:${agg.ports['ingest']}`);

    const flags = shippedSidecar().slice(0, -1).join(' ');
    report({ name: `sidecar RSS (image bundle, node ${flags}) at ${INTERVAL_MS}ms on ${SERIES} series (peak over ${FOOTPRINT_MS / 1000}s)`, value: fp.peakRssMib, unit: 'MB', target: '<= 60', baseline: { name: 'an idle node process', value: await idleNodeRssMb() } });
    report({ name: `floor: node ${flags} scraping the same page every second and holding one grpc-js stream, no sidecar logic`, value: floor, unit: 'MB' });
    report({ name: 'sidecar RSS, anonymous part (the rest is the node binary, shared between processes)', value: fp.peakAnonMib, unit: 'MB' });
    report({ name: `sidecar CPU at ${INTERVAL_MS}ms on ${SERIES} series`, value: fp.cpuShare * 100, unit: '% of one core', target: '<= 2' });
    report({ name: `freshness (app change -> API), p50 of ${latencies.length}`, value: percentile(latencies, 50), unit: 'ms' });
    report({ name: `freshness (app change -> API), p99 of ${latencies.length}`, value: percentile(latencies, 99), unit: 'ms', target: `<= ${INTERVAL_MS + 250}`, baseline: { name: 'the interval alone', value: INTERVAL_MS } });
    if (missed > 0) report({ name: 'changes not served within 5s', value: missed, unit: 'changes', target: '<= 0' });
  } finally {
    agent.destroy();
    await sidecar?.stop();
    await agg?.stop();
    await new Promise((r) => target.server.close(r));
  }
}

/** A /metrics page and how it is served; `check` names the series whose served value proves the page was relayed. */
interface Page {
  name: string;
  /** The body, written in 64 KiB chunks without a content-length (chunked), `repeat` times. */
  body: string;
  repeat: number;
  check?: { metric: string; selector: string; value: string };
}

const PAGE_SECONDS = 12;

/** The three pages of issue 12: a 50 MB chunked page, 200,000 selected series in 5 MB, a 5 MB label value. */
function hostilePages(): Page[] {
  const filler = `# TYPE cm_filler gauge\n${Array.from({ length: 1000 }, (_, i) => `cm_filler{i="${i}",pad="${'x'.repeat(20)}"} ${i}`).join('\n')}\n`;
  const many = Array.from({ length: 200_000 }, (_, i) => `cm_many{s="${i}"} ${i}\n`).join('');
  return [
    { name: '50 MB chunked page', body: filler, repeat: Math.ceil(50e6 / filler.length) },
    { name: '5 MB page of 200,000 selected series', body: `# TYPE cm_many gauge\n${many}# TYPE cm_value gauge\ncm_value 7\n`, repeat: 1, check: { metric: 'cm_many', selector: 's=0', value: '0' } },
    { name: '5 MB label value', body: `# TYPE cm_big gauge\ncm_big{v="${'y'.repeat(5 * 1024 * 1024)}"} 1\n# TYPE cm_value gauge\ncm_value 7\n`, repeat: 1, check: { metric: 'cm_value', selector: '', value: '7' } },
  ];
}

/**
 * Peak RSS, anonymous memory, V8 heap and external memory of the shipped sidecar (image flags, 1s interval) on each
 * hostile page over PAGE_SECONDS, target < 64 MiB (the injected memory limit); and whether the page's check series
 * is served with its value.
 */
export async function runPages(): Promise<void> {
  const flags = shippedSidecar().slice(0, -1).join(' ');
  for (const page of hostilePages()) {
    const target = await servePage(page);
    let agg: RelayProcess | undefined;
    let sidecar: RelayProcess | undefined;
    let cgroup: ReturnType<typeof memoryCgroup>;
    const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    try {
      cgroup = memoryCgroup(String(target.port), INJECTED_LIMIT_BYTES);
      ({ agg, sidecar } = await startPair(target.port, cgroup?.dir));
      const peak = await measurePeaks(sidecar.child.pid!, `http://127.0.0.1:${sidecar.ports['metrics']}/metrics`, PAGE_SECONDS * 1000);
      let served = 'not checked';
      if (page.check) {
        const { metric, selector, value } = page.check;
        const url = `https://127.0.0.1:${agg.ports['api']}/apis/custom.metrics.k8s.io/v1beta2/namespaces/bench/pods/bench-0/${metric}${selector ? `?metricLabelSelector=${encodeURIComponent(selector)}` : ''}`;
        const got = await servedValue(agent, url);
        served = got === value ? `${metric} served correctly (${got})` : `${metric} NOT served correctly (got ${got ?? 'no value'}, want ${value})`;
      }
      const name = `sidecar on a ${page.name} (node ${flags}, ${PAGE_SECONDS}s)`;
      report({ name: `${name}: peak RSS`, value: peak.rssMib, unit: 'MiB' });
      if (cgroup) {
        const c = cgroup.read();
        report({ name: `${name}: under a ${INJECTED_LIMIT_BYTES / 1048576} MiB cgroup limit, OOM kills`, value: c.oomKills, unit: '', target: '<= 0' });
        report({ name: `${name}: cgroup peak usage (anon + page cache, reclaimable file pages included)`, value: c.maxUsageMib, unit: 'MiB' });
        report({ name: `${name}: cgroup major faults (file pages read back after reclaim)`, value: c.majorFaults, unit: '' });
      } else console.log('  (no writable cgroup v1 memory controller here: no limit applied)');
      report({ name: `${name}: peak anonymous RSS`, value: peak.anonMib, unit: 'MiB' });
      report({ name: `${name}: peak V8 heap used (sampled)`, value: peak.heapMib, unit: 'MiB' });
      report({ name: `${name}: peak external memory (sampled)`, value: peak.externalMib, unit: 'MiB' });
      console.log(`  ${served}; sidecar log lines: ${sidecar.lines.filter((l) => !l.includes('"msg":"ports"')).length}`);
      for (const l of sidecar.lines.filter((l) => l.includes('"level":40') || l.includes('"level":50')).slice(0, 4)) console.log(`  ${l.slice(0, 300)}`);
    } finally {
      agent.destroy();
      await sidecar?.stop();
      cgroup?.remove();
      await agg?.stop();
      target.server.closeAllConnections();
      await new Promise((r) => target.server.close(r));
    }
  }
}

/** The memory limit the webhook injects (INJECTION_DEFAULTS), in bytes. */
const INJECTED_LIMIT_BYTES = quantityBytes(INJECTION_DEFAULTS.resources.limits.memory!);

function quantityBytes(q: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(q);
  if (!m) throw new Error(`unexpected memory quantity ${q}`);
  return Number(m[1]) * (m[2] === 'Mi' ? 1048576 : 1073741824);
}

/**
 * A new cgroup (v1 memory controller, as this machine has) limited to `bytes`, as the kubelet limits a container;
 * undefined where no such controller is writable (not root, cgroup v2 only).
 */
function memoryCgroup(name: string, bytes: number): { dir: string; read(): { oomKills: number; maxUsageMib: number; majorFaults: number; anonMib: number; fileMib: number }; remove(): void } | undefined {
  const dir = `/sys/fs/cgroup/memory/metrics-relay-bench-${process.pid}-${name}`;
  try {
    mkdirSync(dir);
    writeFileSync(`${dir}/memory.limit_in_bytes`, String(bytes));
    // NOTE: page cache is charged to the cgroup that reads a file first. Dropped, node's own file pages (about
    // 40 MiB) are read again by the sidecar and charged to its cgroup, as in a container started on a fresh node.
    writeFileSync('/proc/sys/vm/drop_caches', '1');
  } catch {
    return undefined;
  }
  const field = (file: string, key: string): number => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(readFileSync(`${dir}/${file}`, 'utf8'))?.[1] ?? NaN);
  return {
    dir,
    read: () => ({
      oomKills: field('memory.oom_control', 'oom_kill'),
      maxUsageMib: Number(readFileSync(`${dir}/memory.max_usage_in_bytes`, 'utf8')) / 1048576,
      majorFaults: field('memory.stat', 'total_pgmajfault'),
      anonMib: field('memory.stat', 'total_rss') / 1048576,
      fileMib: field('memory.stat', 'total_cache') / 1048576,
    }),
    remove: () => {
      try {
        rmdirSync(dir);
      } catch {
        // still holds the process (it is stopped next); the directory goes with the next boot
      }
    },
  };
}

/**
 * A page as exporters write them: counter and gauge families with several labels each, and a few cm_* families
 * (about 1% of the bytes) that the sidecar selects; `bytes` long, give or take one family.
 */
function realisticPage(bytes: number): string {
  const parts: string[] = ['# HELP cm_requests_in_flight Requests being served.\n# TYPE cm_requests_in_flight gauge\n'];
  for (let i = 0; i < 10; i++) parts.push(`cm_requests_in_flight{handler="/api/v1/items/${i}",method="GET"} ${i}\n`);
  let size = parts.join('').length;
  for (let f = 0; size < bytes; f++) {
    const head = `# HELP node_family_${f}_seconds_total A family of the node.\n# TYPE node_family_${f}_seconds_total counter\n`;
    parts.push(head);
    size += head.length;
    for (let k = 0; k < 40 && size < bytes; k++) {
      const line = `node_family_${f}_seconds_total{cpu="${k % 8}",mode="${['user', 'system', 'idle', 'iowait'][k % 4]}",device="sd${k}",instance="10.0.3.7:9100"} ${(f * 1000 + k * 1.5).toFixed(2)}\n`;
      parts.push(line);
      size += line.length;
    }
  }
  return parts.join('');
}

/** One price run: the shipped sidecar (or `entry`) in a cgroup of limitMib on a realistic page of `bytes`. */
async function priceRun(bytes: number, intervalMs: number, limitMib: number, seconds: number, entry = shippedSidecar()): Promise<string> {
  const page: Page = { name: `${bytes}`, body: realisticPage(bytes), repeat: 1 };
  const target = await servePage(page);
  const cgroup = memoryCgroup(`price-${target.port}`, limitMib * 1048576);
  if (!cgroup) throw new Error('the price bench needs a writable cgroup v1 memory controller (root)');
  let agg: RelayProcess | undefined;
  let sidecar: RelayProcess | undefined;
  try {
    ({ agg, sidecar } = await startPair(target.port, cgroup.dir, intervalMs, entry));
    const pid = sidecar.child.pid!;
    const metricsUrl = `http://127.0.0.1:${sidecar.ports['metrics']}/metrics`;
    await sleep(Math.min(5000, seconds * 250));
    if (sidecar.child.exitCode !== null || sidecar.child.signalCode !== null) return `${(bytes / 1e6).toFixed(2)} MB page, ${intervalMs / 1000}s, limit ${limitMib} MiB: KILLED while starting, OOM kills ${cgroup.read().oomKills}`;
    const startCpu = cpuTicks(pid);
    const startScrapes = await scrapeCount(metricsUrl);
    const startFaults = cgroup.read().majorFaults;
    const t0 = Date.now();
    let anonPeak = 0;
    let filePeak = 0;
    while (Date.now() - t0 < seconds * 1000 && sidecar.child.exitCode === null && sidecar.child.signalCode === null) {
      const c = cgroup.read();
      anonPeak = Math.max(anonPeak, c.anonMib);
      filePeak = Math.max(filePeak, c.fileMib);
      await sleep(200);
    }
    const c = cgroup.read();
    const died = sidecar.child.exitCode !== null || sidecar.child.signalCode !== null;
    const scrapes = died ? 0 : (await scrapeCount(metricsUrl)) - startScrapes;
    const ticks = died ? NaN : cpuTicks(pid) - startCpu;
    const cpuMsPerScrape = scrapes > 0 ? (ticks * 1000) / CLOCK_TICKS / scrapes : NaN;
    const cpuShare = (ticks / CLOCK_TICKS / ((Date.now() - t0) / 1000)) * 100;
    return `${(bytes / 1e6).toFixed(2)} MB page, ${intervalMs / 1000}s, limit ${limitMib} MiB: ${died ? `KILLED (${sidecar.child.signalCode ?? sidecar.child.exitCode}), ` : ''}OOM kills ${c.oomKills}, peak usage ${c.maxUsageMib.toFixed(1)} MiB, anon peak ${anonPeak.toFixed(1)} MiB, file pages peak ${filePeak.toFixed(1)} MiB, major faults in ${seconds}s ${c.majorFaults - startFaults}, CPU ${cpuMsPerScrape.toFixed(1)} ms per scrape (${cpuShare.toFixed(2)}% of a core)`;
  } finally {
    await sidecar?.stop();
    await agg?.stop();
    cgroup.remove();
    target.server.closeAllConnections();
    await new Promise((r) => target.server.close(r));
  }
}

/**
 * The sidecar's price in the units the kubelet and the OOM killer count: the shipped sidecar started inside a cgroup
 * limited like its container (48 MiB here, the target), scraping realistic pages of 50 KB, 1 MB and 3.5 MB at 1 s
 * and 5 s: peak usage (anonymous + page cache), anonymous memory, file pages, major faults, OOM kills, and CPU per
 * scrape. Then the limit is lowered on the 1 MB page until the sidecar breaks. PRICE_SECONDS (default 30) per run.
 */
export async function runPrice(): Promise<void> {
  const seconds = Number(process.env['PRICE_SECONDS'] ?? 30);
  const flags = imageNodeFlags('Dockerfile.sidecar').join(' ');
  console.log(`shipped sidecar (node ${flags}), ${seconds}s per run, in a cgroup as its container (v1 memory controller):`);
  for (const bytes of [50e3, 1e6, 3.5e6]) for (const interval of [1000, 5000]) console.log(`  ${await priceRun(bytes, interval, 48, seconds)}`);
  // --lite-mode (V8's interpreter only) is the image's choice of memory over CPU: the same runs without it.
  const jit = shippedSidecar().filter((f) => f !== '--lite-mode');
  console.log(`the same without --lite-mode (node ${jit.slice(0, -1).join(' ')}):`);
  for (const bytes of [1e6, 3.5e6]) console.log(`  ${await priceRun(bytes, 5000, 48, seconds, jit)}`);
  console.log('the 1 MB page at 1s, lowering the limit until it breaks:');
  for (const limit of [40, 36, 32]) console.log(`  ${await priceRun(1e6, 1000, limit, seconds)}`);
}

/** The 1 MB page at 1 s under a 48 MiB limit for SOAK_SECONDS (default 600): no OOM kill, no steady major faults. */
export async function runSoak(): Promise<void> {
  const seconds = Number(process.env['SOAK_SECONDS'] ?? 600);
  console.log(`  ${await priceRun(1e6, 1000, 48, seconds)}`);
}

async function scrapeCount(metricsUrl: string): Promise<number> {
  const text = await fetch(metricsUrl).then((r) => r.text(), () => '');
  return Number(/^metrics_relay_sidecar_scrape_duration_seconds_count (\d+)/m.exec(text)?.[1] ?? NaN);
}

/** Serves page.body repeat times per request, in 64 KiB writes that wait for drain (no content-length: chunked). */
async function servePage(page: Page): Promise<{ server: Server; port: number }> {
  const body = Buffer.from(page.body);
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    let n = 0;
    let off = 0;
    const write = (): void => {
      while (n < page.repeat && !res.destroyed) {
        const end = Math.min(off + 65536, body.length);
        const more = res.write(body.subarray(off, end));
        off = end === body.length ? 0 : end;
        if (off === 0) n++;
        if (!more) return void res.once('drain', write);
      }
      if (!res.destroyed) res.end();
    };
    res.on('error', () => undefined);
    write();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * Peaks over durationMs: RSS and anonymous RSS from /proc every 50ms (peaks last a few ms of a scrape), V8 heap and
 * external memory from the sidecar's own /metrics every 250ms.
 */
async function measurePeaks(pid: number, metricsUrl: string, durationMs: number): Promise<{ rssMib: number; anonMib: number; heapMib: number; externalMib: number }> {
  const peak = { rssMib: 0, anonMib: 0, heapMib: 0, externalMib: 0 };
  const t0 = performance.now();
  let lastSelf = 0;
  while (performance.now() - t0 < durationMs) {
    const m = memoryMib(pid);
    peak.rssMib = Math.max(peak.rssMib, m.rssMib);
    peak.anonMib = Math.max(peak.anonMib, m.anonMib);
    if (performance.now() - lastSelf >= 250) {
      lastSelf = performance.now();
      const text = await fetch(metricsUrl).then((r) => r.text(), () => '');
      const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0) / 1048576;
      peak.heapMib = Math.max(peak.heapMib, gauge('metrics_relay_sidecar_nodejs_heap_size_used_bytes'));
      peak.externalMib = Math.max(peak.externalMib, gauge('metrics_relay_sidecar_nodejs_external_memory_bytes'));
    }
    await sleep(50);
  }
  return peak;
}

/** A standalone aggregator and the shipped sidecar (pod bench/bench-0) scraping 127.0.0.1:targetPort every INTERVAL_MS. */
async function startPair(targetPort: number, cgroup?: string, intervalMs = INTERVAL_MS, entry = shippedSidecar()): Promise<{ agg: RelayProcess; sidecar: RelayProcess }> {
  const agg = await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--log-level', 'warn']);
  try {
    const sidecar = await startRelay([
      'sidecar', '--target', `http://127.0.0.1:${targetPort}/metrics`, '--aggregator', `127.0.0.1:${agg.ports['ingest']}`, '--insecure',
      '--interval', `${intervalMs}ms`, '--pod-name', 'bench-0', '--pod-namespace', 'bench', '--metrics-port', '0', '--bind-address', '127.0.0.1', '--log-level', 'warn',
    ], { entry, ...(cgroup ? { cgroup } : {}) });
    return { agg, sidecar };
  } catch (err) {
    await agg.stop();
    throw err;
  }
}

/** A /metrics of SERIES gauges cm_bench_value{series,path}; series 0 carries the value the bench changes. */
async function startTarget(): Promise<{ server: Server; port: number; set(v: number): void }> {
  let value = 0;
  const rest = Array.from({ length: SERIES - 1 }, (_, i) => `cm_bench_value{series="${i + 1}",path="/api/v1/items/${i + 1}"} ${i * 1.5}\n`).join('');
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(`# HELP cm_bench_value A benchmark gauge.\n# TYPE cm_bench_value gauge\ncm_bench_value{series="0",path="/api/v1/items/0"} ${value}\n${rest}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, set: (v) => (value = v) };
}

/** RSS of a node process that does nothing: the floor of any Node sidecar. */
async function idleNodeRssMb(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
  try {
    await sleep(1000);
    return memoryMib(child.pid!).rssMib;
  } finally {
    child.kill();
  }
}

/**
 * Peak RSS over 10s of the least a Node sidecar on grpc-js does, with the image's node flags: GET the page every
 * second, hold one bidi stream to the aggregator. What the sidecar's own logic costs is the difference.
 */
async function floorRssMb(target: string, ingest: string): Promise<number> {
  const script = `
    import http from 'node:http';
    import * as grpc from '@grpc/grpc-js';
    const client = new grpc.Client(${JSON.stringify(ingest)}, grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest('/metricsrelay.v1.Ingest/Report', (b) => b, (b) => b);
    call.on('error', () => {});
    call.on('data', () => {});
    setInterval(() => http.get(${JSON.stringify(target)}, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => (globalThis.body = Buffer.concat(chunks).toString()));
    }), 1000);`;
  const child = spawn(process.execPath, [...shippedSidecar().slice(0, -1), '--input-type=module', '-e', script], { cwd: ROOT, stdio: 'ignore' });
  try {
    await sleep(3000);
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      peak = Math.max(peak, memoryMib(child.pid!).rssMib);
      await sleep(500);
    }
    return peak;
  } finally {
    child.kill();
  }
}

/**
 * The value the API serves (a Quantity string), or undefined when it answers anything but 200 or the request fails
 * (a kept-alive connection the server closed at that moment: the next poll retries).
 */
function servedValue(agent: Agent, url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? (JSON.parse(body) as { items: { value: string }[] }).items[0]?.value : undefined));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

async function pollUntil(cond: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await cond()) return true;
    await sleep(5);
  }
  return false;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
