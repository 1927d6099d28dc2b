import CircuitBreaker from 'opossum';
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  type Informer,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
  type V1LabelSelector,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { parseSelector, type Selector } from '../selector.js';
import { notFound, unavailable } from '../errors.js';
import { OBJECT_KINDS, POD_KIND, type ObjectKind, type ObjectSelectors } from './object-selectors.js';
import type { AggregatorMetrics } from '../self-metrics.js';
import { kubeBreaker } from './reviews.js';

type Obj = KubernetesObject & { spec?: { selector?: unknown } };

interface Watched {
  kind: ObjectKind;
  informer: Informer<Obj> & ObjectCache<Obj>;
  synced: boolean;
  breaker: CircuitBreaker;
}

export interface KubeObjects extends ObjectSelectors {
  /** Where a pod runs (uid, spec.nodeName): from the pod informer, else one GET; undefined when there is no such pod. */
  placement(namespace: string, name: string): Promise<{ uid: string; nodeName: string } | undefined>;
  /** Undefined when every informer has listed once, else which have not. */
  notReadyReason(): string | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Loads the kubeconfig: --kubeconfig when given, else in-cluster, else the default chain. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

/**
 * Informer-backed object reads for Object metrics: Services, Deployments, StatefulSets, ReplicaSets, DaemonSets,
 * Jobs, and Pods (a pod deletion removes its series at once). Every LIST goes through an opossum breaker; while
 * one is open the informer keeps serving its last good cache, and a cache never filled answers 503 naming it.
 */
export function createKubeObjects(kc: KubeConfig, opts: { logger: Logger; metrics: AggregatorMetrics; onPodDeleted: (namespace: string, name: string, uid: string) => void }): KubeObjects {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const lists: Record<string, [string, () => Promise<KubernetesListObject<Obj>>]> = {
    services: ['/api/v1/services', () => core.listServiceForAllNamespaces() as Promise<KubernetesListObject<Obj>>],
    'deployments.apps': ['/apis/apps/v1/deployments', () => apps.listDeploymentForAllNamespaces() as Promise<KubernetesListObject<Obj>>],
    'statefulsets.apps': ['/apis/apps/v1/statefulsets', () => apps.listStatefulSetForAllNamespaces() as Promise<KubernetesListObject<Obj>>],
    'replicasets.apps': ['/apis/apps/v1/replicasets', () => apps.listReplicaSetForAllNamespaces() as Promise<KubernetesListObject<Obj>>],
    'daemonsets.apps': ['/apis/apps/v1/daemonsets', () => apps.listDaemonSetForAllNamespaces() as Promise<KubernetesListObject<Obj>>],
    'jobs.batch': ['/apis/batch/v1/jobs', () => batch.listJobForAllNamespaces() as Promise<KubernetesListObject<Obj>>],
  };
  const watched = new Map<string, Watched>();
  const all: Watched[] = [];
  const watch = (kind: ObjectKind, path: string, list: () => Promise<KubernetesListObject<Obj>>): Watched => {
    const breaker = new CircuitBreaker(list, { timeout: 10_000, errorThresholdPercentage: 50, resetTimeout: 10_000, volumeThreshold: 3, name: `kube-list-${kind.resource}` });
    const state = (v: number) => () => opts.metrics.breakerState.set({ breaker: breaker.name }, v);
    breaker.on('open', state(2));
    breaker.on('halfOpen', state(1));
    breaker.on('close', state(0));
    state(0)();
    const w: Watched = { kind, informer: makeInformer<Obj>(kc, path, () => breaker.fire() as Promise<KubernetesListObject<Obj>>), synced: false, breaker };
    w.informer.on('connect', () => {
      if (!w.synced) opts.logger.info({ resource: kind.resource }, 'object cache synced');
      w.synced = true;
    });
    w.informer.on('error', (err) => opts.logger.warn({ resource: kind.resource, err: String(err) }, 'object watch failed; serving the last good cache while it reconnects'));
    all.push(w);
    return w;
  };
  for (const kind of OBJECT_KINDS) {
    const [path, list] = lists[kind.resource]!;
    watched.set(kind.resource, watch(kind, path, list));
  }
  const pods = watch(POD_KIND, '/api/v1/pods', () => core.listPodForAllNamespaces() as Promise<KubernetesListObject<Obj>>);
  pods.informer.on('delete', (pod) => opts.onPodDeleted(pod.metadata?.namespace ?? '', pod.metadata?.name ?? '', pod.metadata?.uid ?? ''));

  // NOTE: a pod that does not exist is an answer, not a failure of the API (it must not open the breaker).
  const readPod = kubeBreaker('kube-get-pod', (namespace: string, name: string) => core.readNamespacedPod({ namespace, name }).catch((err: { code?: number }) => (err.code === 404 ? undefined : Promise.reject(err as Error))), opts.metrics);

  const cacheOf = (kind: ObjectKind): Watched => {
    const w = watched.get(kind.resource)!;
    if (!w.synced && w.informer.list().length === 0) {
      const open = w.breaker.opened ? ` (breaker ${w.breaker.name} is open)` : '';
      throw unavailable(`the object cache for ${kind.resource} has not been filled from the Kubernetes API yet${open}`);
    }
    return w;
  };

  return {
    podSelector(kind, namespace, name) {
      const obj = cacheOf(kind).informer.get(name, namespace);
      if (!obj) throw notFound(`${kind.resource} "${name}" not found in namespace ${namespace}`);
      const sel = selectorOf(kind, obj);
      if (!sel) throw notFound(`${kind.resource} "${name}" in namespace ${namespace} has no pod selector, so it selects no pods`);
      return sel;
    },
    list(kind, namespace, selector) {
      return cacheOf(kind)
        .informer.list(namespace)
        .filter((o) => selector.matches(o.metadata?.labels ?? {}))
        .map((o) => o.metadata!.name!);
    },
    async placement(namespace, name) {
      let pod = pods.informer.get(name, namespace) as { metadata?: { uid?: string }; spec?: { nodeName?: string } } | undefined;
      // NOTE: a pod created a moment ago may not have reached the informer yet.
      if (!pod) pod = await readPod(namespace, name);
      return pod ? { uid: pod.metadata?.uid ?? '', nodeName: pod.spec?.nodeName ?? '' } : undefined;
    },
    notReadyReason() {
      const waiting = all.filter((w) => !w.synced).map((w) => w.kind.resource);
      return waiting.length === 0 ? undefined : `object caches not synced yet: ${waiting.join(', ')}`;
    },
    async start() {
      // NOTE: start() resolves after the first LIST; a failing API must not block startup, so do not await.
      for (const w of all) w.informer.start().catch((err) => opts.logger.warn({ resource: w.kind.resource, err: String(err) }, 'initial list failed; retrying'));
    },
    async stop() {
      await Promise.allSettled(all.map((w) => w.informer.stop()));
      for (const w of all) w.breaker.shutdown();
    },
  };
}

/** Pod selector of an object: a Service's map, or a workload's metav1.LabelSelector. */
export function selectorOf(kind: ObjectKind, obj: Obj): Selector | undefined {
  const raw = obj.spec?.selector;
  if (!raw || typeof raw !== 'object') return undefined;
  if (kind.resource === 'services') {
    const entries = Object.entries(raw as Record<string, string>);
    return entries.length === 0 ? undefined : parseSelector(entries.map(([k, v]) => `${k}=${v}`).join(','));
  }
  const ls = raw as V1LabelSelector;
  const parts = Object.entries(ls.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of ls.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  // NOTE: an empty LabelSelector on a workload selects every pod in the namespace (metav1 semantics).
  return parseSelector(parts.join(','));
}
