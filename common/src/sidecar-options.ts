// The sidecar's options: its flags and every check of them that needs nothing from the machine. One contract for
// both producers of sidecar arguments: the sidecar's own config loader (sidecar/src/config.ts) and the injection
// webhook (aggregator/src/webhook/inject.ts), which judges a pod's annotations by exactly these rules.
import { isIP } from 'node:net';
import { formatDuration } from './duration.js';
import { ConfigError, quoteValue, type Problem } from './errors.js';
import { parseFlags, type FlagSpec, type FlagValues } from './flags.js';
import { INGEST_LIMITS } from './proto.js';

/** The aggregator replicas a sidecar streams to: a fixed list, or a DNS name resolved to every replica. */
export type AggregatorSpec = { kind: 'static'; targets: readonly string[] } | { kind: 'dns'; host: string; port: number };

/** What --metrics accepts: Prometheus metric-name characters plus the glob characters `*` and `?`. */
const PATTERN = /^[a-zA-Z_:*?][a-zA-Z0-9_:*?]*$/;

/** Whether `pattern` is a valid --metrics entry (a metric name, or one with `*` / `?` globs). */
export function isValidPattern(pattern: string): boolean {
  return PATTERN.test(pattern);
}

/** The sidecar's options as checked without the machine: everything but the pod identity and the CA. Durations in ms. */
export interface SidecarOptions {
  target: URL;
  aggregator: AggregatorSpec;
  intervalMs: number;
  timeoutMs: number;
  metrics: readonly string[];
  maxSeries: number;
  maxLabelNameBytes: number;
  maxLabelValueBytes: number;
  maxLabelsPerSeries: number;
  maxMessageBytes: number;
  maxBodyBytes: number;
  rateWindowMs: number;
  breakerFailures: number;
  breakerResetMs: number;
  /** From --pod-labels; empty when --pod-labels-file is used. */
  podLabels: Readonly<Record<string, string>>;
  podLabelsFile: string | undefined;
  tokenFile: string | undefined;
  insecure: boolean;
  metricsPort: number;
  bindAddress: string;
  logLevel: string;
}

/** Rate window when --rate-window is not given and 2 intervals are shorter. */
const DEFAULT_RATE_WINDOW_MS = 60_000;

export const SIDECAR_FLAGS = [
  { name: 'target', kind: 'string', default: 'http://127.0.0.1:8080/metrics', help: "URL of the app's Prometheus metrics" },
  { name: 'aggregator', kind: 'string', help: 'aggregator replicas: host:port, a comma list, or a headless Service DNS name with :port (resolved every 10s)' },
  { name: 'interval', kind: 'duration', default: '5s', help: 'scrape interval, 100ms to 24h' },
  { name: 'timeout', kind: 'duration', help: 'scrape timeout, below the interval (default: 80% of the interval)' },
  { name: 'metrics', kind: 'string', default: 'cm_*', help: 'comma list of metric family names or globs (* and ?) to send' },
  { name: 'max-series', kind: 'int', default: 1000, help: 'series sent per scrape, rates included; the excess is counted and logged (at most 20000)' },
  { name: 'max-label-name-bytes', kind: 'int', default: INGEST_LIMITS.maxLabelNameBytes, help: 'longest label name; a series with a longer one is dropped, counted and logged' },
  { name: 'max-label-value-bytes', kind: 'int', default: INGEST_LIMITS.maxLabelValueBytes, help: 'longest label value; a series with a longer one is dropped, counted and logged' },
  { name: 'max-labels-per-series', kind: 'int', default: INGEST_LIMITS.maxLabelsPerSeries, help: 'most labels on one series; a series with more is dropped, counted and logged' },
  { name: 'max-message-bytes', kind: 'int', default: INGEST_LIMITS.maxMessageBytes, help: "the aggregators' message limit until their first Ack tells it; larger snapshots are trimmed" },
  { name: 'max-body-bytes', kind: 'int', default: 10 * 1024 * 1024, help: 'largest /metrics body read; a larger one fails the scrape' },
  { name: 'rate-window', kind: 'duration', help: 'window of the per-second rates computed from counters, at least the interval (default: 60s, or 2 intervals when that is longer)' },
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
] as const satisfies readonly FlagSpec[];


const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const MAX_SERIES_LIMIT = 20_000;
/** Longest --interval: its timers (and the breaker's, 3 intervals) stay well within a node timer's range. */
const MAX_INTERVAL_MS = 24 * 3_600_000;
/** A node timer longer than this fires at once (TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export type SidecarFlags = FlagValues<typeof SIDECAR_FLAGS>;

/**
 * What the sidecar would refuse in argv/env, leaving out what only the running pod has: no file is read and the
 * pod identity (filled in by the kubelet from the downward API) is not required. The injection webhook runs it on
 * the exact args and env it injects. Pure; returns every problem, each naming its flag (empty: accepted).
 */
export function sidecarOptionProblems(argv: readonly string[], env: NodeJS.ProcessEnv): readonly Problem[] {
  let f: SidecarFlags;
  try {
    f = parseFlags(SIDECAR_FLAGS, argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  const problems: Problem[] = [];
  readOptions(f, problems);
  return problems;
}

/** Every check of the parsed flags that needs nothing from the machine; adds what fails to `problems`. */
export function readOptions(f: SidecarFlags, problems: Problem[]): SidecarOptions {
  const problem = (flag: string, message: string) => problems.push({ flag, message });
  const before = problems.length;

  const intervalMs = f.interval;
  if (intervalMs < 100) problem('interval', `--interval must be at least 100ms, got ${intervalMs}ms`);
  if (intervalMs > MAX_INTERVAL_MS) problem('interval', `--interval must be at most 24h, got ${formatDuration(intervalMs)}`);
  // Timeout, rate window and breaker reset follow the interval unless given; compared with a bad interval they
  // would only repeat its problem.
  const intervalOk = problems.length === before;
  const timeoutMs = f.timeout ?? Math.floor(intervalMs * 0.8);
  if (intervalOk && timeoutMs <= 0) problem('timeout', '--timeout must be above 0');
  if (intervalOk && timeoutMs >= intervalMs) problem('timeout', `--timeout (${timeoutMs}ms) must be below --interval (${intervalMs}ms)`);
  // NOTE: two intervals when longer than 60s, so that a long interval still has a few scrapes per window.
  const rateWindowMs = f['rate-window'] ?? Math.max(DEFAULT_RATE_WINDOW_MS, 2 * intervalMs);
  if (intervalOk && rateWindowMs < intervalMs) problem('rate-window', `--rate-window (${rateWindowMs}ms) must be at least --interval (${intervalMs}ms)`);

  let target = new URL('http://127.0.0.1/');
  try {
    target = new URL(f.target);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') problem('target', `--target: ${quoteValue(f.target)} must be http or https`);
  } catch {
    problem('target', `--target: ${quoteValue(f.target)} is not a URL`);
  }

  const aggregator = parseAggregator(f.aggregator, problems);

  const metrics = f.metrics.split(',').map((m) => m.trim()).filter((m) => m !== '');
  if (metrics.length === 0) problem('metrics', '--metrics must name at least one metric or glob');
  for (const m of metrics) if (!isValidPattern(m)) problem('metrics', `--metrics: ${quoteValue(m)} is not a metric name or glob (letters, digits, _ : * ?, not starting with a digit)`);

  if (f['max-series'] < 1 || f['max-series'] > MAX_SERIES_LIMIT) problem('max-series', `--max-series must be between 1 and ${MAX_SERIES_LIMIT}, got ${f['max-series']}`);
  if (f['max-body-bytes'] < 1) problem('max-body-bytes', '--max-body-bytes must be at least 1');
  for (const name of ['max-label-name-bytes', 'max-label-value-bytes', 'max-labels-per-series'] as const) if (f[name] < 1) problem(name, `--${name} must be at least 1`);
  if (f['max-message-bytes'] < 65536) problem('max-message-bytes', `--max-message-bytes must be at least 65536, got ${f['max-message-bytes']}`);
  if (f['breaker-failures'] < 1) problem('breaker-failures', '--breaker-failures must be at least 1');
  const breakerResetMs = f['breaker-reset'] ?? 3 * intervalMs;
  if (intervalOk && breakerResetMs <= 0) problem('breaker-reset', '--breaker-reset must be above 0');
  if (intervalOk && breakerResetMs > MAX_TIMER_MS) problem('breaker-reset', `--breaker-reset must be at most ${formatDuration(MAX_TIMER_MS)}, got ${formatDuration(breakerResetMs)}`);

  if (f['pod-labels'] !== undefined && f['pod-labels-file'] !== undefined) problem('pod-labels', '--pod-labels and --pod-labels-file exclude each other');
  const podLabels = parseLabelList(f['pod-labels'], problems);

  if (f.insecure && (f['ca-file'] !== undefined || f['ca-pem'] !== undefined || f['token-file'] !== undefined)) problem('insecure', '--insecure cannot be combined with --ca-file/--ca-pem/--token-file');
  if (!LEVELS.includes(f['log-level'])) problem('log-level', `--log-level: ${quoteValue(f['log-level'])} is not one of ${LEVELS.join(', ')}`);
  if (isIP(f['bind-address']) === 0) problem('bind-address', `--bind-address: ${quoteValue(f['bind-address'])} is not an IP address`);

  return {
    target,
    // NOTE: undefined only alongside a problem, and then no config is returned.
    aggregator: aggregator!,
    intervalMs,
    timeoutMs,
    metrics: Object.freeze(metrics),
    maxSeries: f['max-series'],
    maxLabelNameBytes: f['max-label-name-bytes'],
    maxLabelValueBytes: f['max-label-value-bytes'],
    maxLabelsPerSeries: f['max-labels-per-series'],
    maxMessageBytes: f['max-message-bytes'],
    maxBodyBytes: f['max-body-bytes'],
    rateWindowMs,
    breakerFailures: f['breaker-failures'],
    breakerResetMs,
    podLabels,
    podLabelsFile: f['pod-labels-file'],
    tokenFile: f['token-file'],
    insecure: f.insecure,
    metricsPort: f['metrics-port'],
    bindAddress: f['bind-address'],
    logLevel: f['log-level'],
  };
}

/**
 * `host:port[,host:port…]`. One entry whose host is a name (not an IP, not localhost) is resolved by DNS to
 * every replica; a list, IPs and localhost are used as given.
 */
function parseAggregator(spec: string | undefined, problems: Problem[]): AggregatorSpec | undefined {
  if (!spec) {
    problems.push({ flag: 'aggregator', message: '--aggregator is required (host:port, a comma list, or a headless Service name with :port)' });
    return undefined;
  }
  const parts = spec.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const hosts: { host: string; port: number }[] = [];
  for (const p of parts) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d+)$/.exec(p);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) {
      problems.push({ flag: 'aggregator', message: `--aggregator: ${quoteValue(p)} is not host:port` });
      continue;
    }
    hosts.push({ host: m[1]!, port });
  }
  if (hosts.length !== parts.length || hosts.length === 0) {
    if (hosts.length === 0 && parts.length === 0) problems.push({ flag: 'aggregator', message: '--aggregator is empty' });
    return undefined;
  }
  const only = hosts[0]!;
  if (hosts.length === 1 && isIP(only.host.replace(/^\[|\]$/g, '')) === 0 && only.host !== 'localhost') return { kind: 'dns', host: only.host, port: only.port };
  return { kind: 'static', targets: parts };
}

function parseLabelList(s: string | undefined, problems: Problem[]): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) problems.push({ flag: 'pod-labels', message: `--pod-labels: ${quoteValue(part)} is not k=v` });
    else out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return Object.freeze(out);
}
