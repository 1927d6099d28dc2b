import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { ConfigError } from '../../common/src/errors.js';
import { parseFlags, type FlagSpec } from '../../common/src/flags.js';
import { isValidPattern } from './select.js';
import type { AggregatorSpec } from './replicas.js';

export const SIDECAR_FLAGS: readonly FlagSpec[] = [
  { name: 'target', kind: 'string', default: 'http://127.0.0.1:8080/metrics', help: "URL of the app's Prometheus metrics" },
  { name: 'aggregator', kind: 'string', help: 'aggregator replicas: host:port, a comma list, or a headless Service DNS name with :port (resolved every 10s)' },
  { name: 'interval', kind: 'duration', default: '5s', help: 'scrape interval' },
  { name: 'timeout', kind: 'duration', help: 'scrape timeout, below the interval (default: 80% of the interval)' },
  { name: 'metrics', kind: 'string', default: 'cm_*', help: 'comma list of metric family names or globs (* and ?) to send' },
  { name: 'max-series', kind: 'int', default: 1000, help: 'series sent per scrape, rates included; the excess is counted and logged (at most 20000)' },
  { name: 'max-body-bytes', kind: 'int', default: 10 * 1024 * 1024, help: 'largest /metrics body read; a larger one fails the scrape' },
  { name: 'rate-window', kind: 'duration', default: '60s', help: 'window of the per-second rates computed from counters (at least the interval)' },
  { name: 'breaker-failures', kind: 'int', default: 3, help: 'consecutive failed scrapes that open the scrape breaker (the pod is then stale at once)' },
  { name: 'breaker-reset', kind: 'duration', help: 'time the breaker stays open before one scrape is tried again (default: 3 intervals)' },
  { name: 'pod-name', kind: 'string', help: 'this pod (downward API metadata.name)' },
  { name: 'pod-namespace', kind: 'string', help: 'its namespace (downward API metadata.namespace)' },
  { name: 'pod-uid', kind: 'string', help: 'its uid (downward API metadata.uid)' },
  { name: 'pod-labels', kind: 'string', help: 'its labels as k=v,k=v' },
  { name: 'pod-labels-file', kind: 'string', help: 'its labels as a downwardAPI volume file (key="value" lines), re-read every interval' },
  { name: 'token-file', kind: 'string', help: 'projected ServiceAccount token (audience metrics-relay) sent to the aggregators, re-read on each connect' },
  { name: 'ca-file', kind: 'string', help: "CA bundle that signed the aggregators' certificate (default: the system trust store)" },
  { name: 'ca-pem', kind: 'string', help: 'the same CA as PEM text (set by the injection webhook as RELAY_CA_PEM)' },
  { name: 'insecure', kind: 'bool', default: false, help: 'plaintext gRPC (only with a --standalone aggregator)' },
  { name: 'metrics-port', kind: 'port', default: 9091, help: "port of the sidecar's own /metrics, /healthz and /readyz (0: any free port)" },
  { name: 'bind-address', kind: 'string', default: '0.0.0.0', help: 'address the metrics port listens on' },
  { name: 'log-level', kind: 'string', default: 'info', help: 'pino log level' },
];

/** The sidecar's configuration, validated and frozen. Durations in ms. */
export interface SidecarConfig {
  target: URL;
  aggregator: AggregatorSpec;
  intervalMs: number;
  timeoutMs: number;
  metrics: readonly string[];
  maxSeries: number;
  maxBodyBytes: number;
  rateWindowMs: number;
  breakerFailures: number;
  breakerResetMs: number;
  pod: { name: string; namespace: string; uid: string };
  /** From --pod-labels; empty when --pod-labels-file is used. */
  podLabels: Readonly<Record<string, string>>;
  podLabelsFile: string | undefined;
  tokenFile: string | undefined;
  /** From --ca-file or --ca-pem; undefined: the default trust store. */
  caPem: string | undefined;
  /** --ca-file, read again on every connection (its CA bundle may rotate). */
  caFile: string | undefined;
  insecure: boolean;
  metricsPort: number;
  bindAddress: string;
  logLevel: string;
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const MAX_SERIES_LIMIT = 20_000;

/**
 * Flags, then RELAY_* env, then defaults → a frozen config. Throws ConfigError listing every problem found, each
 * naming its flag.
 */
export function loadSidecarConfig(argv: string[], env: NodeJS.ProcessEnv): SidecarConfig {
  const f = parseFlags(SIDECAR_FLAGS, argv, env);
  const str = (name: string) => f[name] as string | undefined;
  const num = (name: string) => f[name] as number;
  const ms = (name: string) => f[name] as number | undefined;
  const problems: string[] = [];

  const intervalMs = ms('interval')!;
  if (intervalMs < 100) problems.push(`--interval must be at least 100ms, got ${intervalMs}ms`);
  const timeoutMs = ms('timeout') ?? Math.floor(intervalMs * 0.8);
  if (timeoutMs <= 0) problems.push('--timeout must be above 0');
  if (timeoutMs >= intervalMs) problems.push(`--timeout (${timeoutMs}ms) must be below --interval (${intervalMs}ms)`);
  const rateWindowMs = ms('rate-window')!;
  if (rateWindowMs < intervalMs) problems.push(`--rate-window (${rateWindowMs}ms) must be at least --interval (${intervalMs}ms)`);

  let target = new URL('http://127.0.0.1/');
  try {
    target = new URL(str('target')!);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') problems.push(`--target: "${str('target')}" must be http or https`);
  } catch {
    problems.push(`--target: "${str('target')}" is not a URL`);
  }

  const aggregator = parseAggregator(str('aggregator'), problems);
  for (const name of ['pod-name', 'pod-namespace']) if (!str(name)) problems.push(`--${name} is required (set it from the downward API)`);

  const metrics = (str('metrics') ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
  if (metrics.length === 0) problems.push('--metrics must name at least one metric or glob');
  for (const m of metrics) if (!isValidPattern(m)) problems.push(`--metrics: "${m}" is not a metric name or glob (letters, digits, _ : * ?)`);

  if (num('max-series') < 1 || num('max-series') > MAX_SERIES_LIMIT) problems.push(`--max-series must be between 1 and ${MAX_SERIES_LIMIT}, got ${num('max-series')}`);
  if (num('max-body-bytes') < 1) problems.push('--max-body-bytes must be at least 1');
  if (num('breaker-failures') < 1) problems.push('--breaker-failures must be at least 1');
  const breakerResetMs = ms('breaker-reset') ?? 3 * intervalMs;
  if (breakerResetMs <= 0) problems.push('--breaker-reset must be above 0');

  if (str('pod-labels') !== undefined && str('pod-labels-file') !== undefined) problems.push('--pod-labels and --pod-labels-file exclude each other');
  const podLabels = parseLabelList(str('pod-labels'), problems);

  let caPem = str('ca-pem');
  const caFile = str('ca-file');
  if (caFile !== undefined) {
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch (err) {
      problems.push(`--ca-file: cannot read ${caFile}: ${(err as Error).message}`);
    }
  }
  const tokenFile = str('token-file');
  if (tokenFile !== undefined) {
    try {
      readFileSync(tokenFile);
    } catch (err) {
      problems.push(`--token-file: cannot read ${tokenFile}: ${(err as Error).message}`);
    }
  }
  const insecure = f['insecure'] as boolean;
  if (insecure && (caFile !== undefined || str('ca-pem') !== undefined || tokenFile !== undefined)) problems.push('--insecure cannot be combined with --ca-file/--ca-pem/--token-file');
  if (!LEVELS.includes(str('log-level')!)) problems.push(`--log-level: "${str('log-level')}" is not one of ${LEVELS.join(', ')}`);
  if (isIP(str('bind-address')!) === 0) problems.push(`--bind-address: "${str('bind-address')}" is not an IP address`);

  if (problems.length > 0) throw new ConfigError(problems.join('; '));
  return Object.freeze({
    target,
    aggregator: aggregator!,
    intervalMs,
    timeoutMs,
    metrics: Object.freeze(metrics),
    maxSeries: num('max-series'),
    maxBodyBytes: num('max-body-bytes'),
    rateWindowMs,
    breakerFailures: num('breaker-failures'),
    breakerResetMs,
    pod: Object.freeze({ name: str('pod-name')!, namespace: str('pod-namespace')!, uid: str('pod-uid') ?? '' }),
    podLabels,
    podLabelsFile: str('pod-labels-file'),
    tokenFile,
    caPem,
    caFile,
    insecure,
    metricsPort: num('metrics-port'),
    bindAddress: str('bind-address')!,
    logLevel: str('log-level')!,
  });
}

/**
 * `host:port[,host:port…]`. One entry whose host is a name (not an IP, not localhost) is resolved by DNS to
 * every replica; a list, IPs and localhost are used as given.
 */
function parseAggregator(spec: string | undefined, problems: string[]): AggregatorSpec | undefined {
  if (!spec) {
    problems.push('--aggregator is required (host:port, a comma list, or a headless Service name with :port)');
    return undefined;
  }
  const parts = spec.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const hosts: { host: string; port: number }[] = [];
  for (const p of parts) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d+)$/.exec(p);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) {
      problems.push(`--aggregator: "${p}" is not host:port`);
      continue;
    }
    hosts.push({ host: m[1]!, port });
  }
  if (hosts.length !== parts.length || hosts.length === 0) {
    if (hosts.length === 0 && parts.length === 0) problems.push('--aggregator is empty');
    return undefined;
  }
  const only = hosts[0]!;
  if (hosts.length === 1 && isIP(only.host.replace(/^\[|\]$/g, '')) === 0 && only.host !== 'localhost') return { kind: 'dns', host: only.host, port: only.port };
  return { kind: 'static', targets: parts };
}

function parseLabelList(s: string | undefined, problems: string[]): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) problems.push(`--pod-labels: "${part}" is not k=v`);
    else out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return Object.freeze(out);
}
