import { readFileSync } from 'node:fs';
import { ConfigError } from '../../common/src/errors.js';
import { parseFlags, type FlagSpec } from '../../common/src/flags.js';

export const SIDECAR_FLAGS: readonly FlagSpec[] = [
  { name: 'target', kind: 'string', default: 'http://127.0.0.1:8080/metrics', help: "URL of the app's Prometheus metrics" },
  { name: 'aggregator', kind: 'string', help: 'aggregator replicas: host:port, a comma list, or a headless Service DNS name with :port (re-resolved every 10s)' },
  { name: 'interval', kind: 'duration', default: '5s', help: 'scrape interval' },
  { name: 'timeout', kind: 'duration', help: 'scrape timeout (default: 80% of the interval)' },
  { name: 'metrics', kind: 'string', default: 'cm_*', help: 'comma list of metric family names or globs to keep' },
  { name: 'max-series', kind: 'int', default: 1000, help: 'series sent per scrape; the excess is dropped, counted and logged' },
  { name: 'max-body-bytes', kind: 'int', default: 10 * 1024 * 1024, help: 'largest /metrics body read; a larger one fails the scrape' },
  { name: 'rate-window', kind: 'duration', default: '60s', help: 'window of the per-second rates computed from counters' },
  { name: 'breaker-failures', kind: 'int', default: 3, help: 'consecutive failed scrapes that open the scrape breaker (values then stale at once)' },
  { name: 'pod-name', kind: 'string', help: 'this pod (downward API metadata.name)' },
  { name: 'pod-namespace', kind: 'string', help: 'its namespace (downward API metadata.namespace)' },
  { name: 'pod-uid', kind: 'string', help: 'its uid (downward API metadata.uid)' },
  { name: 'pod-labels', kind: 'string', help: 'its labels as k=v,k=v' },
  { name: 'pod-labels-file', kind: 'string', help: 'its labels as a downwardAPI volume file (key="value" lines), re-read every interval' },
  { name: 'token-file', kind: 'string', help: 'projected ServiceAccount token (audience metrics-relay) sent to the aggregators, re-read on each connect' },
  { name: 'ca-file', kind: 'string', help: "CA bundle that signed the aggregators' certificate" },
  { name: 'ca-pem', kind: 'string', help: 'the same CA as PEM text (set by the injection webhook as RELAY_CA_PEM)' },
  { name: 'insecure', kind: 'bool', default: false, help: 'plaintext gRPC (only with a --standalone aggregator)' },
  { name: 'metrics-port', kind: 'port', default: 9091, help: 'port of the sidecar’s own /metrics, /healthz and /readyz (0: any free port)' },
  { name: 'log-level', kind: 'string', default: 'info', help: 'pino log level' },
];

export interface SidecarConfig {
  target: URL;
  aggregator: string;
  intervalMs: number;
  timeoutMs: number;
  metrics: string[];
  maxSeries: number;
  maxBodyBytes: number;
  rateWindowMs: number;
  breakerFailures: number;
  pod: { name: string; namespace: string; uid: string };
  podLabels: Record<string, string>;
  podLabelsFile: string | undefined;
  tokenFile: string | undefined;
  caPem: string | undefined;
  insecure: boolean;
  metricsPort: number;
  logLevel: string;
}

/** Flags + RELAY_* env -> frozen config; throws ConfigError naming the flag. */
export function loadSidecarConfig(argv: string[], env: NodeJS.ProcessEnv): SidecarConfig {
  const f = parseFlags(SIDECAR_FLAGS, argv, env);
  const ms = (v: unknown, d: number) => (typeof v === 'number' ? v : d);
  const intervalMs = ms(f['interval'], 5000);
  let target: URL;
  try {
    target = new URL(f['target'] as string);
  } catch {
    throw new ConfigError(`--target: "${f['target']}" is not a URL`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new ConfigError(`--target: "${target}" must be http or https`);
  if (!f['aggregator']) throw new ConfigError('--aggregator is required (host:port, a comma list, or a headless Service name with :port)');
  for (const name of ['pod-name', 'pod-namespace']) if (!f[name]) throw new ConfigError(`--${name} is required (set it from the downward API)`);
  if (intervalMs < 100) throw new ConfigError('--interval must be at least 100ms');
  const timeoutMs = ms(f['timeout'], Math.floor(intervalMs * 0.8));
  if (timeoutMs >= intervalMs) throw new ConfigError(`--timeout (${timeoutMs}ms) must be below --interval (${intervalMs}ms)`);
  const caFile = f['ca-file'] as string | undefined;
  let caPem = f['ca-pem'] as string | undefined;
  if (caFile) {
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`--ca-file: cannot read ${caFile}: ${(err as Error).message}`);
    }
  }
  if (f['insecure'] && (caPem || f['token-file'])) throw new ConfigError('--insecure cannot be combined with --ca-file/--ca-pem/--token-file');
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(f['log-level'] as string)) throw new ConfigError(`--log-level: "${f['log-level']}" is not a pino level`);
  return Object.freeze({
    target,
    aggregator: f['aggregator'] as string,
    intervalMs,
    timeoutMs,
    metrics: (f['metrics'] as string).split(',').map((m) => m.trim()).filter((m) => m !== ''),
    maxSeries: f['max-series'] as number,
    maxBodyBytes: f['max-body-bytes'] as number,
    rateWindowMs: ms(f['rate-window'], 60_000),
    breakerFailures: Math.max(1, f['breaker-failures'] as number),
    pod: { name: f['pod-name'] as string, namespace: f['pod-namespace'] as string, uid: (f['pod-uid'] as string | undefined) ?? '' },
    podLabels: parseLabelList(f['pod-labels'] as string | undefined),
    podLabelsFile: f['pod-labels-file'] as string | undefined,
    tokenFile: f['token-file'] as string | undefined,
    caPem,
    insecure: f['insecure'] as boolean,
    metricsPort: f['metrics-port'] as number,
    logLevel: f['log-level'] as string,
  });
}

function parseLabelList(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--pod-labels: "${part}" is not k=v`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}
