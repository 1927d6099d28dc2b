import { INJECTION_DEFAULTS, type InjectionConfig } from '../../aggregator/src/webhook/inject.js';

// Shared by the injector's unit tests and the webhook's HTTP tests.

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const injectionConfig: InjectionConfig = {
  ...INJECTION_DEFAULTS,
  image: 'registry.example.com/metrics-relay:0.1.0',
  aggregatorAddress: 'metrics-relay-ingest.metrics-system.svc:9443',
  caConfigMap: 'metrics-relay-ca',
};

/** A pod as a ReplicaSet creates it (generateName only, ServiceAccount volume; docs/protocol.md#admission-webhook), with a port. */
export function replicaSetPod(): Json {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      generateName: 'web-7d4b9c8f6b-',
      namespace: 'shop',
      creationTimestamp: null,
      labels: { app: 'web', 'pod-template-hash': '7d4b9c8f6b' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9c8f6b', uid: '9a1e', controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      volumes: [{ name: 'kube-api-access-x2c4m', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } }],
      containers: [
        {
          name: 'app',
          image: 'nginx:1.27',
          ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
          resources: { requests: { cpu: '250m', memory: '128Mi' } },
          volumeMounts: [{ name: 'kube-api-access-x2c4m', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      restartPolicy: 'Always',
      serviceAccountName: 'default',
    },
    status: {},
  };
}
