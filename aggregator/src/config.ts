import { ConfigError } from '../../common/src/errors.js';
import { parseFlags, type FlagSpec } from '../../common/src/flags.js';
import { INJECTION_DEFAULTS, type InjectionConfig } from './webhook/inject.js';
import { settingsProblem } from './certs/rotation.js';
import type { ManagedTlsConfig } from './kube/certificates.js';

export const AGGREGATOR_FLAGS: readonly FlagSpec[] = [
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
  { name: 'max-message-bytes', kind: 'int', default: 4 * 1024 * 1024, help: 'largest gRPC message accepted' },
  { name: 'max-streams-per-pod', kind: 'int', default: 4, help: 'open ingest streams one pod may hold on this replica' },
  { name: 'max-reports-per-second', kind: 'int', default: 20, help: 'snapshots per second one ingest stream may send' },
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
];

export interface AggregatorConfig {
  apiPort: number;
  ingestPort: number;
  metricsPort: number;
  bindAddress: string;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  standalone: boolean;
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

const list = (v: unknown): string[] => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter((x) => x !== '') : []);

/** The --managed-tls-* flags, checked; undefined without --managed-tls-secret. */
function managedTls(f: Record<string, unknown>): ManagedTlsConfig | undefined {
  const ref = f['managed-tls-secret'] as string | undefined;
  if (!ref) return undefined;
  const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(ref);
  if (!m) throw new ConfigError(`--managed-tls-secret: "${ref}" is not NAMESPACE/NAME`);
  const hosts = list(f['managed-tls-hosts']);
  if (hosts.length === 0) throw new ConfigError('--managed-tls-hosts is required with --managed-tls-secret (the names the serving certificate must carry)');
  const schedule = { caValidityMs: f['managed-tls-ca-validity'] as number, certValidityMs: f['managed-tls-cert-validity'] as number, overlapMs: f['managed-tls-overlap'] as number };
  const problem = settingsProblem(schedule);
  if (problem) throw new ConfigError(`--managed-tls-ca-validity/--managed-tls-cert-validity/--managed-tls-overlap: ${problem}`);
  return {
    namespace: m[1]!,
    secret: m[2]!,
    lease: (f['managed-tls-lease'] as string | undefined) || m[2]!,
    hosts,
    apiServices: list(f['managed-tls-apiservices']),
    webhooks: list(f['managed-tls-webhooks']),
    caConfigMap: (f['inject-ca-configmap'] as string | undefined) || undefined,
    ...schedule,
  };
}

/** Flags + RELAY_* env -> frozen config. Throws ConfigError naming the flag. */
export function loadAggregatorConfig(argv: string[], env: NodeJS.ProcessEnv): AggregatorConfig {
  const f = parseFlags(AGGREGATOR_FLAGS, argv, env);
  const cfg: AggregatorConfig = {
    apiPort: f['api-port'] as number,
    ingestPort: f['ingest-port'] as number,
    metricsPort: f['metrics-port'] as number,
    bindAddress: (f['bind-address'] as string | undefined) ?? (f['standalone'] ? '127.0.0.1' : '0.0.0.0'),
    tlsCertFile: f['tls-cert-file'] as string | undefined,
    tlsKeyFile: f['tls-key-file'] as string | undefined,
    standalone: f['standalone'] as boolean,
    staleAfterMs: f['stale-after'] as number | undefined,
    expireAfterMs: f['expire-after'] as number,
    warmupMs: f['warmup'] as number,
    configFile: f['config'] as string | undefined,
    kubeconfig: f['kubeconfig'] as string | undefined,
    maxSeriesPerPod: f['max-series-per-pod'] as number,
    maxSeries: f['max-series'] as number,
    maxMessageBytes: f['max-message-bytes'] as number,
    maxStreamsPerPod: f['max-streams-per-pod'] as number,
    maxReportsPerSecond: f['max-reports-per-second'] as number,
    requestHeader: f['requestheader-client-ca-file']
      ? {
          caFile: f['requestheader-client-ca-file'] as string,
          allowedNames: list(f['requestheader-allowed-names']),
          usernameHeaders: list(f['requestheader-username-headers']),
          uidHeaders: list(f['requestheader-uid-headers']),
          groupHeaders: list(f['requestheader-group-headers']),
          extraHeaderPrefixes: list(f['requestheader-extra-headers-prefix']),
        }
      : undefined,
    clientCaFile: f['client-ca-file'] as string | undefined,
    injection: f['inject-image']
      ? {
          ...INJECTION_DEFAULTS,
          image: f['inject-image'] as string,
          ...(f['inject-image-pull-policy'] ? { imagePullPolicy: f['inject-image-pull-policy'] as string } : {}),
          aggregatorAddress: (f['inject-aggregator'] as string | undefined) ?? '',
          ...(f['inject-ca-configmap'] ? { caConfigMap: f['inject-ca-configmap'] as string } : {}),
          ...(f['inject-ca-bundle'] ? { caPem: f['inject-ca-bundle'] as string } : {}),
          nativeSidecar: f['inject-native-sidecar'] as boolean,
          defaultInterval: f['inject-interval'] as string,
          defaultMetrics: f['inject-metrics'] as string,
          resources: { requests: { cpu: f['inject-cpu-request'] as string, memory: f['inject-memory-request'] as string }, limits: { memory: f['inject-memory-limit'] as string } },
        }
      : undefined,
    managedTls: managedTls(f),
    clusterName: (f['cluster-name'] as string | undefined) || undefined,
    logLevel: f['log-level'] as string,
  };
  if (cfg.injection && cfg.injection.aggregatorAddress === '') throw new ConfigError('--inject-aggregator is required with --inject-image (the address injected sidecars stream to)');
  if (cfg.managedTls && (cfg.tlsCertFile || cfg.standalone)) throw new ConfigError(`--managed-tls-secret cannot be combined with ${cfg.standalone ? '--standalone (managed TLS needs the Kubernetes API)' : '--tls-cert-file (the certificate comes from the Secret)'}`);
  // NOTE: it becomes a Prometheus label value and usually a Kubernetes label value too: the stricter rule of both.
  if (cfg.clusterName !== undefined && !/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(cfg.clusterName)) {
    throw new ConfigError(`--cluster-name: "${cfg.clusterName}" is not a valid label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`);
  }
  if ((cfg.tlsCertFile === undefined) !== (cfg.tlsKeyFile === undefined)) throw new ConfigError('--tls-cert-file and --tls-key-file must be given together');
  if (cfg.staleAfterMs !== undefined && cfg.staleAfterMs <= 0) throw new ConfigError('--stale-after must be positive');
  if (cfg.expireAfterMs <= (cfg.staleAfterMs ?? 0)) throw new ConfigError('--expire-after must be longer than --stale-after');
  if (cfg.maxSeriesPerPod < 1) throw new ConfigError('--max-series-per-pod must be at least 1');
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(cfg.logLevel)) throw new ConfigError(`--log-level: "${cfg.logLevel}" is not one of trace, debug, info, warn, error, fatal, silent`);
  const ports = [['--api-port', cfg.apiPort], ['--ingest-port', cfg.ingestPort], ['--metrics-port', cfg.metricsPort]] as const;
  for (const [a, pa] of ports) for (const [b, pb] of ports) if (a < b && pa === pb && pa !== 0) throw new ConfigError(`${a} and ${b} are both ${pa}`);
  return Object.freeze(cfg);
}
