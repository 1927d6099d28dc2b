// Prometheus as the cluster bench's reference: Debian's package (2.42), run as a plain process with its own
// storage in a temporary directory and its web port on loopback, scraping the fake pods through file_sd.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { eventually } from '../helpers/processes.js';
import { get } from '../helpers/http.js';

export const PROMETHEUS_INSTALL = 'apt-get update && apt-get install -y prometheus';

export interface PrometheusProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  url: string;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** Prometheus's version line; throws, naming the install command, when the binary is missing. */
export function prometheusVersion(): string {
  const r = spawnSync('prometheus', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`the cluster bench needs Prometheus (Debian's package, 2.42) on the PATH: ${PROMETHEUS_INSTALL}`);
  return `${r.stdout}${r.stderr}`.split('\n')[0]!.trim();
}

/**
 * Starts Prometheus in `dir` scraping every target of `targets` (host:port with its labels) every intervalMs, and
 * resolves once `count(up == 1)` equals the number of targets (within 90 s).
 */
export async function startPrometheus(dir: string, targets: { target: string; labels: Record<string, string> }[], intervalMs: number): Promise<PrometheusProcess> {
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(join(dir, 'targets.json'), JSON.stringify(targets.map((t) => ({ targets: [t.target], labels: t.labels }))));
  // NOTE: the scrape timeout may not exceed the interval (its default, 10 s, does).
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: ${intervalMs}ms\n  scrape_timeout: ${intervalMs}ms\nscrape_configs:\n  - job_name: pods\n    file_sd_configs:\n      - files: [${JSON.stringify(join(dir, 'targets.json'))}]\n`,
  );
  const port = await freePort();
  const child = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (d: string) => log.splice(0, Math.max(0, log.length - 20), ...d.split('\n').filter(Boolean)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const prom: PrometheusProcess = {
    child,
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(kill);
    },
  };
  // An exit ends the wait at once, with Prometheus's last log lines.
  const outcome = await eventually(async () => {
    if (child.exitCode !== null) return new Error(`prometheus exited with ${child.exitCode}:\n${log.join('\n')}`);
    const r = await get(`${prom.url}/api/v1/query?query=${encodeURIComponent('count(up == 1)')}`);
    return Number(r.json?.data?.result?.[0]?.value?.[1] ?? 0) === targets.length ? true : undefined;
  }, 90_000, 1000).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  if (outcome instanceof Error) {
    await prom.stop();
    throw outcome;
  }
  return prom;
}

/** The query prometheus-adapter sends for a Pods metric of an HPA over `pods` (its default rule's shape). */
export function adapterPodsQuery(metric: string, namespace: string, pods: readonly string[]): string {
  return `sum(${metric}{namespace="${namespace}",pod=~"${pods.join('|')}"}) by (pod)`;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
