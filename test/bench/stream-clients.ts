// Ingest streams held open the way sidecars hold them, many per process (scale-client.ts), for benchmarks that need
// thousands of pods' streams without thousands of sidecar processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Kind } from '../../common/src/proto.js';

const CLIENT = fileURLToPath(new URL('./scale-client.js', import.meta.url));

/** The pods one client process stands in for, and what each sends: scale-client.ts's one argument (JSON). */
export interface StreamClientSpec {
  /** Ingest host:port (TLS, name checked as localhost). */
  target: string;
  caFile: string;
  /** Pods first .. first+count-1. */
  count: number;
  first: number;
  intervalMs: number;
  namespace: string;
  /** Pod p is named `${podPrefix}${p}`. */
  podPrefix: string;
  /** In label values, `{p}` stands for the pod's number and `{app}` for p / podsPerApp (rounded down). */
  podsPerApp: number;
  podLabels: Record<string, string>;
  /** Sent every intervalMs, each value the sample time in ms (so a reader knows its age). */
  series: { name: string; kind: Kind; windowMs: number; labels: Record<string, string> }[];
}

export interface StreamCounts {
  open: number;
  sent: number;
  acked: number;
  ended: number;
}

export interface StreamClients {
  children: ChildProcess[];
  /** One slot per process, updated from its stdout every second. */
  counts: StreamCounts[];
}

/** Starts ceil(streams / perProcess) client processes holding `streams` pods' streams from spec.first on. */
export function startStreamClients(spec: Omit<StreamClientSpec, 'count'>, streams: number, perProcess: number): StreamClients {
  const children: ChildProcess[] = [];
  const counts: StreamCounts[] = [];
  for (let first = spec.first; first < spec.first + streams; first += perProcess) {
    const count = Math.min(perProcess, spec.first + streams - first);
    const slot: StreamCounts = { open: 0, sent: 0, acked: 0, ended: 0 };
    counts.push(slot);
    const child = spawn(process.execPath, [CLIENT, JSON.stringify({ ...spec, first, count } satisfies StreamClientSpec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      if (lines.length > 0) Object.assign(slot, JSON.parse(lines[lines.length - 1]!) as StreamCounts);
    });
    children.push(child);
  }
  return { children, counts };
}

export async function stopStreamClients(c: StreamClients): Promise<void> {
  await Promise.all(c.children.map((ch) => new Promise((r) => (ch.exitCode !== null ? r(undefined) : (ch.once('exit', r), ch.kill('SIGTERM'))))));
}

export function totalCounts(counts: StreamCounts[]): StreamCounts {
  return counts.reduce((a, c) => ({ open: a.open + c.open, sent: a.sent + c.sent, acked: a.acked + c.acked, ended: a.ended + c.ended }), { open: 0, sent: 0, acked: 0, ended: 0 });
}
