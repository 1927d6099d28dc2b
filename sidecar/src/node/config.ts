import { readFileSync } from 'node:fs';
import { ConfigError, type Problem } from '../../../common/src/errors.js';
import { parseFlags, type FlagSpec, type FlagValues } from '../../../common/src/flags.js';
import { readOptions, SIDECAR_FLAGS } from '../../../common/src/sidecar-options.js';
import { readFile } from '../config.js';

/** Sidecar flags that are a pod's own (from its annotations and identity), not the agent's. */
const PER_POD = new Set(['target', 'timeout', 'rate-window', 'breaker-reset', 'pod-name', 'pod-namespace', 'pod-uid', 'pod-labels', 'pod-labels-file', 'ca-pem']);
/** The sidecar flags the agent takes and gives every pod it scrapes (caps, aggregator, credentials, defaults). */
const SHARED_FLAGS = SIDECAR_FLAGS.filter((f) => !PER_POD.has(f.name));

export const NODE_AGENT_FLAGS = [
  { name: 'node-name', kind: 'string', help: 'the node this agent serves (downward API spec.nodeName); only pods on it are scraped' },
  { name: 'kubeconfig', kind: 'string', help: 'kubeconfig for the pod watch (default: in-cluster, then ~/.kube/config)' },
  { name: 'pods-file', kind: 'string', help: 'read the pods from this file (a v1 PodList, as `kubectl get pods -o json` prints it), re-read every second, instead of watching the Kubernetes API: for running without a cluster' },
  ...SHARED_FLAGS.map((f) =>
    f.name === 'interval' ? { ...f, help: 'scrape interval of a pod without the metrics-relay.io/interval annotation' } : f.name === 'metrics' ? { ...f, help: 'families sent for a pod without the metrics-relay.io/metrics annotation (comma list of names or globs)' } : f,
  ),
] as const satisfies readonly FlagSpec[];

/** The node agent's configuration. `podArgs` are the sidecar flags every pod's options start from. */
export interface NodeAgentConfig {
  nodeName: string;
  kubeconfig: string | undefined;
  podsFile: string | undefined;
  /** Default annotations: interval (Go duration) and metrics. */
  defaults: { interval: string; metrics: string };
  podArgs: readonly string[];
  /** --max-body-bytes: each pod's cap; the agent's budget for large bodies at once is a few of them. */
  maxBodyBytes: number;
  /** The CA bundle as read at start, if it was there (the dial reads the file again on every connection). */
  caPem: string | undefined;
  caFile: string | undefined;
  insecure: boolean;
  tokenFile: string | undefined;
  metricsPort: number;
  bindAddress: string;
  logLevel: string;
}

/**
 * Flags, then RELAY_* env, then defaults. The shared flags are checked by the sidecar's own rules (with a
 * placeholder target); every problem is reported at once, each naming its flag.
 */
export function loadNodeAgentConfig(argv: readonly string[], env: NodeJS.ProcessEnv): NodeAgentConfig {
  const f = parseFlags(NODE_AGENT_FLAGS, argv, env);
  const problems: Problem[] = [];
  const podArgs = sharedArgs(f);
  const options = readOptions(parseFlags(SIDECAR_FLAGS, podArgs, {}), problems);
  if (!f['node-name']) problems.push({ flag: 'node-name', message: '--node-name is required (set it from the downward API: spec.nodeName)' });
  if (f['kubeconfig'] !== undefined && f['pods-file'] !== undefined) problems.push({ flag: 'pods-file', message: '--pods-file and --kubeconfig exclude each other' });
  // NOTE: the CA file is not required at start: the chart's CA ConfigMap or Secret may be filled only after the
  // install; the dial reads it again on every connection.
  const caPem = f['ca-file'] !== undefined ? readIfThere(f['ca-file']) : undefined;
  if (f['token-file'] !== undefined) readFile('token-file', f['token-file'], problems);
  if (f['pods-file'] !== undefined) readFile('pods-file', f['pods-file'], problems);
  if (problems.length > 0) throw ConfigError.of(problems);
  return Object.freeze({
    nodeName: f['node-name']!,
    kubeconfig: f['kubeconfig'],
    podsFile: f['pods-file'],
    defaults: { interval: `${f.interval}ms`, metrics: f.metrics },
    podArgs,
    maxBodyBytes: options.maxBodyBytes,
    caPem,
    caFile: f['ca-file'],
    insecure: options.insecure,
    tokenFile: options.tokenFile,
    metricsPort: options.metricsPort,
    bindAddress: options.bindAddress,
    logLevel: options.logLevel,
  });
}

/** The shared flags' values written back as sidecar arguments (durations in ms). */
function sharedArgs(f: FlagValues<typeof NODE_AGENT_FLAGS>): string[] {
  const out: string[] = [];
  const values = f as Record<string, string | number | boolean | undefined>;
  for (const spec of SHARED_FLAGS) {
    const v = values[spec.name];
    if (v === undefined || v === false) continue;
    if (v === true) out.push(`--${spec.name}`);
    else out.push(`--${spec.name}=${spec.kind === 'duration' ? `${v}ms` : String(v)}`);
  }
  return out;
}

function readIfThere(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
