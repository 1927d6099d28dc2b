// Aggregator startup: time from exec to listening (the "ports" line it prints once all three ports are bound),
// against a bare node process printing one line, measured in the same run. The demo and the tests wait on it.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { percentile, report } from './report.js';

const CLI = fileURLToPath(new URL('../../cmd/metrics-relay.js', import.meta.url));
const RUNS = 7;

/** Milliseconds from spawn until the child prints a line containing `marker`; then the child is stopped. */
function timeToLine(args: string[], marker: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!out.includes(marker)) return;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      child.once('exit', () => resolve(ms));
      child.kill('SIGTERM');
    });
    child.once('exit', (code) => !out.includes(marker) && reject(new Error(`${args.join(' ')} exited ${code} before printing ${marker}`)));
  });
}

export async function run(): Promise<void> {
  const bare: number[] = [];
  const aggregator: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    bare.push(await timeToLine(['-e', 'console.log("ready"); setInterval(() => {}, 1000)'], 'ready'));
    aggregator.push(await timeToLine([CLI, 'aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--log-level', 'warn'], '"msg":"ports"'));
  }
  const baseline = { name: 'bare node printing a line', value: percentile(bare, 50) };
  report({ name: `aggregator --standalone, exec to listening (median of ${RUNS})`, value: percentile(aggregator, 50), unit: 'ms', target: '<= 1000', baseline });
  report({ name: `aggregator --standalone, exec to listening (slowest of ${RUNS})`, value: Math.max(...aggregator), unit: 'ms' });
}
