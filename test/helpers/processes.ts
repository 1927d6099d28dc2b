import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root, whether this file runs from source (vitest) or from dist/ (benchmarks). */
export const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/test/') ? '../../../' : '../../', import.meta.url));
/** The built CLI (tests run against dist/, built by `npm test` before vitest). */
export const CLI = `${ROOT}dist/cmd/metrics-relay.js`;
/** Node 24 from node_modules (the machine's node may be older). */
export const NODE = process.execPath;

export interface RelayProcess {
  child: ChildProcess;
  /** Ports printed by the process ({"msg":"ports",...} line). */
  ports: Record<string, number>;
  /** Every stdout/stderr line so far. */
  lines: string[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after 5s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `metrics-relay <args>` and waits for its ports line. Rejects with the output when it exits first or
 * does not print ports within timeoutMs. `entry` replaces the CLI: node flags and a script (e.g. the sidecar bundle).
 * `cgroup` starts the process in that cgroup directory.
 */
export function startRelay(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; entry?: string[]; cgroup?: string } = {}): Promise<RelayProcess> {
  const argv = [...(opts.entry ?? [CLI]), ...args];
  // cgroup: a cgroup directory the process starts in (it moves itself there, then becomes node), so it is charged
  // for all it uses, as a container is.
  const child = opts.cgroup
    ? spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', opts.cgroup, NODE, ...argv], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(NODE, argv, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`metrics-relay ${args.join(' ')} printed no ports within ${opts.timeoutMs ?? 15000}ms:\n${lines.join('\n')}`));
    }, opts.timeoutMs ?? 15_000);
    const onLine = (line: string): void => {
      lines.push(line);
      if (!line.includes('"msg":"ports"')) return;
      const parsed = JSON.parse(line) as Record<string, unknown>;
      const ports: Record<string, number> = {};
      for (const [k, v] of Object.entries(parsed)) if (typeof v === 'number') ports[k] = v;
      clearTimeout(timer);
      resolve({
        child,
        ports,
        lines,
        exited,
        stop: () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
            void exited.then(() => clearTimeout(kill));
          }
          return exited;
        },
      });
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let buf = '';
      stream.on('data', (chunk: Buffer) => {
        buf += chunk.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`metrics-relay ${args.join(' ')} exited with ${code} before printing ports:\n${lines.join('\n')}`));
    });
  });
}

/** Polls fn until it returns a non-undefined value or timeoutMs passes (then throws with the last error). */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
