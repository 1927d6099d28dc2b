import { inject, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAllYaml } from '@kubernetes/client-node';
import { loadAggregatorConfig } from '../../aggregator/src/config.js';
import { compileRules } from '../../aggregator/src/rules.js';
import { ROOT } from '../helpers/processes.js';

// The Helm chart, rendered by a real helm: lint, `helm template` for each mode, the objects' contents, schema
// errors for bad values, and that a render is stable (nothing random, nothing looked up). The e2e suite
// (test/e2e/chart.test.ts) additionally has a real kube-apiserver validate and install the chart.

const run = promisify(execFile);
const CHART = join(ROOT, 'charts/metrics-relay');
const NS = 'metrics-relay';

const helmBin = (): string => join(inject('k8sBinDir'), 'helm');

// ---- rendering and reading the output --------------------------------------------------------------------------

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Rendered {
  raw: string;
  objs: Obj[];
  /** Every object of a kind. */
  all(kind: string): Obj[];
  /** The one object of that kind (and name); fails when there is not exactly one. */
  one(kind: string, name?: string): Obj;
}

/**
 * Splits helm's output at its document markers and parses each document with @kubernetes/client-node's YAML
 * loader (js-yaml), so assertions run on real objects rather than on text.
 */
function parse(raw: string): Rendered {
  const objs: Obj[] = [];
  for (const doc of raw.split(/^---[ \t]*$/m)) {
    if (doc.split('\n').every((l) => l.trim() === '' || l.trim().startsWith('#'))) continue;
    const loaded = loadAllYaml(doc) as Obj[];
    expect(loaded, doc).toHaveLength(1);
    objs.push(JSON.parse(JSON.stringify(loaded[0])) as Obj);
  }
  const all = (kind: string): Obj[] => objs.filter((o) => o['kind'] === kind);
  const one = (kind: string, name?: string): Obj => {
    const m = all(kind).filter((o) => name === undefined || o['metadata']['name'] === name);
    expect(m.map((o) => o['metadata']['name']), `exactly one ${kind}${name ? ` ${name}` : ''}`).toHaveLength(1);
    return m[0]!;
  };
  return { raw, objs, all, one };
}

async function helm(args: string[], env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return run(helmBin(), args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
}

async function template(sets: string[] = [], opts: { release?: string; namespace?: string; extra?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Rendered> {
  const args = ['template', opts.release ?? 'metrics-relay', CHART, '--namespace', opts.namespace ?? NS, ...sets.flatMap((s) => ['--set', s]), ...(opts.extra ?? [])];
  return parse((await helm(args, opts.env)).stdout);
}

/** The stderr of a render that must fail. */
async function templateError(...sets: string[]): Promise<string> {
  return helm(['template', 'metrics-relay', CHART, '--namespace', NS, ...sets.flatMap((s) => ['--set', s])]).then(
    (r) => {
      throw new Error(`expected the render to fail for ${sets.join(' ')}; it rendered ${r.stdout.length} bytes`);
    },
    (e: { stderr?: string }) => {
      if (typeof e.stderr !== 'string') throw e;
      return e.stderr;
    },
  );
}

const EXISTING_SECRET = ['tls.existingSecret=corp-tls', 'tls.caBundle=Zm9vCg=='];
const OUT_OF_CLUSTER = ['outOfCluster.enabled=true', 'outOfCluster.address=127.0.0.1', 'outOfCluster.apiPort=7443', 'outOfCluster.caBundle=Zm9vCg=='];
const configOfArgs = (args: string[]) => loadAggregatorConfig(args.slice(1), {});
const container = (r: Rendered): Obj => r.one('Deployment')['spec']['template']['spec']['containers'][0];
const env = (c: Obj, name: string): Obj | undefined => (c['env'] as Obj[] | undefined)?.find((e) => e['name'] === name);

// ---------------------------------------------------------------------------------------------------------------

it('finds a helm binary ($HELM, ~/.cache/metrics-relay/k8s-*/bin/helm or PATH)', async () => {
  const { stdout } = await helm(['version', '--short']);
  expect(stdout).toMatch(/^v\d+\.\d+\.\d+/);
});

describe('helm lint', () => {
  for (const [what, sets] of [
    ['defaults', []],
    ['externalMetrics.enabled', ['externalMetrics.enabled=true']],
    ['certManager.enabled', ['certManager.enabled=true']],
    ['outOfCluster.enabled', OUT_OF_CLUSTER],
    ['mode=node', ['mode=node']],
    ['mode=both', ['mode=both']],
  ] as const) {
    it(`passes with ${what} (--strict)`, async () => {
      const { stdout } = await helm(['lint', '--strict', CHART, ...sets.flatMap((s) => ['--set', s])]);
      expect(stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    });
  }
});

describe('defaults', () => {
  let r: Rendered;
  beforeAll(async () => {
    r = await template();
  });

  it('renders the aggregator, its Services, RBAC, TLS Secret and Lease, two custom-metrics APIServices, the webhook and a test Pod', () => {
    const kinds = r.objs.map((o) => `${o['kind']}/${o['metadata']['name']}`).sort();
    expect(kinds).toEqual([
      'APIService/v1beta1.custom.metrics.k8s.io',
      'APIService/v1beta2.custom.metrics.k8s.io',
      'ClusterRole/metrics-relay-metrics-reader',
      'ClusterRole/metrics-relay-object-reader',
      'ClusterRole/metrics-relay-tls',
      'ClusterRoleBinding/metrics-relay-hpa-metrics-reader',
      'ClusterRoleBinding/metrics-relay-object-reader',
      'ClusterRoleBinding/metrics-relay-tls',
      'ClusterRoleBinding/metrics-relay:system:auth-delegator',
      'ConfigMap/metrics-relay-rules',
      'Deployment/metrics-relay',
      'Lease/metrics-relay-tls-leader',
      'MutatingWebhookConfiguration/metrics-relay-injector',
      'Pod/metrics-relay-test-api',
      'PodDisruptionBudget/metrics-relay',
      'Role/metrics-relay-tls',
      'RoleBinding/metrics-relay-auth-reader',
      'RoleBinding/metrics-relay-tls',
      'Secret/metrics-relay-tls',
      'Service/metrics-relay',
      'Service/metrics-relay-ingest',
      'ServiceAccount/metrics-relay',
    ]);
  });

  it('labels every object with the standard labels', () => {
    for (const o of r.objs) {
      expect(o['metadata']['labels'], `${o['kind']}/${o['metadata']['name']}`).toMatchObject({
        'helm.sh/chart': 'metrics-relay-0.1.0',
        'app.kubernetes.io/name': 'metrics-relay',
        'app.kubernetes.io/instance': 'metrics-relay',
        'app.kubernetes.io/version': '0.1.0',
        'app.kubernetes.io/managed-by': 'Helm',
      });
    }
  });

  it('registers v1beta2 (preferred) and v1beta1 without a caBundle (the aggregator writes it), never insecureSkipTLSVerify, and no external metrics', () => {
    expect(r.raw).not.toContain('insecureSkipTLSVerify');
    expect(r.raw).not.toMatch(/^\s*caBundle:/m);
    const specs = Object.fromEntries(r.all('APIService').map((a) => [a['metadata']['name'], a['spec']]));
    expect(specs).toEqual({
      'v1beta2.custom.metrics.k8s.io': { group: 'custom.metrics.k8s.io', version: 'v1beta2', groupPriorityMinimum: 100, versionPriority: 200, service: { name: 'metrics-relay', namespace: NS, port: 443 } },
      'v1beta1.custom.metrics.k8s.io': { group: 'custom.metrics.k8s.io', version: 'v1beta1', groupPriorityMinimum: 100, versionPriority: 100, service: { name: 'metrics-relay', namespace: NS, port: 443 } },
    });
    expect(r.raw).not.toContain('external.metrics.k8s.io/v1beta1');
  });

  it('exposes the APIServices\' port 443 on the Service, named like the container port its endpoints get', () => {
    const svc = r.one('Service', 'metrics-relay');
    expect(svc['spec']['type']).toBe('ClusterIP');
    expect(svc['spec']['ports']).toEqual([{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
    expect(svc['spec']['selector']).toEqual(r.one('Deployment')['spec']['selector']['matchLabels']);
    expect(container(r)['ports']).toContainEqual({ name: 'https', containerPort: 6443, protocol: 'TCP' });
    const headless = r.one('Service', 'metrics-relay-ingest');
    expect(headless['spec']).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true, ports: [{ name: 'grpc', port: 9443, targetPort: 'grpc', protocol: 'TCP' }] });
    expect(container(r)['ports']).toContainEqual({ name: 'grpc', containerPort: 9443, protocol: 'TCP' });
  });

  it('managed TLS: renders an empty Secret and a Lease for the aggregator to fill, and nothing random', () => {
    const secret = r.one('Secret', 'metrics-relay-tls');
    expect(secret['type']).toBe('Opaque');
    expect(secret['data']).toBeUndefined();
    expect(r.one('Lease', 'metrics-relay-tls-leader')['spec']).toEqual({});
    expect(r.raw).not.toMatch(/BEGIN CERTIFICATE|LS0tLS1CRUdJTi/);
  });

  it('runs 2 hardened replicas spread over nodes, probed on the metrics port, with every flag the aggregator needs', () => {
    const dep = r.one('Deployment');
    expect(dep['spec']['replicas']).toBe(2);
    expect(dep['spec']['strategy']).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const pod = dep['spec']['template']['spec'];
    expect(pod['serviceAccountName']).toBe('metrics-relay');
    expect(pod['securityContext']).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    expect(pod['affinity']['podAntiAffinity']['preferredDuringSchedulingIgnoredDuringExecution'][0]['podAffinityTerm']).toEqual({
      topologyKey: 'kubernetes.io/hostname',
      labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'metrics-relay', 'app.kubernetes.io/instance': 'metrics-relay' } },
    });
    const c = container(r);
    expect(c['image']).toBe('metrics-relay-aggregator:0.1.0');
    expect(c['securityContext']).toEqual({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c['resources']).toEqual({ requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } });
    expect(c['readinessProbe']['httpGet']).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c['livenessProbe']['httpGet']).toEqual({ path: '/livez', port: 'metrics' });
    expect(c['ports']).toContainEqual({ name: 'metrics', containerPort: 9090, protocol: 'TCP' });
    expect(c['args']).toEqual([
      'aggregator',
      '--api-port=6443',
      '--ingest-port=9443',
      '--metrics-port=9090',
      '--managed-tls-secret=metrics-relay/metrics-relay-tls',
      '--managed-tls-lease=metrics-relay-tls-leader',
      `--managed-tls-hosts=${['metrics-relay', 'metrics-relay-ingest'].flatMap((n) => [n, `${n}.${NS}`, `${n}.${NS}.svc`, `${n}.${NS}.svc.cluster.local`]).join(',')}`,
      '--managed-tls-apiservices=v1beta2.custom.metrics.k8s.io,v1beta1.custom.metrics.k8s.io',
      '--managed-tls-webhooks=metrics-relay-injector',
      '--managed-tls-ca-validity=8760h',
      '--managed-tls-cert-validity=2160h',
      '--managed-tls-overlap=1h',
      '--config=/etc/metrics-relay/rules/rules.json',
      '--expire-after=10m',
      '--warmup=15s',
      '--max-series-per-pod=1000',
      '--max-series=2000000',
      '--max-message-bytes=4194304',
      '--log-level=info',
      '--inject-image=metrics-relay-sidecar:0.1.0',
      '--inject-image-pull-policy=IfNotPresent',
      '--inject-aggregator=metrics-relay-ingest.metrics-relay.svc:9443',
      '--inject-interval=5s',
      '--inject-metrics=cm_*',
      '--inject-cpu-request=10m',
      '--inject-memory-request=32Mi',
      '--inject-memory-limit=64Mi',
      '--inject-ca-configmap=metrics-relay-ca',
    ]);
    // Sidecars mount the CA ConfigMap the aggregator keeps current; no CA is frozen into them at admission.
    expect(c['env']).toBeUndefined();
    // The certificate is read from the Secret through the API: no volume that would hold the pod until it exists.
    const volumes = Object.fromEntries((pod['volumes'] as Obj[]).map((v) => [v['name'], v]));
    expect(Object.keys(volumes).sort()).toEqual(['rules', 'tmp']);
    expect(volumes['rules']['configMap']['name']).toBe('metrics-relay-rules');
    const mounts = Object.fromEntries((c['volumeMounts'] as Obj[]).map((m) => [m['name'], m['mountPath']]));
    expect(mounts).toEqual({ rules: '/etc/metrics-relay/rules', tmp: '/tmp' });
  });

  it('always renders the rules file, empty by default', () => {
    expect(JSON.parse(r.one('ConfigMap', 'metrics-relay-rules')['data']['rules.json'])).toEqual({ metrics: [] });
  });

  it('keeps one replica through disruptions', () => {
    expect(r.one('PodDisruptionBudget')['spec']).toEqual({ minAvailable: 1, selector: { matchLabels: { 'app.kubernetes.io/name': 'metrics-relay', 'app.kubernetes.io/instance': 'metrics-relay' } } });
  });

  it('grants auth delegation, the authentication ConfigMap, object reads, and the HPA controller the metrics APIs', () => {
    const sa = [{ kind: 'ServiceAccount', name: 'metrics-relay', namespace: NS }];
    const delegator = r.one('ClusterRoleBinding', 'metrics-relay:system:auth-delegator');
    expect(delegator['roleRef']).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' });
    expect(delegator['subjects']).toEqual(sa);
    const reader = r.one('RoleBinding', 'metrics-relay-auth-reader');
    expect(reader['metadata']['namespace']).toBe('kube-system');
    expect(reader['roleRef']).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'extension-apiserver-authentication-reader' });
    expect(reader['subjects']).toEqual(sa);

    const objects = r.one('ClusterRole', 'metrics-relay-object-reader')['rules'] as Obj[];
    const granted = objects.flatMap((rule) => (rule['apiGroups'] as string[]).flatMap((g) => (rule['resources'] as string[]).map((res) => `${res}.${g}:${(rule['verbs'] as string[]).join(',')}`))).sort();
    expect(granted).toEqual(
      ['pods.', 'services.', 'deployments.apps', 'statefulsets.apps', 'replicasets.apps', 'daemonsets.apps', 'jobs.batch'].map((x) => `${x}:get,list,watch`).sort(),
    );
    const objectsBinding = r.one('ClusterRoleBinding', 'metrics-relay-object-reader');
    expect(objectsBinding['roleRef']['name']).toBe('metrics-relay-object-reader');
    expect(objectsBinding['subjects']).toEqual(sa);

    expect(r.one('ClusterRole', 'metrics-relay-metrics-reader')['rules']).toEqual([
      { apiGroups: ['custom.metrics.k8s.io', 'external.metrics.k8s.io'], resources: ['*'], verbs: ['get', 'list', 'watch'] },
    ]);
    const hpa = r.one('ClusterRoleBinding', 'metrics-relay-hpa-metrics-reader');
    expect(hpa['roleRef']).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'metrics-relay-metrics-reader' });
    expect(hpa['subjects']).toEqual([{ kind: 'ServiceAccount', name: 'horizontal-pod-autoscaler', namespace: 'kube-system' }]);
  });

  it('grants managed TLS only its own Secret, Lease, APIServices, webhook and CA ConfigMaps by name, and ConfigMap create', () => {
    const sa = [{ kind: 'ServiceAccount', name: 'metrics-relay', namespace: NS }];
    const role = r.one('Role', 'metrics-relay-tls');
    expect(role['metadata']['namespace']).toBe(NS);
    expect(role['rules']).toEqual([
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['metrics-relay-tls'], verbs: ['get', 'list', 'watch', 'update'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['metrics-relay-tls-leader'], verbs: ['get', 'update'] },
    ]);
    expect(r.one('RoleBinding', 'metrics-relay-tls')).toMatchObject({ roleRef: { kind: 'Role', name: 'metrics-relay-tls' }, subjects: sa });
    expect(r.one('ClusterRole', 'metrics-relay-tls')['rules']).toEqual([
      { apiGroups: ['apiregistration.k8s.io'], resources: ['apiservices'], resourceNames: ['v1beta2.custom.metrics.k8s.io', 'v1beta1.custom.metrics.k8s.io'], verbs: ['get', 'update'] },
      { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['metrics-relay-injector'], verbs: ['get', 'update'] },
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['metrics-relay-ca'], verbs: ['get', 'list', 'watch', 'update'] },
      // RBAC cannot restrict create by name (see the chart README).
      { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
    ]);
    expect(r.one('ClusterRoleBinding', 'metrics-relay-tls')).toMatchObject({ roleRef: { kind: 'ClusterRole', name: 'metrics-relay-tls' }, subjects: sa });
  });

  it('registers the webhook twice: /mutate/namespace for opted-in namespaces, /mutate/pod elsewhere, failing open', () => {
    const hooks = r.one('MutatingWebhookConfiguration')['webhooks'] as Obj[];
    expect(hooks.map((w) => [w['name'], w['clientConfig']['service']['path']])).toEqual([
      ['namespace.inject.metrics-relay.io', '/mutate/namespace'],
      ['pod.inject.metrics-relay.io', '/mutate/pod'],
    ]);
    for (const w of hooks) {
      expect(w).toMatchObject({
        admissionReviewVersions: ['v1'],
        // It creates the CA ConfigMap in the pod's namespace, never on a dry run.
        sideEffects: 'NoneOnDryRun',
        failurePolicy: 'Ignore',
        timeoutSeconds: 5,
        reinvocationPolicy: 'IfNeeded',
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        objectSelector: {},
      });
      expect(Object.keys(w['clientConfig'])).toEqual(['service']);
      expect(w['clientConfig']['service']).toMatchObject({ name: 'metrics-relay', namespace: NS, port: 443 });
      expect(w['clientConfig']['service']['path']).not.toContain('?');
    }
    const [nsHook, podHook] = hooks;
    expect(nsHook!['namespaceSelector']).toEqual({
      matchExpressions: [
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NS] },
        { key: 'metrics-relay.io/inject', operator: 'In', values: ['enabled'] },
      ],
    });
    expect(podHook!['namespaceSelector']).toEqual({
      matchExpressions: [
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NS] },
        { key: 'metrics-relay.io/inject', operator: 'NotIn', values: ['enabled'] },
      ],
    });
    // Annotations cannot be selected on; a CEL condition spares the call for pods without the annotation.
    expect(nsHook!['matchConditions']).toBeUndefined();
    expect(podHook!['matchConditions']).toEqual([{ name: 'annotated', expression: "has(object.metadata.annotations) && 'metrics-relay.io/inject' in object.metadata.annotations" }]);
  });

  it('has a helm test Pod that GETs /readyz on the Service over TLS verified with the CA, in the aggregator image', () => {
    const pod = r.one('Pod', 'metrics-relay-test-api');
    expect(pod['metadata']['annotations']).toMatchObject({ 'helm.sh/hook': 'test' });
    const c = pod['spec']['containers'][0];
    expect(c['image']).toBe('metrics-relay-aggregator:0.1.0');
    expect(c['command']).toEqual(['node', '-e']);
    expect(c['args'][0]).toContain("'https://metrics-relay.metrics-relay.svc:443/readyz'");
    expect(c['args'][0]).toContain("readFileSync('/tls/ca.crt')");
    expect(pod['spec']['volumes']).toEqual([{ name: 'ca', secret: { secretName: 'metrics-relay-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }]);
  });

  it('renders byte-identical output every time, in every TLS mode (GitOps renderers run helm template on each sync)', async () => {
    expect((await template()).raw).toBe(r.raw);
    for (const sets of [['externalMetrics.enabled=true'], ['certManager.enabled=true'], EXISTING_SECRET, OUT_OF_CLUSTER, ['outOfCluster.enabled=true'], ['mode=node'], ['mode=both']]) {
      const [a, b] = await Promise.all([template(sets), template(sets)]);
      expect(a.raw, sets.join(' ')).toBe(b.raw);
    }
  });
});

describe('modes', () => {
  it('externalMetrics.enabled adds v1beta1.external.metrics.k8s.io, whose caBundle the aggregator may then write', async () => {
    const r = await template(['externalMetrics.enabled=true']);
    const ext = r.one('APIService', 'v1beta1.external.metrics.k8s.io');
    expect(ext['spec']).toEqual({
      group: 'external.metrics.k8s.io',
      version: 'v1beta1',
      groupPriorityMinimum: 100,
      versionPriority: 100,
      service: { name: 'metrics-relay', namespace: NS, port: 443 },
    });
    expect(r.all('APIService')).toHaveLength(3);
    const names = ['v1beta2.custom.metrics.k8s.io', 'v1beta1.custom.metrics.k8s.io', 'v1beta1.external.metrics.k8s.io'];
    expect(container(r)['args']).toContain(`--managed-tls-apiservices=${names.join(',')}`);
    expect(r.one('ClusterRole', 'metrics-relay-tls')['rules'][0]['resourceNames']).toEqual(names);
  });

  it('certManager.enabled: a CA Issuer chain and a Certificate into the same Secret, CA injected by annotation instead of a literal caBundle', async () => {
    const r = await template(['certManager.enabled=true', 'externalMetrics.enabled=true']);
    for (const kind of ['Secret', 'Lease', 'Role']) expect(r.all(kind), kind).toHaveLength(0);
    expect(r.all('ClusterRole').map((c) => c['metadata']['name'])).not.toContain('metrics-relay-tls');
    expect(r.raw).not.toMatch(/^\s*caBundle:/m);
    expect(r.raw).not.toContain('insecureSkipTLSVerify');
    const cert = r.one('Certificate', 'metrics-relay');
    expect(cert['apiVersion']).toBe('cert-manager.io/v1');
    expect(cert['spec']['secretName']).toBe('metrics-relay-tls');
    expect(cert['spec']['dnsNames']).toEqual(['metrics-relay', 'metrics-relay-ingest'].flatMap((s) => [s, `${s}.${NS}`, `${s}.${NS}.svc`, `${s}.${NS}.svc.cluster.local`]));
    expect(cert['spec']['issuerRef']).toEqual({ name: 'metrics-relay-ca', kind: 'Issuer', group: 'cert-manager.io' });
    expect(r.one('Issuer', 'metrics-relay-ca')['spec']).toEqual({ ca: { secretName: 'metrics-relay-ca' } });
    expect(r.one('Certificate', 'metrics-relay-ca')['spec']).toMatchObject({ isCA: true, secretName: 'metrics-relay-ca', issuerRef: { name: 'metrics-relay-selfsigned', kind: 'Issuer' } });
    expect(r.one('Issuer', 'metrics-relay-selfsigned')['spec']).toEqual({ selfSigned: {} });
    const injected = [...r.all('APIService'), r.one('MutatingWebhookConfiguration')];
    expect(injected).toHaveLength(4);
    for (const o of injected) expect(o['metadata']['annotations']).toEqual({ 'cert-manager.io/inject-ca-from': `${NS}/metrics-relay` });
    // The aggregator still mounts the Secret cert-manager writes, and hands its ca.crt to sidecars.
    expect(env(container(r), 'RELAY_INJECT_CA_BUNDLE')!['valueFrom']['secretKeyRef']['name']).toBe('metrics-relay-tls');
    expect(container(r)['args']).toContain('--tls-cert-file=/etc/metrics-relay/tls/tls.crt');
    expect((container(r)['args'] as string[]).filter((a) => a.startsWith('--managed-tls'))).toEqual([]);
  });

  it('tls.existingSecret: the user\'s Secret mounted and its CA (tls.caBundle) in every caBundle; nothing managed', async () => {
    const r = await template(EXISTING_SECRET);
    for (const kind of ['Secret', 'Lease', 'Role', 'Certificate']) expect(r.all(kind), kind).toHaveLength(0);
    for (const a of r.all('APIService')) expect(a['spec']['caBundle']).toBe('Zm9vCg==');
    for (const w of r.one('MutatingWebhookConfiguration')['webhooks'] as Obj[]) expect(w).toMatchObject({ sideEffects: 'None', clientConfig: { caBundle: 'Zm9vCg==' } });
    const c = container(r);
    expect(c['args']).toEqual(expect.arrayContaining(['--tls-cert-file=/etc/metrics-relay/tls/tls.crt', '--tls-key-file=/etc/metrics-relay/tls/tls.key']));
    expect(env(c, 'RELAY_INJECT_CA_BUNDLE')!['valueFrom']['secretKeyRef']).toEqual({ name: 'corp-tls', key: 'ca.crt', optional: true });
    const volumes = r.one('Deployment')['spec']['template']['spec']['volumes'] as Obj[];
    expect(volumes.find((v) => v['name'] === 'tls')!['secret']).toEqual({ secretName: 'corp-tls' });
    expect(r.one('Pod', 'metrics-relay-test-api')['spec']['volumes'][0]['secret']['secretName']).toBe('corp-tls');
  });

  it('certManager.issuerRef uses an existing issuer and creates none', async () => {
    const r = await template(['certManager.enabled=true', 'certManager.issuerRef.name=corp-ca', 'certManager.issuerRef.kind=ClusterIssuer']);
    expect(r.all('Issuer')).toHaveLength(0);
    expect(r.one('Certificate')['spec']['issuerRef']).toEqual({ name: 'corp-ca', kind: 'ClusterIssuer' });
  });

  it('outOfCluster.enabled: an ExternalName Service on the aggregator\'s port, the given CA, webhook URLs without a query, no workloads', async () => {
    const r = await template([...OUT_OF_CLUSTER, 'externalMetrics.enabled=true']);
    expect(r.one('Service')['spec']).toEqual({ type: 'ExternalName', externalName: '127.0.0.1', ports: [{ name: 'https', port: 7443, protocol: 'TCP' }] });
    const apis = r.all('APIService');
    expect(apis).toHaveLength(3);
    for (const a of apis) expect(a['spec']).toMatchObject({ service: { name: 'metrics-relay', namespace: NS, port: 7443 }, caBundle: 'Zm9vCg==' });
    const hooks = r.one('MutatingWebhookConfiguration')['webhooks'] as Obj[];
    expect(hooks.map((w) => w['clientConfig'])).toEqual([
      { url: 'https://127.0.0.1:7443/mutate/namespace', caBundle: 'Zm9vCg==' },
      { url: 'https://127.0.0.1:7443/mutate/pod', caBundle: 'Zm9vCg==' },
    ]);
    for (const kind of ['Deployment', 'PodDisruptionBudget', 'Secret', 'Lease', 'ConfigMap', 'Pod', 'Certificate']) expect(r.all(kind), kind).toHaveLength(0);
    expect(r.all('Service')).toHaveLength(1);
    // The local aggregator authenticates with the chart's ServiceAccount, so RBAC stays.
    expect(r.all('ServiceAccount')).toHaveLength(1);
    expect(r.all('ClusterRoleBinding').length).toBeGreaterThanOrEqual(3);
    expect(r.raw).not.toContain('insecureSkipTLSVerify');
  });

  it('outOfCluster.enabled without caBundle: managed TLS for a local aggregator (Secret, Lease, RBAC; no caBundle rendered)', async () => {
    const r = await template(['outOfCluster.enabled=true', 'outOfCluster.address=127.0.0.1', 'outOfCluster.apiPort=7443']);
    expect(r.one('Secret', 'metrics-relay-tls')['data']).toBeUndefined();
    r.one('Lease', 'metrics-relay-tls-leader');
    r.one('Role', 'metrics-relay-tls');
    expect(r.raw).not.toMatch(/^\s*caBundle:/m);
    expect(r.one('MutatingWebhookConfiguration')['webhooks'][0]['clientConfig']).toEqual({ url: 'https://127.0.0.1:7443/mutate/namespace' });
    expect(r.all('Deployment')).toHaveLength(0);
  });
});

describe('mode: node agents', () => {
  const AGENT = 'metrics-relay-node-agent';
  const agentPod = (r: Rendered): Obj => r.one('DaemonSet', AGENT)['spec']['template'];
  const agent = (r: Rendered): Obj => agentPod(r)['spec']['containers'][0];
  const agentArgs = (r: Rendered): string[] => agent(r)['args'];
  /** The node agents' CA source in their projected volume: `configMap` or `secret`, and its name. */
  const agentCa = (r: Rendered): [string, string] => {
    const src = (agentPod(r)['spec']['volumes'][0]['projected']['sources'] as Obj[])[1]!;
    const kind = Object.keys(src)[0]!;
    expect(src[kind]).toMatchObject({ items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true });
    return [kind, src[kind]['name']];
  };
  const flag = (r: Rendered, prefix: string) => (container(r)['args'] as string[]).filter((a) => a.startsWith(prefix));

  describe('mode=node', () => {
    let r: Rendered;
    beforeAll(async () => {
      r = await template(['mode=node']);
    });

    it('renders the agents (DaemonSet, ServiceAccount, ClusterRole + Binding) and the CA ConfigMap they mount, and no webhook', () => {
      const kinds = r.objs.map((o) => `${o['kind']}/${o['metadata']['name']}`).sort();
      expect(kinds).toEqual(expect.arrayContaining([`DaemonSet/${AGENT}`, `ServiceAccount/${AGENT}`, `ClusterRole/${AGENT}`, `ClusterRoleBinding/${AGENT}`, 'ConfigMap/metrics-relay-ca', 'Deployment/metrics-relay']));
      expect(r.all('MutatingWebhookConfiguration')).toHaveLength(0);
      for (const kind of ['DaemonSet', 'ServiceAccount', 'ConfigMap']) {
        for (const o of r.all(kind)) expect(o['metadata']['namespace'], `${kind}/${o['metadata']['name']}`).toBe(NS);
      }
      for (const o of r.objs) {
        expect(o['metadata']['labels'], `${o['kind']}/${o['metadata']['name']}`).toMatchObject({
          'helm.sh/chart': 'metrics-relay-0.1.0', 'app.kubernetes.io/instance': 'metrics-relay', 'app.kubernetes.io/part-of': 'metrics-relay', 'app.kubernetes.io/managed-by': 'Helm',
        });
      }
    });

    it('runs the sidecar image\'s node-agent bundle on every node with the flags, env and files it needs', () => {
      const ds = r.one('DaemonSet', AGENT);
      expect(ds['spec']['updateStrategy']).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } });
      const pod = agentPod(r)['spec'];
      expect(pod).toMatchObject({ serviceAccountName: AGENT, automountServiceAccountToken: true, tolerations: [{ operator: 'Exists' }] });
      expect(pod['securityContext']).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod['priorityClassName']).toBeUndefined();
      expect(pod['nodeSelector']).toBeUndefined();
      const c = agent(r);
      expect(c['image']).toBe('metrics-relay-sidecar:0.1.0');
      expect(c['imagePullPolicy']).toBe('IfNotPresent');
      expect(c['command']).toEqual(['node', '--lite-mode', '--max-semi-space-size=1', '/app/node-agent.mjs']);
      expect(c['args']).toEqual([
        // the address the webhook gives sidecars
        '--aggregator=metrics-relay-ingest.metrics-relay.svc:9443',
        '--token-file=/var/run/secrets/metrics-relay/token',
        '--ca-file=/var/run/secrets/metrics-relay/ca.crt',
        '--metrics-port=9091',
        '--interval=5s',
        '--metrics=cm_*',
        '--log-level=info',
      ]);
      expect(c['env']).toEqual([{ name: 'RELAY_NODE_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.nodeName' } } }]);
      expect(c['ports']).toEqual([{ name: 'metrics', containerPort: 9091, protocol: 'TCP' }]);
      expect(c['readinessProbe']['httpGet']).toEqual({ path: '/readyz', port: 'metrics' });
      expect(c['livenessProbe']['httpGet']).toEqual({ path: '/healthz', port: 'metrics' });
      expect(c['resources']).toEqual({ requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } });
      expect(c['securityContext']).toEqual({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      expect(c['volumeMounts']).toEqual([{ name: 'metrics-relay-token', mountPath: '/var/run/secrets/metrics-relay', readOnly: true }]);
      // Like the injected sidecar's volume: its own token for the aggregator, and the CA sidecars trust.
      expect(pod['volumes']).toEqual([{
        name: 'metrics-relay-token',
        projected: {
          sources: [
            { serviceAccountToken: { audience: 'metrics-relay', expirationSeconds: 3600, path: 'token' } },
            { configMap: { name: 'metrics-relay-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true } },
          ],
        },
      }]);
      expect(agentPod(r)['metadata']['annotations']).toEqual({ 'metrics-relay.io/inject': 'false' });
    });

    it('labels the agents\' pods so that no Service, PDB or anti-affinity of the aggregator selects them', () => {
      const labels = agentPod(r)['metadata']['labels'] as Record<string, string>;
      expect(labels).toEqual({ 'app.kubernetes.io/name': AGENT, 'app.kubernetes.io/instance': 'metrics-relay' });
      expect(r.one('DaemonSet', AGENT)['spec']['selector']['matchLabels']).toEqual(labels);
      const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
      for (const svc of r.all('Service')) expect(selects(svc['spec']['selector']), svc['metadata']['name']).toBe(false);
      expect(selects(r.one('PodDisruptionBudget')['spec']['selector']['matchLabels'])).toBe(false);
      expect(selects(r.one('Deployment')['spec']['selector']['matchLabels'])).toBe(false);
    });

    it('grants the agents get, list and watch on pods, nothing else', () => {
      expect(r.one('ClusterRole', AGENT)['rules']).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
      expect(r.one('ClusterRoleBinding', AGENT)).toMatchObject({
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: AGENT },
        subjects: [{ kind: 'ServiceAccount', name: AGENT, namespace: NS }],
      });
      expect(r.one('ServiceAccount', AGENT)['automountServiceAccountToken']).toBeUndefined();
    });

    it('tells the aggregator the agents\' ServiceAccount; no injection, no webhook caBundle to keep, the CA ConfigMap kept current without create', () => {
      expect(flag(r, '--node-agent-service-account')).toEqual([`--node-agent-service-account=${NS}/${AGENT}`]);
      expect(flag(r, '--inject')).toEqual(['--inject-ca-configmap=metrics-relay-ca']);
      expect(flag(r, '--managed-tls-webhooks')).toEqual([]);
      expect(container(r)['env']).toBeUndefined();
      expect(container(r)['args'].at(-1)).toBe(`--node-agent-service-account=${NS}/${AGENT}`);
      // Rendered empty, like the TLS Secret: the elected replica fills it, and a sync or upgrade leaves it alone.
      const cm = r.one('ConfigMap', 'metrics-relay-ca');
      expect(cm['data']).toBeUndefined();
      expect(r.one('ClusterRole', 'metrics-relay-tls')['rules']).toEqual([
        { apiGroups: ['apiregistration.k8s.io'], resources: ['apiservices'], resourceNames: ['v1beta2.custom.metrics.k8s.io', 'v1beta1.custom.metrics.k8s.io'], verbs: ['get', 'update'] },
        { apiGroups: [''], resources: ['configmaps'], resourceNames: ['metrics-relay-ca'], verbs: ['get', 'list', 'watch', 'update'] },
      ]);
    });

    it('the aggregator accepts what the chart passes', () => {
      const cfg = loadAggregatorConfig((container(r)['args'] as string[]).slice(1), {});
      expect(cfg.nodeAgentServiceAccount).toBe(`${NS}:${AGENT}`);
      expect(cfg.injection).toBeUndefined();
      expect(cfg.managedTls).toMatchObject({ webhooks: [], caConfigMap: 'metrics-relay-ca' });
    });
  });

  it('mode=both: the webhook and injection as in sidecar mode, plus the agents', async () => {
    const [both, sidecar] = await Promise.all([template(['mode=both']), template()]);
    expect(both.one('MutatingWebhookConfiguration')).toEqual(sidecar.one('MutatingWebhookConfiguration'));
    both.one('DaemonSet', AGENT);
    expect(container(both)['args']).toEqual([...container(sidecar)['args'], `--node-agent-service-account=${NS}/${AGENT}`]);
    expect(both.one('ClusterRole', 'metrics-relay-tls')).toEqual(sidecar.one('ClusterRole', 'metrics-relay-tls'));
    // The webhook never injects into the release namespace, so the agents' CA ConfigMap is rendered there.
    expect(both.one('ConfigMap', 'metrics-relay-ca')['data']).toBeUndefined();
    expect(agentCa(both)).toEqual(['configMap', 'metrics-relay-ca']);
    // With injection off, the agents still get their CA ConfigMap kept current.
    const off = await template(['mode=both', 'injection.enabled=false']);
    expect(off.all('MutatingWebhookConfiguration')).toHaveLength(0);
    expect(flag(off, '--inject')).toEqual(['--inject-ca-configmap=metrics-relay-ca']);
    expect(off.one('ClusterRole', 'metrics-relay-tls')['rules'].map((rule: Obj) => rule['resources'][0])).toEqual(['apiservices', 'configmaps']);
  });

  it('mode=sidecar (the default) renders no agent, no agent flag and no CA ConfigMap', async () => {
    const [explicit, defaults] = await Promise.all([template(['mode=sidecar']), template()]);
    expect(explicit.raw).toBe(defaults.raw);
    expect(explicit.all('DaemonSet')).toHaveLength(0);
    expect(explicit.all('ConfigMap').map((o) => o['metadata']['name'])).toEqual(['metrics-relay-rules']);
    expect(explicit.raw).not.toContain('node-agent');
  });

  it('gives the agents the CA sidecars trust, in each TLS mode', async () => {
    // cert-manager: the ca.crt key of the Secret it writes (sidecars get the same PEM as env RELAY_CA_PEM).
    const cm = await template(['mode=node', 'certManager.enabled=true']);
    expect(agentCa(cm)).toEqual(['secret', 'metrics-relay-tls']);
    expect(cm.all('ConfigMap').map((o) => o['metadata']['name'])).toEqual(['metrics-relay-rules']);
    expect(flag(cm, '--inject')).toEqual([]);
    // tls.existingSecret: the CA the chart was given, as a ConfigMap (no node reads the Secret with the key).
    const own = await template(['mode=node', ...EXISTING_SECRET]);
    expect(agentCa(own)).toEqual(['configMap', 'metrics-relay-ca']);
    expect(own.one('ConfigMap', 'metrics-relay-ca')['data']).toEqual({ 'ca.crt': 'foo\n' });
    // Your CA ConfigMap (e.g. trust-manager's): mounted, not rendered.
    const yours = await template(['mode=node', 'certManager.enabled=true', 'injection.caConfigMap=relay-ca']);
    expect(agentCa(yours)).toEqual(['configMap', 'relay-ca']);
    expect(yours.all('ConfigMap').map((o) => o['metadata']['name'])).toEqual(['metrics-relay-rules']);
    // Managed TLS under your name: rendered empty under that name and kept current by the aggregator.
    const named = await template(['mode=node', 'injection.caConfigMap=relay-ca']);
    expect(agentCa(named)).toEqual(['configMap', 'relay-ca']);
    expect(named.one('ConfigMap', 'relay-ca')['data']).toBeUndefined();
    expect(flag(named, '--inject')).toEqual(['--inject-ca-configmap=relay-ca']);
  });

  it('out of cluster: the agents stream to outOfCluster.address on ports.ingest; NOTES print the aggregator\'s flags', async () => {
    const given = await template(['mode=node', ...OUT_OF_CLUSTER]);
    expect(agentArgs(given)).toContain('--aggregator=127.0.0.1:9443');
    expect(agentCa(given)).toEqual(['configMap', 'metrics-relay-ca']);
    expect(given.one('ConfigMap', 'metrics-relay-ca')['data']).toEqual({ 'ca.crt': 'foo\n' });
    expect(given.all('Deployment')).toHaveLength(0);
    const managed = await template(['mode=node', 'outOfCluster.enabled=true', 'outOfCluster.address=relay.example', 'ports.ingest=7444']);
    expect(agentArgs(managed)).toContain('--aggregator=relay.example:7444');
    expect(managed.one('ConfigMap', 'metrics-relay-ca')['data']).toBeUndefined();

    const notes = async (sets: string[]) => (await helm(['install', 'metrics-relay', CHART, '--namespace', NS, '--dry-run=client', ...sets.flatMap((s) => ['--set', s])])).stdout;
    const node = await notes(['mode=node', 'outOfCluster.enabled=true', 'ports.ingest=7444']);
    expect(node).toContain(`--ingest-port=7444 --node-agent-service-account=${NS}/${AGENT} \\\n       --inject-ca-configmap=metrics-relay-ca\n`);
    expect(node).toContain('Node mode registers no webhook');
    expect(await notes(['mode=both', ...OUT_OF_CLUSTER])).toContain(`--ingest-port=9443 --node-agent-service-account=${NS}/${AGENT} [--inject-image=IMAGE --inject-aggregator=HOST:PORT]`);
    expect(await notes(OUT_OF_CLUSTER)).not.toContain('node-agent');
  });

  it('values reach the agents: image, port, resources, scheduling, annotations, rollout, scrape defaults and log level', async () => {
    const r = await template([
      'mode=node', 'nodeAgent.image.repository=reg.example/side', 'nodeAgent.image.tag=1.2.3', 'nodeAgent.image.pullPolicy=Always',
      'nodeAgent.metricsPort=9100', 'nodeAgent.resources.requests.memory=128Mi', 'nodeAgent.resources.limits.memory=512Mi',
      'nodeAgent.tolerations[0].key=dedicated', 'nodeAgent.tolerations[0].operator=Exists', 'nodeAgent.nodeSelector.pool=apps',
      'nodeAgent.priorityClassName=system-node-critical', 'nodeAgent.podAnnotations.team=platform', 'nodeAgent.updateStrategy.rollingUpdate.maxUnavailable=2',
      'injection.interval=1s', 'injection.metrics=cm_*\\,app_requests_total', 'logLevel=debug',
    ], { release: 'prod', namespace: 'monitoring' });
    const name = 'prod-metrics-relay-node-agent';
    const tpl = r.one('DaemonSet', name)['spec']['template'];
    expect(tpl['spec']).toMatchObject({ nodeSelector: { pool: 'apps' }, tolerations: [{ key: 'dedicated', operator: 'Exists' }], priorityClassName: 'system-node-critical', serviceAccountName: name });
    expect(tpl['metadata']['annotations']).toEqual({ 'metrics-relay.io/inject': 'false', team: 'platform' });
    expect(r.one('DaemonSet', name)['spec']['updateStrategy']).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 2 } });
    const c = tpl['spec']['containers'][0];
    expect(c).toMatchObject({ image: 'reg.example/side:1.2.3', imagePullPolicy: 'Always', ports: [{ name: 'metrics', containerPort: 9100, protocol: 'TCP' }] });
    expect(c['resources']).toEqual({ requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } });
    expect(c['args']).toEqual([
      '--aggregator=prod-metrics-relay-ingest.monitoring.svc:9443', '--token-file=/var/run/secrets/metrics-relay/token', '--ca-file=/var/run/secrets/metrics-relay/ca.crt',
      '--metrics-port=9100', '--interval=1s', '--metrics=cm_*,app_requests_total', '--log-level=debug',
    ]);
    expect(r.one('ClusterRoleBinding', name)['subjects']).toEqual([{ kind: 'ServiceAccount', name, namespace: 'monitoring' }]);
    expect(container(r)['args']).toContain(`--node-agent-service-account=monitoring/${name}`);
  });

  it('the NetworkPolicy of the chart README lets exactly the agents\' pods in', async () => {
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## NetworkPolicies'));
    const policy = loadAllYaml(/```yaml\n([\s\S]*?)```/.exec(section)![1]!)[0] as Obj;
    expect(policy).toMatchObject({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', spec: { policyTypes: ['Ingress'] } });
    // NB: loadAllYaml builds client-node's typed model, which names `from` `_from` (a reserved word in TypeScript).
    const from = policy['spec']['ingress'][0]['_from'] as Obj[];
    // One peer: namespace AND pods (two peers would let in every pod of the namespace, and the agents of any).
    expect(from).toHaveLength(1);
    const r = await template(['mode=node']);
    expect(from[0]!['namespaceSelector']).toEqual({ matchLabels: { 'kubernetes.io/metadata.name': NS } });
    expect(from[0]!['podSelector']).toEqual({ matchLabels: agentPod(r)['metadata']['labels'] });
  });
});

describe('values reach the objects', () => {
  it('another release name and namespace name every object, SAN and selector after them', async () => {
    const r = await template([], { release: 'prod', namespace: 'monitoring' });
    expect(r.one('Deployment')['metadata']).toMatchObject({ name: 'prod-metrics-relay', namespace: 'monitoring' });
    const args = container(r)['args'] as string[];
    const hosts = args.find((a) => a.startsWith('--managed-tls-hosts='))!.split('=')[1]!.split(',');
    expect(hosts).toEqual(expect.arrayContaining(['prod-metrics-relay.monitoring.svc', 'prod-metrics-relay-ingest.monitoring.svc']));
    expect(args).toEqual(expect.arrayContaining(['--managed-tls-secret=monitoring/prod-metrics-relay-tls', '--inject-aggregator=prod-metrics-relay-ingest.monitoring.svc:9443']));
    for (const w of r.one('MutatingWebhookConfiguration')['webhooks'] as Obj[]) {
      expect(w['namespaceSelector']['matchExpressions'][0]['values']).toEqual(['kube-system', 'monitoring']);
      expect(w['clientConfig']['service']).toMatchObject({ name: 'prod-metrics-relay', namespace: 'monitoring' });
    }
    for (const a of r.all('APIService')) expect(a['spec']['service']).toEqual({ name: 'prod-metrics-relay', namespace: 'monitoring', port: 443 });
  });

  it('installed into kube-system, the webhook excludes it once', async () => {
    const r = await template([], { namespace: 'kube-system' });
    for (const w of r.one('MutatingWebhookConfiguration')['webhooks'] as Obj[]) expect(w['namespaceSelector']['matchExpressions'][0]['values']).toEqual(['kube-system']);
  });

  it('ports, intervals, staleness, rules, images, log level and scheduling', async () => {
    const r = await template([
      'ports.api=8443', 'ports.ingest=8444', 'ports.metrics=8080', 'staleAfter=30s', 'expireAfter=1h', 'warmup=1m', 'logLevel=debug',
      'maxSeries=5000000', 'image.repository=reg.example/agg', 'image.tag=1.2.3', 'image.pullPolicy=Always',
      'injection.image.repository=reg.example/side', 'injection.interval=1s', 'injection.metrics=cm_*\\,app_requests_total',
      'injection.nativeSidecar=true', 'injection.timeoutSeconds=3', 'injection.resources.requests.cpu=20m',
      'rules[0].name=cm_queue_*', 'rules[0].aggregation=max', 'rules[0].stale=serve-last', 'rules[0].maxAge=5m',
      'nodeSelector.pool=infra', 'tolerations[0].key=dedicated', 'tolerations[0].operator=Exists', 'priorityClassName=system-cluster-critical',
      'podAnnotations.team=platform', 'podLabels.tier=control', 'extraArgs[0]=--requestheader-allowed-names=front-proxy-client',
    ]);
    const c = container(r);
    expect(c['image']).toBe('reg.example/agg:1.2.3');
    expect(c['imagePullPolicy']).toBe('Always');
    expect(c['args']).toEqual(expect.arrayContaining([
      '--api-port=8443', '--ingest-port=8444', '--metrics-port=8080', '--stale-after=30s', '--expire-after=1h', '--warmup=1m', '--log-level=debug',
      '--max-series=5000000', '--inject-image=reg.example/side:0.1.0', '--inject-aggregator=metrics-relay-ingest.metrics-relay.svc:8444',
      '--inject-interval=1s', '--inject-metrics=cm_*,app_requests_total', '--inject-native-sidecar', '--inject-cpu-request=20m',
    ]));
    expect(c['args'].at(-1)).toBe('--requestheader-allowed-names=front-proxy-client');
    expect(c['ports']).toEqual([
      { name: 'https', containerPort: 8443, protocol: 'TCP' },
      { name: 'grpc', containerPort: 8444, protocol: 'TCP' },
      { name: 'metrics', containerPort: 8080, protocol: 'TCP' },
    ]);
    expect(r.one('Service', 'metrics-relay')['spec']['ports'][0]).toMatchObject({ port: 443, targetPort: 'https' });
    expect(r.one('Service', 'metrics-relay-ingest')['spec']['ports'][0]).toMatchObject({ port: 8444, targetPort: 'grpc' });
    expect(JSON.parse(r.one('ConfigMap')['data']['rules.json'])).toEqual({ metrics: [{ name: 'cm_queue_*', aggregation: 'max', stale: 'serve-last', maxAge: '5m' }] });
    for (const w of r.one('MutatingWebhookConfiguration')['webhooks'] as Obj[]) expect(w['timeoutSeconds']).toBe(3);
    const tpl = r.one('Deployment')['spec']['template'];
    expect(tpl['spec']).toMatchObject({ nodeSelector: { pool: 'infra' }, tolerations: [{ key: 'dedicated', operator: 'Exists' }], priorityClassName: 'system-cluster-critical' });
    expect(tpl['metadata']['annotations']).toMatchObject({ team: 'platform' });
    expect(tpl['metadata']['labels']).toMatchObject({ tier: 'control', 'app.kubernetes.io/name': 'metrics-relay' });
  });

  it('injection.caConfigMap names the ConfigMap sidecars mount (and managed TLS keeps current); with cert-manager it replaces the CA env', async () => {
    const r = await template(['injection.caConfigMap=relay-ca']);
    expect(container(r)['args']).toContain('--inject-ca-configmap=relay-ca');
    expect(r.one('ClusterRole', 'metrics-relay-tls')['rules'][2]['resourceNames']).toEqual(['relay-ca']);
    const c = container(await template(['certManager.enabled=true', 'injection.caConfigMap=relay-ca']));
    expect(c['args']).toContain('--inject-ca-configmap=relay-ca');
    expect(env(c, 'RELAY_INJECT_CA_BUNDLE')).toBeUndefined();
  });

  it('clusterName becomes --cluster-name; unset, no flag', async () => {
    expect(container(await template(['clusterName=prod-eu-1']))['args']).toContain('--cluster-name=prod-eu-1');
    expect((container(await template())['args'] as string[]).some((a) => a.startsWith('--cluster-name'))).toBe(false);
    expect(configOfArgs(container(await template(['clusterName=prod-eu-1']))['args']).clusterName).toBe('prod-eu-1');
  });

  it('injection.enabled=false: no webhook and no --inject flags', async () => {
    const r = await template(['injection.enabled=false']);
    expect(r.all('MutatingWebhookConfiguration')).toHaveLength(0);
    expect((container(r)['args'] as string[]).filter((a) => a.startsWith('--inject') || a.startsWith('--managed-tls-webhooks'))).toEqual([]);
    expect(container(r)['env']).toBeUndefined();
    expect(r.one('ClusterRole', 'metrics-relay-tls')['rules'].map((rule: Obj) => rule['resources'][0])).toEqual(['apiservices']);
  });

  it('one replica gets no PodDisruptionBudget; the HPA reader and matchConditions can be turned off', async () => {
    const r = await template(['replicaCount=1', 'hpaReader.enabled=false', 'injection.matchConditions=false']);
    expect(r.one('Deployment')['spec']['replicas']).toBe(1);
    expect(r.all('PodDisruptionBudget')).toHaveLength(0);
    expect(r.all('ClusterRole').map((c) => c['metadata']['name'])).toEqual(['metrics-relay-object-reader', 'metrics-relay-tls']);
    for (const w of r.one('MutatingWebhookConfiguration')['webhooks'] as Obj[]) expect(w['matchConditions']).toBeUndefined();
  });

  it('an existing ServiceAccount is bound instead of a new one', async () => {
    const r = await template(['serviceAccount.create=false', 'serviceAccount.name=relay']);
    expect(r.all('ServiceAccount')).toHaveLength(0);
    expect(r.one('Deployment')['spec']['template']['spec']['serviceAccountName']).toBe('relay');
    expect(r.one('ClusterRoleBinding', 'metrics-relay:system:auth-delegator')['subjects']).toEqual([{ kind: 'ServiceAccount', name: 'relay', namespace: NS }]);
  });
});

describe('the aggregator accepts what the chart passes', () => {
  // The contract between the templates and the CLI: every rendered flag parses, and means what the values say.
  const caPem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const configOf = (r: Rendered) => {
    const c = container(r);
    expect(c['args'][0]).toBe('aggregator');
    const env = Object.fromEntries(((c['env'] ?? []) as Obj[]).map((e) => [e['name'], e['valueFrom'] ? caPem : e['value']]));
    return loadAggregatorConfig(c['args'].slice(1), env);
  };

  it('defaults', async () => {
    const cfg = configOf(await template());
    expect(cfg).toMatchObject({
      apiPort: 6443, ingestPort: 9443, metricsPort: 9090, tlsCertFile: undefined, tlsKeyFile: undefined,
      configFile: '/etc/metrics-relay/rules/rules.json', staleAfterMs: undefined, expireAfterMs: 600_000, warmupMs: 15_000,
      maxSeriesPerPod: 1000, maxSeries: 2_000_000, maxMessageBytes: 4_194_304, logLevel: 'info', standalone: false,
    });
    expect(cfg.injection).toMatchObject({
      image: 'metrics-relay-sidecar:0.1.0', imagePullPolicy: 'IfNotPresent', aggregatorAddress: 'metrics-relay-ingest.metrics-relay.svc:9443',
      caConfigMap: 'metrics-relay-ca', nativeSidecar: false, defaultInterval: '5s', defaultMetrics: 'cm_*',
      resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
    });
    expect(cfg.injection!.caPem).toBeUndefined();
    expect(cfg.managedTls).toEqual({
      namespace: NS, secret: 'metrics-relay-tls', lease: 'metrics-relay-tls-leader',
      hosts: ['metrics-relay', 'metrics-relay-ingest'].flatMap((n) => [n, `${n}.${NS}`, `${n}.${NS}.svc`, `${n}.${NS}.svc.cluster.local`]),
      apiServices: ['v1beta2.custom.metrics.k8s.io', 'v1beta1.custom.metrics.k8s.io'], webhooks: ['metrics-relay-injector'], caConfigMap: 'metrics-relay-ca',
      caValidityMs: 365 * 86_400_000, certValidityMs: 90 * 86_400_000, overlapMs: 3_600_000,
    });
  });

  it('tls.existingSecret and certManager: the mounted files, and the CA handed to sidecars', async () => {
    for (const sets of [EXISTING_SECRET, ['certManager.enabled=true']]) {
      const cfg = configOf(await template(sets));
      expect(cfg).toMatchObject({ tlsCertFile: '/etc/metrics-relay/tls/tls.crt', tlsKeyFile: '/etc/metrics-relay/tls/tls.key', managedTls: undefined });
      expect(cfg.injection).toMatchObject({ caPem });
    }
  });

  it('managed TLS lifetimes', async () => {
    const cfg = configOf(await template(['tls.managed.caValidity=90s', 'tls.managed.certValidity=40s', 'tls.managed.overlap=10s']));
    expect(cfg.managedTls).toMatchObject({ caValidityMs: 90_000, certValidityMs: 40_000, overlapMs: 10_000 });
    // A schedule that cannot overlap renders, but the aggregator refuses it with the reason.
    const bad = container(await template(['tls.managed.overlap=1500h']))['args'].slice(1) as string[];
    expect(() => loadAggregatorConfig(bad, {})).toThrow('--managed-tls-ca-validity/--managed-tls-cert-validity/--managed-tls-overlap: the rotation overlap (5400000000ms) must be at most 1/6 of the CA validity');
  });

  it('every knob set', async () => {
    const cfg = configOf(await template([
      'staleAfter=30s', 'expireAfter=1h', 'warmup=1m', 'logLevel=debug', 'maxSeries=5000000', 'injection.nativeSidecar=true',
      'injection.caConfigMap=relay-ca', 'injection.interval=1s', 'extraArgs[0]=--requestheader-allowed-names=front-proxy-client',
    ]));
    expect(cfg).toMatchObject({ staleAfterMs: 30_000, expireAfterMs: 3_600_000, warmupMs: 60_000, logLevel: 'debug', maxSeries: 5_000_000 });
    expect(cfg.injection).toMatchObject({ nativeSidecar: true, caConfigMap: 'relay-ca', defaultInterval: '1s' });
  });

  it('injection off', async () => {
    expect(configOf(await template(['injection.enabled=false'])).injection).toBeUndefined();
  });

  it('the rules file', async () => {
    const r = await template(['rules[0].name=cm_queue_*', 'rules[0].aggregation=max', 'rules[0].stale=serve-last', 'rules[0].maxAge=5m', 'rules[0].staleAfter=30s', 'rules[1].name=cm_*', 'rules[1].aggregation=avg']);
    const rules = compileRules(r.one('ConfigMap')['data']['rules.json'], 'rules.json');
    expect(rules.forMetric('cm_queue_depth')).toEqual({ aggregation: 'max', stale: 'serve-last', maxAgeMs: 300_000, staleAfterMs: 30_000 });
    expect(rules.forMetric('cm_other').aggregation).toBe('avg');
    expect(compileRules((await template()).one('ConfigMap')['data']['rules.json'], 'rules.json').forMetric('cm_x').aggregation).toBe('sum');
  });
});

describe('bad values fail the install with a message naming them', () => {
  const cases: [string[], string][] = [
    [['replicaCount=0'], "at '/replicaCount': minimum: got 0, want 1"],
    [['ports.api=70000'], "at '/ports/api': maximum: got 70,000, want 65,535"],
    [['ports.metrics=0'], "at '/ports/metrics': minimum: got 0, want 1"],
    [['logLevel=loud'], "at '/logLevel': value must be one of 'trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'"],
    [['warmup=soon'], "at '/warmup': 'soon' does not match pattern"],
    [['expireAfter=10 minutes'], "at '/expireAfter': '10 minutes' does not match pattern"],
    [['staleAfter=30'], "at '/staleAfter': got number, want string"],
    [['injection.interval=5x'], "at '/injection/interval': '5x' does not match pattern"],
    [['injection.timeoutSeconds=60'], "at '/injection/timeoutSeconds': maximum: got 60, want 30"],
    [['injection.resources.requests.cpu=lots'], "at '/injection/resources/requests/cpu': 'lots' does not match pattern"],
    [['rules[0].name=cm_*', 'rules[0].aggregation=median'], "at '/rules/0/aggregation': value must be one of 'sum', 'avg', 'max', 'min'"],
    [['rules[0].name=cm_*', 'rules[0].maxAge=forever'], "at '/rules/0/maxAge': 'forever' does not match pattern"],
    [['rules[0].aggregation=max'], "at '/rules/0': missing property 'name'"],
    [['image.pullPolicy=Sometimes'], "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"],
    [['replicas=3'], "additional properties 'replicas' not allowed"],
    [['outOfCluster.enabled=true', 'outOfCluster.address=not an address', 'outOfCluster.caBundle=Zm9vCg=='], "at '/outOfCluster/address'"],
    [['ports.ingest=6443'], 'ports.api (6443), ports.ingest (6443) and ports.metrics (9090) must all differ'],
    [['tls.existingSecret=corp-tls'], 'tls.caBundle is required with tls.existingSecret'],
    [['tls.existingSecret=corp-tls', 'tls.caBundle=Zm9vCg==', 'certManager.enabled=true'], 'tls.existingSecret and certManager.enabled cannot both be set'],
    [['clusterName=prod/eu'], "at '/clusterName': 'prod/eu' does not match pattern"],
    [['tls.managed.overlap=soon'], "at '/tls/managed/overlap': 'soon' does not match pattern"],
    [['tls.existingSecret=Corp_TLS', 'tls.caBundle=Zm9vCg=='], "at '/tls/existingSecret'"],
    [['outOfCluster.enabled=true', 'outOfCluster.caBundle=Zm9vCg==', 'certManager.enabled=true'], 'outOfCluster.enabled and certManager.enabled cannot both be set'],
    [['mode=nodes'], "at '/mode': value must be one of 'sidecar', 'node', 'both'"],
    [['mode=node', 'nodeAgent.metricsPort=0'], "at '/nodeAgent/metricsPort': minimum: got 0, want 1"],
    [['mode=node', 'nodeAgent.updateStrategy.rollingUpdate.maxUnavailable=ten'], "at '/nodeAgent/updateStrategy/rollingUpdate/maxUnavailable'"],
    [['nodeAgent.interval=1s'], "additional properties 'interval' not allowed"],
  ];
  for (const [sets, message] of cases) {
    it(sets.join(' '), async () => {
      expect(await templateError(...sets)).toContain(message);
    });
  }

  it('reports every bad value of one install at once', async () => {
    const err = await templateError('replicaCount=0', 'ports.api=70000', 'logLevel=loud', 'warmup=soon');
    for (const where of ['/replicaCount', '/ports/api', '/logLevel', '/warmup']) expect(err).toContain(`at '${where}'`);
  });
});

describe('Kubernetes versions (.Capabilities.KubeVersion)', () => {
  const hooks = async (version: string) => (await template([], { extra: ['--kube-version', version] })).one('MutatingWebhookConfiguration')['webhooks'] as Obj[];

  it('renders CEL matchConditions from 1.30 (GA) on, and none on 1.28/1.29', async () => {
    for (const v of ['1.30.0', '1.32.13', '1.37.2']) expect((await hooks(v))[1]!['matchConditions'], v).toHaveLength(1);
    for (const v of ['1.28.0', '1.29.5']) expect((await hooks(v))[1]!['matchConditions'], v).toBeUndefined();
  });

  it('native sidecars from 1.29 on; below, a message naming the version; below 1.28, the chart\'s kubeVersion', async () => {
    expect(container(await template(['injection.nativeSidecar=true'], { extra: ['--kube-version', '1.29.0'] }))['args']).toContain('--inject-native-sidecar');
    const old = await helm(['template', 'metrics-relay', CHART, '--kube-version', '1.28.9', '--set', 'injection.nativeSidecar=true']).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(old).toContain('injection.nativeSidecar needs Kubernetes 1.29 or later (native sidecar containers: beta and on by default from 1.29, GA in 1.33); this cluster is v1.28.9');
    const older = await helm(['template', 'metrics-relay', CHART, '--kube-version', '1.27.0']).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(older).toContain('chart requires kubeVersion: >=1.28.0-0 which is incompatible with Kubernetes v1.27.0');
  });
});

describe('packaging', () => {
  it('helm package gives an archive that passes helm lint --strict, with kubeVersion and maintainers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chart-package-'));
    try {
      const { stdout } = await helm(['package', CHART, '--destination', dir]);
      const archive = join(dir, 'metrics-relay-0.1.0.tgz');
      expect(stdout).toContain(archive);
      expect((await helm(['lint', '--strict', archive])).stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
      const chart = (await helm(['show', 'chart', archive])).stdout;
      expect(chart).toContain("kubeVersion: '>=1.28.0-0'");
      expect(chart).toMatch(/maintainers:\n- email: \S+\n {2}name: metrics-relay maintainers/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fleet examples in the chart README', () => {
  // Every ```yaml block of the README's fleet section, parsed; each one's Helm values are schema-checked and rendered
  // by helm itself (values.schema.json is enforced on -f files too).
  const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Fleet'), readme.indexOf('## Kubernetes versions'));
  const docs = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => loadAllYaml(m[1]!)[0] as Obj);
  const byKind = (kind: string) => {
    const d = docs.find((x) => x['kind'] === kind);
    expect(d, kind).toBeDefined();
    return d!;
  };

  async function renderWith(values: unknown, namespace: string, release: string): Promise<Rendered> {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-values-'));
    try {
      writeFileSync(join(dir, 'values.json'), JSON.stringify(values));
      return await template([], { release, namespace, extra: ['-f', join(dir, 'values.json')] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** What the Application's source and destination make helm render. */
  async function renderApplication(app: Obj): Promise<Rendered> {
    const src = app['spec']['source'];
    expect(src).toMatchObject({ repoURL: expect.stringMatching(/^https:\/\//), path: 'charts/metrics-relay', targetRevision: expect.any(String) });
    expect(app['spec']['syncPolicy']['syncOptions']).toContain('ServerSideApply=true');
    return renderWith(src['helm']['valuesObject'], app['spec']['destination']['namespace'], src['helm']['releaseName']);
  }

  it('has the three examples', () => {
    expect(docs.map((d) => `${d['apiVersion']} ${d['kind']}`)).toEqual(['argoproj.io/v1alpha1 Application', 'argoproj.io/v1alpha1 ApplicationSet', 'helm.toolkit.fluxcd.io/v2 HelmRelease']);
  });

  it('Argo CD Application: its values pass the schema and render with the cluster name', async () => {
    const r = await renderApplication(byKind('Application'));
    expect(container(r)['args']).toEqual(expect.arrayContaining(['--cluster-name=prod-eu-1', '--inject-image=registry.example.com/metrics-relay-sidecar:0.1.0']));
    expect(container(r)['image']).toBe('registry.example.com/metrics-relay-aggregator:0.1.0');
  });

  it('Argo CD ApplicationSet: each generated Application (the list generator filled in) renders for its cluster', async () => {
    const set = byKind('ApplicationSet');
    expect(set['spec']['goTemplate']).toBe(true);
    const elements = set['spec']['generators'][0]['list']['elements'] as Record<string, string>[];
    expect(elements.map((e) => e['cluster'])).toEqual(['prod-eu-1', 'prod-us-1']);
    for (const e of elements) {
      // What the ApplicationSet controller does with goTemplate: replace {{.key}} with the element's value.
      const text = JSON.stringify(set['spec']['template']).replace(/\{\{\.(\w+)\}\}/g, (_, k: string) => {
        expect(e, `element field ${k}`).toHaveProperty(k);
        return e[k]!;
      });
      const app = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', ...JSON.parse(text) } as Obj;
      expect(app['metadata']['name']).toBe(`metrics-relay-${e['cluster']}`);
      expect(app['spec']['destination']['server']).toBe(e['server']);
      expect(container(await renderApplication(app))['args']).toContain(`--cluster-name=${e['cluster']}`);
    }
  });

  it('Flux HelmRelease: spec.values pass the schema and render; the chart comes from this repository', async () => {
    const hr = byKind('HelmRelease');
    expect(hr['spec']['chart']['spec']).toMatchObject({ chart: 'charts/metrics-relay', sourceRef: { kind: 'GitRepository' } });
    expect(hr['spec']['driftDetection']).toEqual({ mode: 'enabled' });
    const r = await renderWith(hr['spec']['values'], hr['metadata']['namespace'], hr['spec']['releaseName']);
    expect(container(r)['args']).toContain('--cluster-name=prod-eu-1');
  });

  it('a value the schema refuses fails the example\'s render, naming it (the check is real)', async () => {
    const bad = { ...byKind('HelmRelease')['spec']['values'], clusterName: 'prod eu 1' };
    const err = await renderWith(bad, NS, 'metrics-relay').then(() => '', (e: { stderr: string }) => e.stderr);
    expect(err).toContain("at '/clusterName': 'prod eu 1' does not match pattern");
  });
});
