import { ConfigError, type Problem } from '../../common/src/errors.js';
import { parseFlags, type FlagSpec, type FlagValues } from '../../common/src/flags.js';
import { INGEST_LIMITS } from '../../common/src/proto.js';
import { INJECTION_DEFAULTS, type InjectionConfig } from './webhook/inject.js';
import { settingsProblem } from './certs/rotation.js';
import type { ManagedTlsConfig } from './kube/certificates.js';

export const AGGREGATOR_FLAGS = [
  { name: 'api-port', kind: 'port', default: 6443, help: 'HTTPS port of the metrics APIs, the webhook and probes' },
  { name: 'ingest-port', kind: 'port', default: 9443, help: 'gRPC port sidecars stream to' },
  { name: 'metrics-port', kind: 'port', default: 9090, help: 'plain-HTTP port of /metrics, probes and the status page' },
  { name: 'bind-address', kind: 'string', help: 'address to listen on (default 0.0.0.0; with --standalone 127.0.0.1, and any other address is logged as a warning)' },
  { name: 'tls-cert-file', kind: 'string', help: 'serving certificate (PEM) for the API and ingest ports; self-signed when absent' },
  { name: 'tls-key-file', kind: 'string', help: 'private key (PEM) of --tls-cert-file' },
  { name: 'standalone', kind: 'bool', default: false, help: 'run without Kubernetes: loopback only, plaintext ingest without tokens, objects by pod-label convention' },
  { name: 'stale-after', kind: 'duration', help: 'a value older than this is not served (default 3x the sidecar interval, at least 15s)' },
  { name: 'expire-after', kind: 'duration', default: '10m', help: 'series of a pod that has not reported for this long are deleted' },
  { name: 'warmup', kind: 'duration', default: '15s', help: 'longest time /readyz stays false after start while sidecars reconnect' },
  { name: 'config', kind: 'string', help: 'per-metric rules file (JSON), reloaded when it changes' },
  { name: 'kubeconfig', kind: 'string', help: 'kubeconfig for running outside the cluster (default: in-cluster config)' },
  { name: 'max-series-per-pod', kind: 'int', default: 1000, help: 'series held per pod; excess is refused and counted' },
  { name: 'max-series', kind: 'int', default: 2_000_000, help: 'series held in total; excess is refused and counted' },
  { name: 'max-message-bytes', kind: 'int', default: INGEST_LIMITS.maxMessageBytes, help: 'largest gRPC message accepted (told to sidecars in every Ack)' },
  { name: 'max-streams-per-pod', kind: 'int', default: 4, help: 'open ingest streams one pod may hold on this replica' },
  { name: 'max-reports-per-second', kind: 'int', default: 20, help: 'snapshots per second one ingest stream may send' },
  { name: 'max-label-name-bytes', kind: 'int', default: INGEST_LIMITS.maxLabelNameBytes, help: 'longest label name of a series; such a series is refused in the Ack and counted' },
  { name: 'max-label-value-bytes', kind: 'int', default: INGEST_LIMITS.maxLabelValueBytes, help: 'longest label value (and metric name) of a series; such a series is refused and counted' },
  { name: 'max-labels-per-series', kind: 'int', default: INGEST_LIMITS.maxLabelsPerSeries, help: 'most labels one series may have; such a series is refused and counted' },
  { name: 'max-store-bytes', kind: 'int', help: 'memory budget (estimated heap bytes) of pods and series; beyond it new ones are refused and counted (default: 35% of the container memory limit from the cgroup, else 512 MiB)' },
  { name: 'max-clock-skew', kind: 'duration', default: '5s', help: "sample times further ahead of this replica's clock are replaced by the receive time and counted" },
  { name: 'max-response-bytes', kind: 'int', default: 16 * 1024 * 1024, help: 'largest metrics answer; a query matching more is refused with a Status saying so' },
  { name: 'requestheader-client-ca-file', kind: 'string', help: "CA bundle of the front proxy's client certificate (default: from ConfigMap kube-system/extension-apiserver-authentication)" },
  { name: 'requestheader-allowed-names', kind: 'string', help: 'comma list of allowed front-proxy certificate CNs (empty: any)' },
  { name: 'requestheader-username-headers', kind: 'string', default: 'X-Remote-User', help: 'comma list of headers carrying the user name' },
  { name: 'requestheader-uid-headers', kind: 'string', default: 'X-Remote-Uid', help: 'comma list of headers carrying the user uid' },
  { name: 'requestheader-group-headers', kind: 'string', default: 'X-Remote-Group', help: 'comma list of headers carrying groups' },
  { name: 'requestheader-extra-headers-prefix', kind: 'string', default: 'X-Remote-Extra-', help: 'comma list of header prefixes carrying extra user info' },
  { name: 'client-ca-file', kind: 'string', help: 'CA bundle for client-certificate users' },
  { name: 'inject-image', kind: 'string', help: 'sidecar image the webhook injects (empty: the webhook answers without patching)' },
  { name: 'inject-image-pull-policy', kind: 'string', help: 'imagePullPolicy of the injected sidecar (default: the cluster default)' },
  { name: 'inject-aggregator', kind: 'string', help: 'address injected sidecars stream to: the headless ingest Service name with :port' },
  { name: 'inject-ca-bundle', kind: 'string', help: "the aggregator's CA (PEM) handed to injected sidecars as RELAY_CA_PEM" },
  { name: 'inject-ca-configmap', kind: 'string', help: "instead of --inject-ca-bundle: a ConfigMap with ca.crt in each pod's namespace" },
  { name: 'inject-native-sidecar', kind: 'bool', default: false, help: 'inject as a native sidecar (initContainers with restartPolicy Always)' },
  { name: 'inject-interval', kind: 'string', default: '5s', help: 'scrape interval of injected sidecars unless annotated' },
  { name: 'inject-metrics', kind: 'string', default: 'cm_*', help: 'metric names/globs of injected sidecars unless annotated' },
  { name: 'inject-cpu-request', kind: 'string', default: '10m', help: 'CPU request of the injected sidecar' },
  { name: 'inject-memory-request', kind: 'string', default: '32Mi', help: 'memory request of the injected sidecar' },
  { name: 'inject-memory-limit', kind: 'string', default: '64Mi', help: 'memory limit of the injected sidecar' },
  { name: 'node-agent-service-account', kind: 'string', help: "NAMESPACE/NAME of the node agents' ServiceAccount: a stream with its token reports for the pods on its agent's node (their spec.nodeName), and is refused for any other" },
  { name: 'managed-tls-secret', kind: 'string', help: 'NAMESPACE/NAME of the Secret in which the aggregator keeps its own CA and serving certificate (managed TLS; excludes --tls-cert-file)' },
  { name: 'managed-tls-lease', kind: 'string', help: 'Lease (in the Secret\'s namespace) electing the replica that rotates (default: the Secret\'s name)' },
  { name: 'managed-tls-hosts', kind: 'string', help: 'comma list of DNS names and IPs of the serving certificate (required with --managed-tls-secret)' },
  { name: 'managed-tls-apiservices', kind: 'string', help: 'comma list of APIService names whose caBundle the leader keeps current' },
  { name: 'managed-tls-webhooks', kind: 'string', help: 'comma list of MutatingWebhookConfiguration names whose caBundle the leader keeps current' },
  { name: 'managed-tls-ca-validity', kind: 'duration', default: '8760h', help: 'lifetime of each CA; a new one is made when a third is left' },
  { name: 'managed-tls-cert-validity', kind: 'duration', default: '2160h', help: 'lifetime of each serving certificate (at most half the CA\'s); re-issued when a third is left' },
  { name: 'managed-tls-overlap', kind: 'duration', default: '1h', help: 'how long a new CA is trusted before it signs, and an old one after it stopped (at most 1/6 of the CA validity)' },
  { name: 'cluster-name', kind: 'string', help: 'name of the cluster this replica serves: shown on the status page, and label cluster on every self-metric' },
  { name: 'log-level', kind: 'string', default: 'info', help: 'pino log level (debug, info, warn, error)' },
] as const satisfies readonly FlagSpec[];

type AggregatorFlags = FlagValues<typeof AGGREGATOR_FLAGS>;

export interface AggregatorConfig {
  apiPort: number;
  ingestPort: number;
  metricsPort: number;
  bindAddress: string;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  standalone: boolean;
  /** The node agents' ServiceAccount as `namespace:name` (how TokenReview names its user); undefined: no node agents. */
  nodeAgentServiceAccount: string | undefined;
  staleAfterMs: number | undefined;
  expireAfterMs: number;
  warmupMs: number;
  configFile: string | undefined;
  kubeconfig: string | undefined;
  maxSeriesPerPod: number;
  maxSeries: number;
  maxMessageBytes: number;
  maxStreamsPerPod: number;
  maxReportsPerSecond: number;
  maxLabelNameBytes: number;
  maxLabelValueBytes: number;
  maxLabelsPerSeries: number;
  /** Undefined: derived from the container memory limit at start (store/memory-budget.ts). */
  maxStoreBytes: number | undefined;
  maxClockSkewMs: number;
  maxResponseBytes: number;
  requestHeader: { caFile: string; allowedNames: string[]; usernameHeaders: string[]; uidHeaders: string[]; groupHeaders: string[]; extraHeaderPrefixes: string[] } | undefined;
  clientCaFile: string | undefined;
  /** Undefined when --inject-image is empty (webhook answers without patching). */
  injection: InjectionConfig | undefined;
  /** Undefined unless --managed-tls-secret is given. */
  managedTls: ManagedTlsConfig | undefined;
  /** --cluster-name; undefined when not given. */
  clusterName: string | undefined;
  logLevel: string;
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

const list = (v: string | undefined): string[] => (v ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');

function nodeAgentServiceAccount(ref: string | undefined, problems: Problem[]): string | undefined {
  if (ref === undefined) return undefined;
  const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(ref);
  if (!m) problems.push({ flag: 'node-agent-service-account', message: `--node-agent-service-account: "${ref}" is not NAMESPACE/NAME` });
  return m ? `${m[1]}:${m[2]}` : undefined;
}

/** The --managed-tls-* flags; undefined without --managed-tls-secret. Adds what is wrong with them to problems. */
function managedTls(f: AggregatorFlags, problems: Problem[]): ManagedTlsConfig | undefined {
  const ref = f['managed-tls-secret'];
  if (!ref) return undefined;
  const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(ref);
  if (!m) problems.push({ flag: 'managed-tls-secret', message: `--managed-tls-secret: "${ref}" is not NAMESPACE/NAME` });
  const hosts = list(f['managed-tls-hosts']);
  if (hosts.length === 0) problems.push({ flag: 'managed-tls-hosts', message: '--managed-tls-hosts is required with --managed-tls-secret (the names the serving certificate must carry)' });
  const schedule = { caValidityMs: f['managed-tls-ca-validity'], certValidityMs: f['managed-tls-cert-validity'], overlapMs: f['managed-tls-overlap'] };
  const problem = settingsProblem(schedule);
  if (problem) problems.push({ flag: 'managed-tls-ca-validity', message: `--managed-tls-ca-validity/--managed-tls-cert-validity/--managed-tls-overlap: ${problem}` });
  return {
    namespace: m?.[1] ?? '',
    secret: m?.[2] ?? '',
    lease: f['managed-tls-lease'] || (m?.[2] ?? ''),
    hosts,
    apiServices: list(f['managed-tls-apiservices']),
    webhooks: list(f['managed-tls-webhooks']),
    caConfigMap: f['inject-ca-configmap'] || undefined,
    ...schedule,
  };
}

/** Flags + RELAY_* env -> frozen config. Throws one ConfigError listing every problem, each naming its flag. */
export function loadAggregatorConfig(argv: string[], env: NodeJS.ProcessEnv): AggregatorConfig {
  const f = parseFlags(AGGREGATOR_FLAGS, argv, env);
  const problems: Problem[] = [];
  const cfg = configOf(f, problems);
  problems.push(...configProblems(cfg));
  if (problems.length > 0) throw ConfigError.of(problems);
  return Object.freeze(cfg);
}

function configOf(f: AggregatorFlags, problems: Problem[]): AggregatorConfig {
  return {
    apiPort: f['api-port'],
    ingestPort: f['ingest-port'],
    metricsPort: f['metrics-port'],
    bindAddress: f['bind-address'] ?? (f.standalone ? '127.0.0.1' : '0.0.0.0'),
    tlsCertFile: f['tls-cert-file'],
    tlsKeyFile: f['tls-key-file'],
    standalone: f.standalone,
    nodeAgentServiceAccount: nodeAgentServiceAccount(f['node-agent-service-account'], problems),
    staleAfterMs: f['stale-after'],
    expireAfterMs: f['expire-after'],
    warmupMs: f.warmup,
    configFile: f.config,
    kubeconfig: f.kubeconfig,
    maxSeriesPerPod: f['max-series-per-pod'],
    maxSeries: f['max-series'],
    maxMessageBytes: f['max-message-bytes'],
    maxStreamsPerPod: f['max-streams-per-pod'],
    maxReportsPerSecond: f['max-reports-per-second'],
    maxLabelNameBytes: f['max-label-name-bytes'],
    maxLabelValueBytes: f['max-label-value-bytes'],
    maxLabelsPerSeries: f['max-labels-per-series'],
    maxStoreBytes: f['max-store-bytes'],
    maxClockSkewMs: f['max-clock-skew'],
    maxResponseBytes: f['max-response-bytes'],
    requestHeader: f['requestheader-client-ca-file']
      ? {
          caFile: f['requestheader-client-ca-file'],
          allowedNames: list(f['requestheader-allowed-names']),
          usernameHeaders: list(f['requestheader-username-headers']),
          uidHeaders: list(f['requestheader-uid-headers']),
          groupHeaders: list(f['requestheader-group-headers']),
          extraHeaderPrefixes: list(f['requestheader-extra-headers-prefix']),
        }
      : undefined,
    clientCaFile: f['client-ca-file'],
    injection: f['inject-image']
      ? {
          ...INJECTION_DEFAULTS,
          image: f['inject-image'],
          ...(f['inject-image-pull-policy'] ? { imagePullPolicy: f['inject-image-pull-policy'] } : {}),
          aggregatorAddress: f['inject-aggregator'] ?? '',
          ...(f['inject-ca-configmap'] ? { caConfigMap: f['inject-ca-configmap'] } : {}),
          ...(f['inject-ca-bundle'] ? { caPem: f['inject-ca-bundle'] } : {}),
          nativeSidecar: f['inject-native-sidecar'],
          defaultInterval: f['inject-interval'],
          defaultMetrics: f['inject-metrics'],
          resources: { requests: { cpu: f['inject-cpu-request'], memory: f['inject-memory-request'] }, limits: { memory: f['inject-memory-limit'] } },
        }
      : undefined,
    managedTls: managedTls(f, problems),
    clusterName: f['cluster-name'] || undefined,
    logLevel: f['log-level'],
  };
}

/** Every check across flags, in flag order; empty when the configuration is accepted. */
function configProblems(cfg: AggregatorConfig): Problem[] {
  const problems: Problem[] = [];
  const problem = (flag: string, message: string) => problems.push({ flag, message });
  if (cfg.injection && cfg.injection.aggregatorAddress === '') problem('inject-aggregator', '--inject-aggregator is required with --inject-image (the address injected sidecars stream to)');
  if (cfg.nodeAgentServiceAccount && cfg.standalone) problem('node-agent-service-account', '--node-agent-service-account cannot be combined with --standalone (node agents are checked against the Kubernetes API; a standalone aggregator takes every stream unauthenticated)');
  if (cfg.managedTls && (cfg.tlsCertFile || cfg.standalone)) problem('managed-tls-secret', `--managed-tls-secret cannot be combined with ${cfg.standalone ? '--standalone (managed TLS needs the Kubernetes API)' : '--tls-cert-file (the certificate comes from the Secret)'}`);
  // NOTE: it becomes a Prometheus label value and usually a Kubernetes label value too: the stricter rule of both.
  if (cfg.clusterName !== undefined && !/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(cfg.clusterName)) {
    problem('cluster-name', `--cluster-name: "${cfg.clusterName}" is not a valid label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`);
  }
  if ((cfg.tlsCertFile === undefined) !== (cfg.tlsKeyFile === undefined)) problem(cfg.tlsCertFile === undefined ? 'tls-key-file' : 'tls-cert-file', '--tls-cert-file and --tls-key-file must be given together');
  if (cfg.staleAfterMs !== undefined && cfg.staleAfterMs <= 0) problem('stale-after', '--stale-after must be positive');
  if (cfg.expireAfterMs <= (cfg.staleAfterMs ?? 0)) problem('expire-after', '--expire-after must be longer than --stale-after');
  if (cfg.maxSeriesPerPod < 1) problem('max-series-per-pod', '--max-series-per-pod must be at least 1');
  const atLeastOne: [string, number][] = [['max-label-name-bytes', cfg.maxLabelNameBytes], ['max-label-value-bytes', cfg.maxLabelValueBytes], ['max-labels-per-series', cfg.maxLabelsPerSeries], ['max-store-bytes', cfg.maxStoreBytes ?? 1], ['max-response-bytes', cfg.maxResponseBytes]];
  for (const [flag, v] of atLeastOne) if (v < 1) problem(flag, `--${flag} must be at least 1`);
  if (!LEVELS.includes(cfg.logLevel)) problem('log-level', `--log-level: "${cfg.logLevel}" is not one of ${LEVELS.join(', ')}`);
  const ports: [string, number][] = [['api-port', cfg.apiPort], ['ingest-port', cfg.ingestPort], ['metrics-port', cfg.metricsPort]];
  for (const [a, pa] of ports) for (const [b, pb] of ports) if (a < b && pa === pb && pa !== 0) problem(a, `--${a} and --${b} are both ${pa}`);
  return problems;
}
