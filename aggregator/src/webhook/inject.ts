/**
 * Sidecar injection: from the pod of an AdmissionReview (`request.object`), decide whether to inject the
 * metrics-relay sidecar and build the RFC 6902 patch that does it (docs/protocol.md#admission-webhook). Pure: no I/O, never
 * mutates its input, never throws for any input shape.
 *
 * Registration (the chart owns it; docs/protocol.md#admission-webhook) — TWO entries of the MutatingWebhookConfiguration on the
 * service, told apart by their path (webhook paths may not carry a query):
 *
 * - `/mutate/namespace`, namespaceSelector `metrics-relay.io/inject In [enabled]`: injects every pod
 *   unless it is annotated `metrics-relay.io/inject: "false"`.
 * - `/mutate/pod`, namespaceSelector `metrics-relay.io/inject NotIn [enabled]`: injects only pods
 *   annotated `metrics-relay.io/inject: "true"`.
 *
 * Both also exclude the aggregator's own namespace and kube-system, use `failurePolicy: Ignore`,
 * `sideEffects: None` and `reinvocationPolicy: IfNeeded`.
 *
 * NOTE: two entries because an admission request does not carry the namespace's labels, so the handler cannot
 * tell "this namespace opted in" from the pod alone; the namespaceSelector can, and the scope path segment tells
 * the handler which selector let the request through. The `NotIn [enabled]` selector keeps the two entries
 * disjoint (without it a pod would simply be seen twice; idempotency makes that harmless).
 * NOTE: objectSelector matches labels only, never annotations, so the pod-scope entry receives every pod
 * created in the remaining namespaces: the annotation check is the first thing done and costs nothing.
 *
 * Annotation values are judged by the sidecar's own option checks (`sidecarOptionProblems` in
 * common/src/sidecar-options.ts) on the args and env about to be injected, so a pod never gets a sidecar that refuses to
 * start; only what has no sidecar flag (the app port, path, scheme, volume names) is checked here.
 */
import { quoteValue } from '../../../common/src/errors.js';
import { ANNOTATION_PREFIX, annotationReader, readPodScrapeOptions, refusalOf, type PodScrapeOptions } from '../../../common/src/pod-annotations.js';
import { INGEST_AUDIENCE } from '../../../common/src/proto.js';
import { sidecarOptionProblems } from '../../../common/src/sidecar-options.js';

/** One RFC 6902 operation. The injector only emits `add`. */
export interface JsonPatchOp {
  op: 'add';
  /** JSON Pointer into the object exactly as received (`~` → `~0`, `/` → `~1`). */
  path: string;
  value: unknown;
}

/** Container resources of the sidecar (Kubernetes quantity strings). */
export interface SidecarResources {
  requests: { cpu: string; memory: string };
  limits: { cpu?: string; memory?: string };
}

/** What the webhook injects; built once by main from the aggregator's flags. */
export interface InjectionConfig {
  /** Sidecar image; its entrypoint must take args that start with `sidecar` (Dockerfile.sidecar's does). */
  image: string;
  /** Omitted from the container when undefined (the cluster's default applies). */
  imagePullPolicy?: string;
  /** `--aggregator` of the sidecar: `host:port`, a comma list, or a headless Service DNS name with `:port`. */
  aggregatorAddress: string;
  /**
   * ConfigMap holding the aggregator's CA under key `ca.crt`, projected next to the token as `ca.crt` and passed
   * as `--ca-file`. It must exist in the pod's namespace (a volume cannot reference another namespace); it is
   * mounted `optional` so a missing one never keeps the application pod from starting. Undefined: no CA file
   * and no `--ca-file` (the sidecar uses its default trust store).
   */
  caConfigMap?: string;
  /**
   * The aggregator's CA (PEM), given to the sidecar as env RELAY_CA_PEM: no per-namespace ConfigMap needed.
   * Used when caConfigMap is not set.
   */
  caPem?: string;
  resources: SidecarResources;
  /** Inject as a native sidecar (`initContainers` with `restartPolicy: Always`, Kubernetes ≥ 1.29) instead of into `containers`. */
  nativeSidecar: boolean;
  /** Go duration used when the pod has no `metrics-relay.io/interval` annotation. */
  defaultInterval: string;
  /** `--metrics` used when the pod has no `metrics-relay.io/metrics` annotation. */
  defaultMetrics: string;
  /** Preferred port of the sidecar's own metrics; the next free one is used when a container of the pod has it. */
  sidecarMetricsPort: number;
  /** `securityContext.runAsUser/runAsGroup` of the sidecar; undefined leaves the image's (or the pod's) user. */
  runAsUser?: number;
}

/** Defaults for everything in {@link InjectionConfig} except the image and the aggregator address. */
export const INJECTION_DEFAULTS: Readonly<Omit<InjectionConfig, 'image' | 'aggregatorAddress'>> = Object.freeze({
  resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
  nativeSidecar: false,
  defaultInterval: '5s',
  defaultMetrics: 'cm_*',
  sidecarMetricsPort: 9091,
  // NOTE: a numeric user at container level (the sidecar image's USER) keeps runAsNonRoot satisfiable even when
  // the pod itself runs as root or its image user is a name the kubelet cannot verify.
  runAsUser: 65532,
});

/**
 * The outcome for one pod. `inject: false` carries a short reason for logs and, when the pod asked for
 * injection but cannot get it, a `warning` (prefixed `metrics-relay: `) for the AdmissionReview `warnings`.
 */
export type InjectionDecision = { inject: false; reason: string; warning?: string } | { inject: true; patch: JsonPatchOp[] };

/** Set on every injected pod; its presence means "already injected". */
export const INJECTED_ANNOTATION = `${ANNOTATION_PREFIX}injected`;
/** Name of the injected container (in `containers`, or in `initContainers` in native mode). */
export const SIDECAR_CONTAINER_NAME = 'metrics-relay-sidecar';
/** Names of the volumes the injector adds. */
export const PODINFO_VOLUME = 'metrics-relay-podinfo';
export const TOKEN_VOLUME = 'metrics-relay-token';
/** Where the sidecar finds its files. */
export const PODINFO_DIR = '/etc/metrics-relay/podinfo';
export const TOKEN_DIR = '/var/run/secrets/metrics-relay';

const SIDECAR_PORT_NAME = 'relay-metrics';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] | undefined => (Array.isArray(v) ? v : undefined);

/** Escapes one JSON Pointer reference token (RFC 6901): `~` first, then `/`. */
export function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Decides whether to inject the sidecar into `pod` (the AdmissionReview `request.object` of a pod CREATE) and
 * builds the patch. `scope` is the webhook entry the request came through (see the module comment).
 * Idempotent: a pod that already has the annotation {@link INJECTED_ANNOTATION} or a container or init
 * container named {@link SIDECAR_CONTAINER_NAME} gets no patch. The patch only uses paths that exist in `pod`
 * (it creates `volumes`, `initContainers`, `metadata.annotations` when absent), so it always applies.
 */
export function decideInjection(pod: unknown, scope: 'pod' | 'namespace', config: InjectionConfig): InjectionDecision {
  const metadata = isObj(pod) && isObj(pod['metadata']) ? pod['metadata'] : undefined;
  const annotations = metadata && isObj(metadata['annotations']) ? metadata['annotations'] : {};
  const annotation = annotationReader(annotations);

  const optIn = annotation('inject');
  if (optIn === 'false') return { inject: false, reason: 'opted out by annotation' };
  if (optIn === undefined && scope === 'pod') return { inject: false, reason: 'not opted in' };
  if (optIn !== undefined && optIn !== 'true') {
    return notInjectable(`annotation ${ANNOTATION_PREFIX}inject must be "true" or "false", got ${quoteValue(optIn)}`);
  }
  const mode = annotation('mode');
  if (mode === 'node') return { inject: false, reason: `the pod asks for the node agent (${ANNOTATION_PREFIX}mode: node)` };
  if (mode !== undefined && mode !== 'sidecar') return notInjectable(`annotation ${ANNOTATION_PREFIX}mode must be "sidecar" or "node", got ${quoteValue(mode)}`);

  const spec = isObj(pod) && isObj(pod['spec']) ? pod['spec'] : undefined;
  const containers = arr(spec?.['containers']);
  if (!spec || !containers || containers.length === 0) return { inject: false, reason: 'object is not a pod with spec.containers' };
  const initContainers = arr(spec['initContainers']);
  const all = [...containers, ...(initContainers ?? [])].filter(isObj);
  if (Object.hasOwn(annotations, INJECTED_ANNOTATION) || all.some((c) => c['name'] === SIDECAR_CONTAINER_NAME)) {
    return { inject: false, reason: 'already injected' };
  }

  const problems: string[] = [];
  const options = readPodScrapeOptions(annotation, containers[0], { interval: config.defaultInterval, metrics: config.defaultMetrics }, '127.0.0.1', problems);
  const volumes = arr(spec['volumes']);
  for (const name of [PODINFO_VOLUME, TOKEN_VOLUME]) {
    if (volumes?.some((v) => isObj(v) && v['name'] === name)) problems.push(`the pod already has a volume named ${name}`);
  }

  const usedPorts = new Set<number>(options.appPort === undefined ? [] : [options.appPort]);
  const usedPortNames = new Set<unknown>();
  for (const c of all) {
    for (const p of arr(c['ports']) ?? []) {
      if (!isObj(p)) continue;
      if (typeof p['containerPort'] === 'number') usedPorts.add(p['containerPort']);
      usedPortNames.add(p['name']);
    }
  }
  let metricsPort = config.sidecarMetricsPort;
  while (usedPorts.has(metricsPort)) metricsPort++;
  if (metricsPort > 65535) {
    problems.push(`no free port at or above ${config.sidecarMetricsPort} for the sidecar's metrics`);
    return notInjectable(problems.join('; '));
  }

  // One contract: what the sidecar would refuse at start is refused here, by the sidecar's own checks, on the
  // exact args and env about to be injected (the pod identity arrives later, from the downward API).
  const args = sidecarArgs(config, options, metricsPort);
  const env = sidecarEnv(config);
  const literalEnv = Object.fromEntries(env.flatMap((e) => ('value' in e ? [[e.name, e.value]] : [])));
  for (const p of sidecarOptionProblems(args.slice(1), literalEnv)) problems.push(refusalOf(p, annotation));
  if (problems.length > 0) return notInjectable(problems.join('; '));

  const container = sidecarContainer(config, args, env, metricsPort, !usedPortNames.has(SIDECAR_PORT_NAME));
  const patch: JsonPatchOp[] = [];
  if (config.nativeSidecar) {
    // NOTE: appended after the pod's own init containers, so it starts once they have completed (it scrapes the
    // app, which only runs after them) and still before, and alongside, the app containers.
    const native = { ...container, restartPolicy: 'Always' };
    patch.push(initContainers ? { op: 'add', path: '/spec/initContainers/-', value: native } : { op: 'add', path: '/spec/initContainers', value: [native] });
  } else {
    patch.push({ op: 'add', path: '/spec/containers/-', value: container });
  }
  // NOTE: `add .../-` fails when the array is missing (pods with automountServiceAccountToken: false may have
  // no volumes), and that failure would reject the pod even with failurePolicy Ignore (docs/protocol.md#admission-webhook).
  const newVolumes = [podinfoVolume(), tokenVolume(config)];
  if (volumes) for (const v of newVolumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });
  else patch.push({ op: 'add', path: '/spec/volumes', value: newVolumes });
  if (!metadata) patch.push({ op: 'add', path: '/metadata', value: { annotations: { [INJECTED_ANNOTATION]: 'true' } } });
  else if (!isObj(metadata['annotations'])) patch.push({ op: 'add', path: '/metadata/annotations', value: { [INJECTED_ANNOTATION]: 'true' } });
  else patch.push({ op: 'add', path: `/metadata/annotations/${escapePointer(INJECTED_ANNOTATION)}`, value: 'true' });
  return { inject: true, patch };
}

/** The pod asked for the sidecar but cannot get it: no patch (never a rejection), and a warning saying why. */
function notInjectable(why: string): InjectionDecision {
  return { inject: false, reason: why, warning: `metrics-relay: sidecar not injected: ${why}` };
}

const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } });

/** The container's args: `sidecar` and its flags. Without a valid target, the sidecar's default stands in. */
function sidecarArgs(config: InjectionConfig, o: PodScrapeOptions, metricsPort: number): string[] {
  return [
    'sidecar',
    ...(o.target !== undefined ? ['--target', o.target] : []),
    '--aggregator', config.aggregatorAddress,
    '--interval', o.interval,
    '--metrics', o.metrics,
    '--pod-labels-file', `${PODINFO_DIR}/labels`,
    '--token-file', `${TOKEN_DIR}/token`,
    ...(config.caConfigMap ? ['--ca-file', `${TOKEN_DIR}/ca.crt`] : []),
    '--metrics-port', String(metricsPort),
  ];
}

type EnvVar = { name: string; value: string } | { name: string; valueFrom: Obj };

/**
 * The container's env. NOTE: identity through the downward API, resolved by the kubelet: at admission a
 * controller-made pod has no name and no uid yet.
 */
function sidecarEnv(config: InjectionConfig): EnvVar[] {
  return [
    fieldEnv('RELAY_POD_NAME', 'metadata.name'),
    fieldEnv('RELAY_POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('RELAY_POD_UID', 'metadata.uid'),
    ...(!config.caConfigMap && config.caPem ? [{ name: 'RELAY_CA_PEM', value: config.caPem }] : []),
  ];
}

function sidecarContainer(config: InjectionConfig, args: string[], env: EnvVar[], metricsPort: number, namePort: boolean): Obj {
  const securityContext: Obj = {
    runAsNonRoot: true,
    ...(config.runAsUser !== undefined ? { runAsUser: config.runAsUser, runAsGroup: config.runAsUser } : {}),
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    // NOTE: Pod Security "restricted" also requires a seccomp profile, and it is checked after this webhook.
    seccompProfile: { type: 'RuntimeDefault' },
  };
  return {
    name: SIDECAR_CONTAINER_NAME,
    image: config.image,
    ...(config.imagePullPolicy ? { imagePullPolicy: config.imagePullPolicy } : {}),
    args,
    env,
    ports: [{ ...(namePort ? { name: SIDECAR_PORT_NAME } : {}), containerPort: metricsPort, protocol: 'TCP' }],
    // NOTE: CPU and memory requests are required: HPA utilization metrics fail for pods with a container
    // lacking them (docs/protocol.md#admission-webhook).
    resources: { requests: { ...config.resources.requests }, limits: { ...config.resources.limits } },
    securityContext,
    volumeMounts: [
      { name: PODINFO_VOLUME, mountPath: PODINFO_DIR, readOnly: true },
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
    ],
  };
}

function podinfoVolume(): Obj {
  return { name: PODINFO_VOLUME, downwardAPI: { items: [{ path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } }] } };
}

function tokenVolume(config: InjectionConfig): Obj {
  const sources: Obj[] = [{ serviceAccountToken: { audience: INGEST_AUDIENCE, expirationSeconds: 3600, path: 'token' } }];
  if (config.caConfigMap) sources.push({ configMap: { name: config.caConfigMap, items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true } });
  return { name: TOKEN_VOLUME, projected: { sources } };
}
