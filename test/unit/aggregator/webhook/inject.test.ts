import { describe, expect, it } from 'vitest';
import jsonpatch from 'fast-json-patch';
import {
  decideInjection,
  escapePointer,
  INJECTED_ANNOTATION,
  SIDECAR_CONTAINER_NAME,
  type InjectionDecision,
  type JsonPatchOp,
} from '../../../../aggregator/src/webhook/inject.js';
import { injectionConfig, replicaSetPod } from '../../../helpers/webhook-fixtures.js';

type Pod = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function withAnnotations(pod: Pod, annotations: Record<string, string>): Pod {
  pod.metadata.annotations = { ...pod.metadata.annotations, ...annotations };
  return pod;
}

function patchOf(d: InjectionDecision): JsonPatchOp[] {
  if (!d.inject) throw new Error(`expected an injection, got: ${d.reason}`);
  return d.patch;
}

/** Applies like the apiserver would (fails on a missing parent path or a bad index). */
function apply(pod: Pod, patch: JsonPatchOp[]): Pod {
  return jsonpatch.applyPatch(structuredClone(pod), patch as jsonpatch.Operation[], true, false).newDocument;
}

function sidecarOf(pod: Pod, where: 'containers' | 'initContainers' = 'containers'): Pod {
  const found = (pod.spec[where] as Pod[]).filter((c) => c.name === SIDECAR_CONTAINER_NAME);
  expect(found).toHaveLength(1);
  return found[0]!;
}

const flag = (c: Pod, name: string): string | undefined => {
  const i = (c.args as string[]).indexOf(name);
  return i < 0 ? undefined : c.args[i + 1];
};

describe('decideInjection: the patch', () => {
  it('pod with volumes and no annotations: appends the container and volumes, creates the annotation map', () => {
    const pod = replicaSetPod();
    const patch = patchOf(decideInjection(pod, 'namespace', injectionConfig));
    expect(patch.map((op) => [op.op, op.path])).toEqual([
      ['add', '/spec/containers/-'],
      ['add', '/spec/volumes/-'],
      ['add', '/spec/volumes/-'],
      ['add', '/metadata/annotations'],
    ]);
    expect(patch[3]!.value).toEqual({ [INJECTED_ANNOTATION]: 'true' });

    const out = apply(pod, patch);
    expect(out.spec.containers.map((c: Pod) => c.name)).toEqual(['app', SIDECAR_CONTAINER_NAME]);
    expect(out.spec.volumes.map((v: Pod) => v.name)).toEqual(['kube-api-access-x2c4m', 'metrics-relay-podinfo', 'metrics-relay-token']);
    expect(out.metadata.annotations).toEqual({ 'metrics-relay.io/injected': 'true' });
  });

  it('builds the sidecar container exactly', () => {
    const out = apply(replicaSetPod(), patchOf(decideInjection(replicaSetPod(), 'namespace', injectionConfig)));
    expect(sidecarOf(out)).toEqual({
      name: 'metrics-relay-sidecar',
      image: 'registry.example.com/metrics-relay:0.1.0',
      args: [
        'sidecar',
        '--target', 'http://127.0.0.1:8080/metrics',
        '--aggregator', 'metrics-relay-ingest.metrics-system.svc:9443',
        '--interval', '5s',
        '--metrics', 'cm_*',
        '--pod-labels-file', '/etc/metrics-relay/podinfo/labels',
        '--token-file', '/var/run/secrets/metrics-relay/token',
        '--ca-file', '/var/run/secrets/metrics-relay/ca.crt',
        '--metrics-port', '9091',
      ],
      env: [
        { name: 'RELAY_POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
        { name: 'RELAY_POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
        { name: 'RELAY_POD_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } },
      ],
      ports: [{ name: 'relay-metrics', containerPort: 9091, protocol: 'TCP' }],
      resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
      volumeMounts: [
        { name: 'metrics-relay-podinfo', mountPath: '/etc/metrics-relay/podinfo', readOnly: true },
        { name: 'metrics-relay-token', mountPath: '/var/run/secrets/metrics-relay', readOnly: true },
      ],
    });
  });

  it('builds the downwardAPI labels volume and the projected token + CA volume', () => {
    const out = apply(replicaSetPod(), patchOf(decideInjection(replicaSetPod(), 'namespace', injectionConfig)));
    expect(out.spec.volumes[1]).toEqual({
      name: 'metrics-relay-podinfo',
      downwardAPI: { items: [{ path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } }] },
    });
    expect(out.spec.volumes[2]).toEqual({
      name: 'metrics-relay-token',
      projected: {
        sources: [
          { serviceAccountToken: { audience: 'metrics-relay', expirationSeconds: 3600, path: 'token' } },
          { configMap: { name: 'metrics-relay-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true } },
        ],
      },
    });
  });

  it('without caConfigMap: no CA source and no --ca-file', () => {
    const { caConfigMap: _omit, ...noCa } = injectionConfig;
    const out = apply(replicaSetPod(), patchOf(decideInjection(replicaSetPod(), 'namespace', noCa)));
    expect(sidecarOf(out).args).not.toContain('--ca-file');
    expect(out.spec.volumes[2].projected.sources).toEqual([{ serviceAccountToken: { audience: 'metrics-relay', expirationSeconds: 3600, path: 'token' } }]);
  });

  it('uses configured image pull policy and resources', () => {
    const custom = { ...injectionConfig, imagePullPolicy: 'Always', resources: { requests: { cpu: '20m', memory: '40Mi' }, limits: { cpu: '100m', memory: '80Mi' } } };
    const c = sidecarOf(apply(replicaSetPod(), patchOf(decideInjection(replicaSetPod(), 'namespace', custom))));
    expect(c.imagePullPolicy).toBe('Always');
    expect(c.resources).toEqual({ requests: { cpu: '20m', memory: '40Mi' }, limits: { cpu: '100m', memory: '80Mi' } });
  });

  it('pod with no volumes at all (automountServiceAccountToken: false): creates spec.volumes', () => {
    const pod = replicaSetPod();
    pod.spec.automountServiceAccountToken = false;
    delete pod.spec.volumes;
    delete pod.spec.containers[0].volumeMounts;
    const patch = patchOf(decideInjection(pod, 'namespace', injectionConfig));
    expect(patch[1]).toMatchObject({ op: 'add', path: '/spec/volumes' });
    expect(patch.filter((op) => op.path === '/spec/volumes/-')).toEqual([]);
    const out = apply(pod, patch);
    expect(out.spec.volumes.map((v: Pod) => v.name)).toEqual(['metrics-relay-podinfo', 'metrics-relay-token']);
    // The naive append is exactly what would fail (and fail the pod creation, docs/protocol.md#admission-webhook).
    expect(() => apply(pod, [{ op: 'add', path: '/spec/volumes/-', value: {} }])).toThrow();
  });

  it('pod with annotations: adds one key, escaping "/" as ~1', () => {
    const pod = withAnnotations(replicaSetPod(), { 'metrics-relay.io/inject': 'true', 'other.example/x': 'y' });
    const patch = patchOf(decideInjection(pod, 'pod', injectionConfig));
    expect(patch.at(-1)).toEqual({ op: 'add', path: '/metadata/annotations/metrics-relay.io~1injected', value: 'true' });
    const out = apply(pod, patch);
    expect(out.metadata.annotations).toEqual({ 'metrics-relay.io/inject': 'true', 'other.example/x': 'y', 'metrics-relay.io/injected': 'true' });
  });

  it('escapePointer escapes ~ before /', () => {
    expect(escapePointer('a~1/b')).toBe('a~01~1b');
    expect(escapePointer('metrics-relay.io/injected')).toBe('metrics-relay.io~1injected');
  });

  it('pod without metadata: creates it', () => {
    const pod = replicaSetPod();
    delete pod.metadata;
    const out = apply(pod, patchOf(decideInjection(pod, 'namespace', injectionConfig)));
    expect(out.metadata).toEqual({ annotations: { 'metrics-relay.io/injected': 'true' } });
  });

  it('generateName only: identity comes from the downward API, never from the admission-time object', () => {
    const pod = replicaSetPod();
    expect(pod.metadata.name).toBeUndefined();
    const patch = patchOf(decideInjection(pod, 'namespace', injectionConfig));
    const text = JSON.stringify(patch);
    expect(text).not.toContain('web-7d4b9c8f6b');
    expect(text).not.toContain('shop');
    const c = sidecarOf(apply(pod, patch));
    expect(c.env.map((e: Pod) => e.valueFrom.fieldRef.fieldPath)).toEqual(['metadata.name', 'metadata.namespace', 'metadata.uid']);
  });

  it('never modifies its input', () => {
    const pod = withAnnotations(replicaSetPod(), { 'metrics-relay.io/inject': 'true' });
    const before = structuredClone(pod);
    decideInjection(pod, 'pod', { ...injectionConfig, nativeSidecar: true });
    decideInjection(pod, 'namespace', injectionConfig);
    expect(pod).toEqual(before);
  });
});

describe('decideInjection: native sidecar', () => {
  const native = { ...injectionConfig, nativeSidecar: true };

  it('pod without initContainers: creates the array with a restartable init container', () => {
    const pod = replicaSetPod();
    const patch = patchOf(decideInjection(pod, 'namespace', native));
    expect(patch[0]).toMatchObject({ op: 'add', path: '/spec/initContainers' });
    const out = apply(pod, patch);
    expect(out.spec.containers.map((c: Pod) => c.name)).toEqual(['app']);
    expect(sidecarOf(out, 'initContainers').restartPolicy).toBe('Always');
  });

  it('pod with initContainers: appends after them', () => {
    const pod = replicaSetPod();
    pod.spec.initContainers = [{ name: 'migrate', image: 'busybox' }];
    const patch = patchOf(decideInjection(pod, 'namespace', native));
    expect(patch[0]).toMatchObject({ op: 'add', path: '/spec/initContainers/-' });
    const out = apply(pod, patch);
    expect(out.spec.initContainers.map((c: Pod) => c.name)).toEqual(['migrate', SIDECAR_CONTAINER_NAME]);
    expect(out.spec.initContainers[1].restartPolicy).toBe('Always');
  });
});

describe('decideInjection: opt-in and idempotency', () => {
  it('namespace scope without annotation: injects', () => {
    expect(decideInjection(replicaSetPod(), 'namespace', injectionConfig).inject).toBe(true);
  });

  it('pod scope without annotation: no patch, no warning', () => {
    expect(decideInjection(replicaSetPod(), 'pod', injectionConfig)).toEqual({ inject: false, reason: 'not opted in' });
  });

  it('pod scope with inject=true: injects', () => {
    expect(decideInjection(withAnnotations(replicaSetPod(), { 'metrics-relay.io/inject': 'true' }), 'pod', injectionConfig).inject).toBe(true);
  });

  it.each(['pod', 'namespace'] as const)('inject=false skips in %s scope', (scope) => {
    expect(decideInjection(withAnnotations(replicaSetPod(), { 'metrics-relay.io/inject': 'false' }), scope, injectionConfig)).toEqual({ inject: false, reason: 'opted out by annotation' });
  });

  it('mode node leaves the pod to the node agent; mode sidecar injects; another mode warns', () => {
    const annotated = (mode: string) => withAnnotations(replicaSetPod(), { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/mode': mode });
    expect(decideInjection(annotated('node'), 'pod', injectionConfig)).toEqual({ inject: false, reason: 'the pod asks for the node agent (metrics-relay.io/mode: node)' });
    expect(decideInjection(annotated('sidecar'), 'pod', injectionConfig).inject).toBe(true);
    expect(decideInjection(annotated('daemon'), 'pod', injectionConfig)).toMatchObject({ inject: false, warning: 'metrics-relay: sidecar not injected: annotation metrics-relay.io/mode must be "sidecar" or "node", got "daemon"' });
  });

  it('existing sidecar in containers: no patch', () => {
    const pod = replicaSetPod();
    pod.spec.containers.push({ name: SIDECAR_CONTAINER_NAME, image: 'x' });
    expect(decideInjection(pod, 'namespace', injectionConfig)).toEqual({ inject: false, reason: 'already injected' });
  });

  it('existing sidecar in initContainers: no patch (also when injecting into containers)', () => {
    const pod = replicaSetPod();
    pod.spec.initContainers = [{ name: SIDECAR_CONTAINER_NAME, image: 'x', restartPolicy: 'Always' }];
    expect(decideInjection(pod, 'namespace', injectionConfig)).toEqual({ inject: false, reason: 'already injected' });
    expect(decideInjection(pod, 'namespace', { ...injectionConfig, nativeSidecar: true })).toEqual({ inject: false, reason: 'already injected' });
  });

  it('already annotated injected: no patch', () => {
    const pod = withAnnotations(replicaSetPod(), { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/injected': 'true' });
    expect(decideInjection(pod, 'pod', injectionConfig)).toEqual({ inject: false, reason: 'already injected' });
  });

  it.each([false, true])('re-running on the patched pod yields no patch (nativeSidecar=%s)', (nativeSidecar) => {
    const cfg = { ...injectionConfig, nativeSidecar };
    const once = apply(replicaSetPod(), patchOf(decideInjection(replicaSetPod(), 'namespace', cfg)));
    expect(decideInjection(once, 'namespace', cfg)).toEqual({ inject: false, reason: 'already injected' });
    expect(decideInjection(once, 'namespace', { ...cfg, nativeSidecar: !nativeSidecar })).toEqual({ inject: false, reason: 'already injected' });
  });

  it.each([null, 'pod', 42, [], {}, { spec: {} }, { spec: { containers: [] } }, { metadata: 'x', spec: { containers: 'x' } }])('does not throw on a non-pod: %j', (obj) => {
    const d = decideInjection(obj, 'namespace', injectionConfig);
    expect(d.inject).toBe(false);
  });
});

describe('decideInjection: annotations become flags', () => {
  it('port, path, scheme, metrics and interval', () => {
    const pod = withAnnotations(replicaSetPod(), {
      'metrics-relay.io/inject': 'true',
      'metrics-relay.io/port': '9100',
      'metrics-relay.io/path': '/stats/prometheus',
      'metrics-relay.io/scheme': 'https',
      'metrics-relay.io/metrics': 'cm_*, http_requests_total',
      'metrics-relay.io/interval': '1s',
    });
    const c = sidecarOf(apply(pod, patchOf(decideInjection(pod, 'pod', injectionConfig))));
    expect(flag(c, '--target')).toBe('https://127.0.0.1:9100/stats/prometheus');
    expect(flag(c, '--metrics')).toBe('cm_*,http_requests_total');
    expect(flag(c, '--interval')).toBe('1s');
  });

  it('configured defaults for interval and metrics', () => {
    const c = sidecarOf(apply(replicaSetPod(), patchOf(decideInjection(replicaSetPod(), 'namespace', { ...injectionConfig, defaultInterval: '10s', defaultMetrics: 'app_*' }))));
    expect(flag(c, '--interval')).toBe('10s');
    expect(flag(c, '--metrics')).toBe('app_*');
  });

  it('default port is the first containerPort of the first container', () => {
    const pod = replicaSetPod();
    pod.spec.containers[0].ports = [{ containerPort: 3000 }, { containerPort: 3001 }];
    pod.spec.containers.push({ name: 'other', image: 'x', ports: [{ containerPort: 4000 }] });
    const c = sidecarOf(apply(pod, patchOf(decideInjection(pod, 'namespace', injectionConfig))));
    expect(flag(c, '--target')).toBe('http://127.0.0.1:3000/metrics');
  });

  it('no port annotation and no containerPort: warning, no patch', () => {
    const pod = replicaSetPod();
    delete pod.spec.containers[0].ports;
    expect(decideInjection(pod, 'namespace', injectionConfig)).toEqual({
      inject: false,
      reason: 'no annotation metrics-relay.io/port and the first container declares no containerPort',
      warning: 'metrics-relay: sidecar not injected: no annotation metrics-relay.io/port and the first container declares no containerPort',
    });
  });

  it.each([
    ['inject', 'yes', 'annotation metrics-relay.io/inject must be "true" or "false", got "yes"'],
    ['port', 'http', 'annotation metrics-relay.io/port must be a port number 1..65535, got "http"'],
    ['port', '0', 'annotation metrics-relay.io/port must be a port number 1..65535, got "0"'],
    ['port', '65536', 'annotation metrics-relay.io/port must be a port number 1..65535, got "65536"'],
    ['port', '80.5', 'annotation metrics-relay.io/port must be a port number 1..65535, got "80.5"'],
    ['path', 'metrics', 'annotation metrics-relay.io/path must start with "/" and contain no spaces, got "metrics"'],
    ['path', '/a b', 'annotation metrics-relay.io/path must start with "/" and contain no spaces, got "/a b"'],
    ['scheme', 'ftp', 'annotation metrics-relay.io/scheme must be "http" or "https", got "ftp"'],
    // From here on the sidecar's own checks, run on the args the webhook would inject.
    ['interval', '5', 'annotation metrics-relay.io/interval: --interval: "5" is not a duration (e.g. 500ms, 5s, 1m)'],
    ['interval', 'soon', 'annotation metrics-relay.io/interval: --interval: "soon" is not a duration (e.g. 500ms, 5s, 1m)'],
    ['interval', '0s', 'annotation metrics-relay.io/interval: --interval must be at least 100ms, got 0ms'],
    ['interval', '-1s', 'annotation metrics-relay.io/interval: --interval: "-1s" is not a duration (e.g. 500ms, 5s, 1m)'],
    ['interval', '25h', 'annotation metrics-relay.io/interval: --interval must be at most 24h, got 25h'],
    ['metrics', '', 'annotation metrics-relay.io/metrics: --metrics must name at least one metric or glob'],
    ['metrics', 'a b', 'annotation metrics-relay.io/metrics: --metrics: "a b" is not a metric name or glob (letters, digits, _ : * ?, not starting with a digit)'],
    ['metrics', '-x', 'annotation metrics-relay.io/metrics: --metrics: "-x" is not a metric name or glob (letters, digits, _ : * ?, not starting with a digit)'],
  ])('invalid %s=%j: allowed, no patch, warning', (key, value, why) => {
    const pod = withAnnotations(replicaSetPod(), { 'metrics-relay.io/inject': 'true', [`metrics-relay.io/${key}`]: value });
    expect(decideInjection(pod, 'pod', injectionConfig)).toEqual({ inject: false, reason: why, warning: `metrics-relay: sidecar not injected: ${why}` });
  });

  it('lists every problem in one warning', () => {
    const pod = withAnnotations(replicaSetPod(), { 'metrics-relay.io/port': 'x', 'metrics-relay.io/scheme': 'ftp' });
    const d = decideInjection(pod, 'namespace', injectionConfig);
    expect(d).toMatchObject({ inject: false });
    expect(!d.inject && d.warning).toBe(
      'metrics-relay: sidecar not injected: annotation metrics-relay.io/port must be a port number 1..65535, got "x"; annotation metrics-relay.io/scheme must be "http" or "https", got "ftp"',
    );
  });

  it.each(['scheme', 'metrics', 'interval'])('cuts long values short in the warning (%s)', (key) => {
    const pod = withAnnotations(replicaSetPod(), { 'metrics-relay.io/inject': 'true', [`metrics-relay.io/${key}`]: '.'.repeat(500) });
    const d = decideInjection(pod, 'pod', injectionConfig);
    expect(!d.inject && d.warning).toContain(`"${'.'.repeat(64)}…"`);
    expect(!d.inject && d.warning!.length).toBeLessThan(256);
  });

  it('a volume name the injector needs is taken: warning, no patch', () => {
    const pod = replicaSetPod();
    pod.spec.volumes.push({ name: 'metrics-relay-token', emptyDir: {} });
    const d = decideInjection(pod, 'namespace', injectionConfig);
    expect(d).toMatchObject({ inject: false, warning: 'metrics-relay: sidecar not injected: the pod already has a volume named metrics-relay-token' });
  });
});

describe('decideInjection: sidecar metrics port', () => {
  const metricsPort = (pod: Pod, cfg = injectionConfig) => {
    const c = sidecarOf(apply(pod, patchOf(decideInjection(pod, 'namespace', cfg))));
    expect(c.ports[0].containerPort).toBe(Number(flag(c, '--metrics-port')));
    return c.ports[0].containerPort as number;
  };

  it('defaults to 9091', () => {
    expect(metricsPort(replicaSetPod())).toBe(9091);
  });

  it('skips ports of every container and init container', () => {
    const pod = replicaSetPod();
    pod.spec.containers[0].ports = [{ containerPort: 9091 }];
    pod.spec.containers.push({ name: 'b', image: 'x', ports: [{ containerPort: 9092 }] });
    pod.spec.initContainers = [{ name: 'c', image: 'x', restartPolicy: 'Always', ports: [{ containerPort: 9093 }] }];
    expect(metricsPort(pod)).toBe(9094);
  });

  it('skips the app metrics port from the annotation even when undeclared', () => {
    const pod = withAnnotations(replicaSetPod(), { 'metrics-relay.io/port': '9091' });
    expect(metricsPort(pod)).toBe(9092);
  });

  it('uses the configured port', () => {
    expect(metricsPort(replicaSetPod(), { ...injectionConfig, sidecarMetricsPort: 19000 })).toBe(19000);
  });

  it('drops the port name when the pod already uses it', () => {
    const pod = replicaSetPod();
    pod.spec.containers[0].ports.push({ name: 'relay-metrics', containerPort: 7000 });
    const c = sidecarOf(apply(pod, patchOf(decideInjection(pod, 'namespace', injectionConfig))));
    expect(c.ports).toEqual([{ containerPort: 9091, protocol: 'TCP' }]);
  });
});
