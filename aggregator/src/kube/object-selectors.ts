import type { Selector } from '../selector.js';
import { notFound, unavailable } from '../errors.js';

/** A namespaced kind whose objects select pods, as named in API paths (group-qualified plural). */
export interface ObjectKind {
  resource: string;
  kind: string;
  apiVersion: string;
}

export const OBJECT_KINDS: readonly ObjectKind[] = [
  { resource: 'services', kind: 'Service', apiVersion: 'v1' },
  { resource: 'deployments.apps', kind: 'Deployment', apiVersion: 'apps/v1' },
  { resource: 'statefulsets.apps', kind: 'StatefulSet', apiVersion: 'apps/v1' },
  { resource: 'replicasets.apps', kind: 'ReplicaSet', apiVersion: 'apps/v1' },
  { resource: 'daemonsets.apps', kind: 'DaemonSet', apiVersion: 'apps/v1' },
  { resource: 'jobs.batch', kind: 'Job', apiVersion: 'batch/v1' },
];
export const POD_KIND: ObjectKind = { resource: 'pods', kind: 'Pod', apiVersion: 'v1' };

/** Resolves objects that select pods. Implemented by the Kubernetes informers (objects.ts), or by the standalone convention. */
export interface ObjectSelectors {
  /**
   * The pod selector of one object. Throws ApiError: NotFound when the object does not exist, ServiceUnavailable
   * when the cache cannot answer.
   */
  podSelector(kind: ObjectKind, namespace: string, name: string): Selector;
  /** Names of the objects of a kind in a namespace whose own labels match `selector`. Throws ApiError likewise. */
  list(kind: ObjectKind, namespace: string, selector: Selector): string[];
}

/** The pods of a namespace, as the standalone convention reads their labels (the store implements it). */
export interface PodLabelSource {
  podsIn(namespace: string): Iterable<{ readonly labels: Readonly<Record<string, string>> }>;
}

/** Object resolution for --standalone: no Kubernetes API, so objects are found by the pod-label convention. */
export function standaloneSelectors(pods: PodLabelSource, parse: (s: string) => Selector): ObjectSelectors {
  const LABELS = ['app.kubernetes.io/name', 'app'];
  const selectorFor = (namespace: string, name: string): Selector | undefined => {
    for (const label of LABELS) {
      for (const pod of pods.podsIn(namespace)) if (pod.labels[label] === name) return parse(`${label}=${name}`);
    }
    return undefined;
  };
  return {
    podSelector(kind, namespace, name) {
      const sel = selectorFor(namespace, name);
      if (sel) return sel;
      throw notFound(`${kind.resource} ${name} in namespace ${namespace}: in --standalone mode there is no Kubernetes API to read its selector; an object named N is taken to select the pods labelled app.kubernetes.io/name=N or app=N, and no reporting pod in ${namespace} carries such a label`);
    },
    list(kind) {
      throw unavailable(`listing ${kind.resource} needs the Kubernetes API, which --standalone mode does not use; ask for one object by name`);
    },
  };
}
