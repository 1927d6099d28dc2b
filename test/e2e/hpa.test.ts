import { inject, afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCert, startControlPlane, type ControlPlane } from './controlplane.js';
import { deploymentManifest, hpaManifest, until, kubectl, kubectlJson, LocalKubelet, type KubeletOptions, podTokenFile, serviceAccountKubeconfig as serviceAccountKubeconfigFile, TcpBalancer } from './harness.js';
import { startRelay, ROOT, type RelayProcess } from '../helpers/processes.js';

// The proof: the real kube-apiserver aggregates our API, the real admission chain calls our webhook, and the
// real HPA controller scales Deployments on values our sidecars stream. Nothing here is a mock of Kubernetes.

const RELEASE_NS = 'metrics-relay';
/** The chart's ServiceAccount of the node agents (mode both renders it and its RBAC). */
const NODE_AGENT_SA = 'metrics-relay-node-agent';
let cp: ControlPlane;
let workDir: string;
let binDir: string;
let kc: string;
let balancer: TcpBalancer;
const aggregators: (RelayProcess | undefined)[] = [undefined, undefined];
const kubelets: LocalKubelet[] = [];
const log = (l: string) => console.log(`[e2e] ${l}`);

/** A kubeconfig for the aggregator's own ServiceAccount (so the chart's RBAC is what it runs with). */
const serviceAccountKubeconfig = () => serviceAccountKubeconfigFile(cp, join(workDir, 'aggregator.kubeconfig'), RELEASE_NS, 'metrics-relay');

async function startAggregator(i: number, aggKubeconfig: string, tls: { certFile: string; keyFile: string }, ports?: Record<string, number>): Promise<RelayProcess> {
  const p = await startRelay([
    'aggregator', '--kubeconfig', aggKubeconfig, '--bind-address', '127.0.0.1',
    '--api-port', String(ports?.['api'] ?? 0), '--ingest-port', String(ports?.['ingest'] ?? 0), '--metrics-port', String(ports?.['metrics'] ?? 0),
    '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--warmup', '3s',
    '--inject-image', 'metrics-relay-sidecar:e2e', '--inject-aggregator', 'metrics-relay-ingest.metrics-relay.svc:9443',
    '--node-agent-service-account', `${RELEASE_NS}/${NODE_AGENT_SA}`,
  ], { timeoutMs: 30_000 });
  aggregators[i] = p;
  return p;
}

const podToken = (ns: string, pod: { name: string; uid: string }) => podTokenFile(kc, workDir, ns, pod);

function sidecarArgs(ns: string) {
  return async (pod: { name: string; uid: string }) => [
    '--aggregator', aggregators.filter((a): a is RelayProcess => a !== undefined).map((a) => `127.0.0.1:${a.ports['ingest']}`).join(','),
    '--ca-file', cp.caFile, '--token-file', await podToken(ns, pod), '--interval', '1s', '--metrics', 'cm_*',
  ];
}

const deployment = deploymentManifest;
const hpa = hpaManifest;

interface HpaStatus { desiredReplicas?: number; currentReplicas?: number; currentMetrics?: any[]; conditions?: { type: string; status: string; reason: string; message: string }[] } // eslint-disable-line @typescript-eslint/no-explicit-any

const hpaStatus = async (ns: string, name: string): Promise<HpaStatus> => (await kubectlJson<{ status: HpaStatus }>(kc, ['get', 'hpa', name, '-n', ns])).status;
const replicas = async (ns: string, name: string): Promise<number> => (await kubectlJson<{ spec: { replicas: number } }>(kc, ['get', 'deployment', name, '-n', ns])).spec.replicas;

/**
 * Deployment api of two pods behind Service api, run by a local kubelet (with sidecars, or bound to a node), one pod
 * at 30 connections and the other at 12: the Service's value is then exactly known (42).
 */
async function apiBehindService(ns: string, run: Pick<KubeletOptions, 'sidecarArgs' | 'node'>, annotations: Record<string, string> = {}): Promise<LocalKubelet> {
  await kubectl(kc, ['apply', '-f', '-'], deployment(ns, 'api', { app: 'api' }, annotations).replace('"replicas":1', '"replicas":2'));
  await kubectl(kc, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: ns }, spec: { selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080 }] } }));
  const api = new LocalKubelet({ kubeconfig: kc, namespace: ns, selector: 'app=api', ...run, log });
  kubelets.push(api);
  api.start();
  await until('2 api pods', async () => (api.names().length === 2 ? true : undefined));
  const [a, b] = api.names();
  await api.app(a!, 'set?connections=30');
  await api.app(b!, 'set?connections=12');
  return api;
}

/** An HPA on Service api's cm_connection_count (target 10), pinned to two replicas so that its answer is known. */
function serviceHpa(ns: string): string {
  const target = JSON.parse(hpa(ns, 'api', { type: 'Object', object: { describedObject: { apiVersion: 'v1', kind: 'Service', name: 'api' }, metric: { name: 'cm_connection_count' }, target: { type: 'Value', value: '10' } } }, 2));
  target.spec.minReplicas = 2;
  return JSON.stringify(target);
}

beforeAll(async () => {
  binDir = inject('k8sBinDir');
  workDir = mkdtempSync(join(tmpdir(), 'metrics-relay-e2e-'));
  cp = await startControlPlane({ binDir, workDir, log });
  kc = cp.kubeconfig;

  // Serving certificate for the Service name the kube-aggregator verifies (<svc>.<ns>.svc) and the webhook URL.
  const tls = issueCert(cp.pkiDir, 'metrics-relay-serving', { sans: [`metrics-relay.${RELEASE_NS}.svc`, '127.0.0.1', 'localhost'] });
  // One address for the API Service, as a Service with two endpoints would be.
  balancer = new TcpBalancer(() => aggregators.filter((a): a is RelayProcess => a !== undefined && a.child.exitCode === null).map((a) => a.ports['api']!));
  const apiPort = await balancer.start();

  await kubectl(kc, ['create', 'namespace', RELEASE_NS]);
  const manifests = execFileSync(join(binDir, 'helm'), [
    'template', 'metrics-relay', join(ROOT, 'charts/metrics-relay'), '--namespace', RELEASE_NS,
    '--set', 'outOfCluster.enabled=true', '--set', 'outOfCluster.address=127.0.0.1', '--set', `outOfCluster.apiPort=${apiPort}`,
    '--set', `outOfCluster.caBundle=${readFileSync(cp.caFile).toString('base64')}`, '--set', 'externalMetrics.enabled=true', '--set', 'mode=both',
  ], { encoding: 'utf8' });
  writeFileSync(join(workDir, 'chart.yaml'), manifests);
  // The server must be up before its APIServices exist (else the kube-aggregator logs failed downloads):
  // first everything but the registrations (ServiceAccount, RBAC, Service), then the replicas, then the rest.
  const docs = manifests.split(/^---$/m);
  const registration = (d: string) => /^kind: (APIService|MutatingWebhookConfiguration)$/m.test(d);
  await kubectl(kc, ['apply', '-f', '-'], docs.filter((d) => !registration(d)).join('\n---\n'));

  const aggKubeconfig = await serviceAccountKubeconfig();
  await startAggregator(0, aggKubeconfig, tls);
  await startAggregator(1, aggKubeconfig, tls);
  await kubectl(kc, ['apply', '-f', '-'], manifests);
});

// When a scenario fails, show what the HPAs saw (their conditions name the cause).
afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  const hpas = await kubectlJson<{ items: { metadata: { namespace: string; name: string }; status: HpaStatus }[] }>(kc, ['get', 'hpa', '-A']).catch(() => ({ items: [] }));
  for (const h of hpas.items) log(`HPA ${h.metadata.namespace}/${h.metadata.name}: ${JSON.stringify({ desired: h.status.desiredReplicas, metrics: h.status.currentMetrics, conditions: h.status.conditions?.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`) })}`);
});

afterAll(async () => {
  for (const k of kubelets) await k.stop();
  for (const a of aggregators) await a?.stop();
  await balancer?.stop();
  await cp?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('1. aggregation layer', () => {
  it('reports every APIService Available and serves discovery and values through the real aggregator', async () => {
    for (const name of ['v1beta1.custom.metrics.k8s.io', 'v1beta2.custom.metrics.k8s.io', 'v1beta1.external.metrics.k8s.io']) {
      await kubectl(kc, ['wait', '--for=condition=Available', `apiservice/${name}`, '--timeout=90s']);
      const cond = (await kubectlJson<{ status: { conditions: { type: string; reason: string }[] } }>(kc, ['get', 'apiservice', name])).status.conditions.find((c) => c.type === 'Available');
      expect(cond?.reason).toBe('Passed');
    }
    for (const v of ['v1beta1', 'v1beta2']) {
      const list = JSON.parse(await kubectl(kc, ['get', '--raw', `/apis/custom.metrics.k8s.io/${v}`])) as { kind: string; groupVersion: string };
      expect(list).toMatchObject({ kind: 'APIResourceList', groupVersion: `custom.metrics.k8s.io/${v}` });
    }
    const ext = JSON.parse(await kubectl(kc, ['get', '--raw', '/apis/external.metrics.k8s.io/v1beta1'])) as { kind: string };
    expect(ext.kind).toBe('APIResourceList');
  });

  it('gives the kube-apiserver OpenAPI documents it merges without errors', async () => {
    // The OpenAPI controllers fetch our documents soon after the APIServices become available.
    await new Promise((r) => setTimeout(r, 3000));
    const apiserverLog = readFileSync(join(cp.logsDir, 'kube-apiserver.log'), 'utf8');
    expect(apiserverLog).not.toMatch(/(loading OpenAPI spec|openapi).*(custom|external)\.metrics\.k8s\.io.*(failed|error)/i);
    const v3 = JSON.parse(await kubectl(kc, ['get', '--raw', '/openapi/v3'])) as { paths: Record<string, unknown> };
    expect(Object.keys(v3.paths)).toEqual(expect.arrayContaining(['apis/custom.metrics.k8s.io/v1beta2', 'apis/external.metrics.k8s.io/v1beta1']));
  });
});

let shopWeb: LocalKubelet;

describe('2. Pods metric', () => {
  const ns = 'shop';
  let web: LocalKubelet;

  beforeAll(async () => {
    await kubectl(kc, ['create', 'namespace', ns]);
    await kubectl(kc, ['apply', '-f', '-'], deployment(ns, 'web', { app: 'web' }));
    web = shopWeb = new LocalKubelet({ kubeconfig: kc, namespace: ns, selector: 'app=web', sidecarArgs: sidecarArgs(ns), log });
    kubelets.push(web);
    web.start();
    await until('web-* pod with values', async () => (web.names().length === 1 ? true : undefined));
    await kubectl(kc, ['apply', '-f', '-'], hpa(ns, 'web', { type: 'Pods', pods: { metric: { name: 'cm_connection_count' }, target: { type: 'AverageValue', averageValue: '5' } } }));
  });

  it('values reach kubectl get --raw through the kube-aggregator, both versions', async () => {
    const [pod] = web.names();
    await web.app(pod!, 'set?connections=3');
    const list = await until('the value 3', async () => {
      const v = JSON.parse(await kubectl(kc, ['get', '--raw', `/apis/custom.metrics.k8s.io/v1beta1/namespaces/${ns}/pods/*/cm_connection_count`])) as { items: { value: string }[] };
      return v.items[0]?.value === '3' ? v : undefined;
    });
    expect(list.items).toHaveLength(1);
  });

  it('scales up to the number the HPA formula gives, and back down', async () => {
    const [first] = web.names();
    await web.app(first!, 'set?connections=20'); // ceil(20 / 5 x 1 pod) = 4
    await until('desiredReplicas 4', async () => ((await hpaStatus(ns, 'web')).desiredReplicas === 4 ? true : undefined));
    await until('Deployment at 4', async () => ((await replicas(ns, 'web')) === 4 ? true : undefined));
    // New pods report 0: the average is 20/4 = 5, the target; it stays at 4.
    await until('4 pods reporting', async () => (web.names().length === 4 ? true : undefined));
    for (const p of web.names()) await web.app(p, 'set?connections=0');
    await until('Deployment back to 1', async () => ((await replicas(ns, 'web')) === 1 ? true : undefined));
    const st = await hpaStatus(ns, 'web');
    expect(st.conditions?.find((c) => c.type === 'ScalingActive')?.status).toBe('True');
  });
});

describe('3. Object metrics', () => {
  const ns = 'obj';

  beforeAll(async () => {
    await kubectl(kc, ['create', 'namespace', ns]);
    await apiBehindService(ns, { sidecarArgs: sidecarArgs(ns) });
    await until('both values served', async () => {
      const v = JSON.parse(await kubectl(kc, ['get', '--raw', `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${ns}/services/api/cm_connection_count`])) as { items: { value: string }[] };
      return v.items[0]?.value === '42' ? true : undefined;
    });
  });

  it('an HPA on a Service sees the sum over its pods', async () => {
    await kubectl(kc, ['apply', '-f', '-'], serviceHpa(ns));
    const st = await until('the Object metric in the HPA status', async () => {
      const s = await hpaStatus(ns, 'api');
      return s.currentMetrics?.[0]?.object?.current?.value === '42' ? s : undefined;
    });
    // 42 against a target of 10 asks for more than the two replicas allowed.
    expect(st.desiredReplicas).toBe(2);
    expect(st.conditions?.find((c) => c.type === 'ScalingLimited')?.reason).toBe('TooManyReplicas');
  });

  it('an Object metric on a Deployment aggregates its pods too', async () => {
    const v = JSON.parse(await kubectl(kc, ['get', '--raw', `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${ns}/deployments.apps/api/cm_connection_count`])) as { items: { value: string; describedObject: unknown }[] };
    expect(v.items).toHaveLength(1);
    expect(v.items[0]).toMatchObject({ value: '42', describedObject: { kind: 'Deployment', name: 'api', apiVersion: 'apps/v1' } });
  });
});

describe('4. External metric', () => {
  const ns = 'queue';
  let exporter: LocalKubelet;

  beforeAll(async () => {
    await kubectl(kc, ['create', 'namespace', ns]);
    await kubectl(kc, ['apply', '-f', '-'], deployment(ns, 'exporter', { app: 'exporter' }));
    await kubectl(kc, ['apply', '-f', '-'], deployment(ns, 'worker', { app: 'worker' }));
    exporter = new LocalKubelet({ kubeconfig: kc, namespace: ns, selector: 'app=exporter', sidecarArgs: sidecarArgs(ns), log });
    const workers = new LocalKubelet({ kubeconfig: kc, namespace: ns, selector: 'app=worker', log });
    kubelets.push(exporter, workers);
    exporter.start();
    workers.start();
    await until('exporter pod', async () => (exporter.names().length === 1 ? true : undefined));
  });

  it('one worker per two jobs (target AverageValue 2)', async () => {
    await exporter.app(exporter.names()[0]!, 'set?queue=8');
    await kubectl(kc, ['apply', '-f', '-'], hpa(ns, 'worker', { type: 'External', external: { metric: { name: 'cm_queue_depth', selector: { matchLabels: { queue: 'orders' } } }, target: { type: 'AverageValue', averageValue: '2' } } }, 10));
    await until('4 workers for 8 jobs', async () => ((await replicas(ns, 'worker')) === 4 ? true : undefined));
    await exporter.app(exporter.names()[0]!, 'set?queue=2');
    await until('1 worker for 2 jobs', async () => ((await replicas(ns, 'worker')) === 1 ? true : undefined));
  });
});

describe('5. Injection through the real admission chain', () => {
  const podsOf = async (ns: string) => (await kubectlJson<{ items: { metadata: { annotations?: Record<string, string> }; spec: { containers: { name: string; args?: string[] }[] } }[] }>(kc, ['get', 'pods', '-n', ns])).items;

  it('injects the sidecar into annotated pods of a Deployment', async () => {
    await kubectl(kc, ['create', 'namespace', 'inj']);
    await kubectl(kc, ['apply', '-f', '-'], deployment('inj', 'annotated', { app: 'annotated' }, { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/interval': '2s' }));
    const pods = await until('a pod', async () => ((await podsOf('inj')).length > 0 ? podsOf('inj') : undefined));
    const sidecar = pods[0]!.spec.containers.find((c) => c.name === 'metrics-relay-sidecar');
    expect(sidecar?.args).toEqual(expect.arrayContaining(['sidecar', '--target', 'http://127.0.0.1:8080/metrics', '--interval', '2s']));
    expect(pods[0]!.metadata.annotations?.['metrics-relay.io/injected']).toBeDefined();
  });

  it('leaves pods without the annotation untouched', async () => {
    await kubectl(kc, ['create', 'namespace', 'plain']);
    await kubectl(kc, ['apply', '-f', '-'], deployment('plain', 'plain', { app: 'plain' }));
    const pods = await until('a pod', async () => ((await podsOf('plain')).length > 0 ? podsOf('plain') : undefined));
    expect(pods[0]!.spec.containers.map((c) => c.name)).toEqual(['app']);
  });

  it('still creates pods while the webhook is down (failurePolicy Ignore)', async () => {
    balancer.paused = true;
    balancer.dropConnections();
    try {
      await kubectl(kc, ['create', 'namespace', 'down']);
      await kubectl(kc, ['apply', '-f', '-'], deployment('down', 'annotated', { app: 'annotated' }, { 'metrics-relay.io/inject': 'true' }));
      const pods = await until('a pod', async () => ((await podsOf('down')).length > 0 ? podsOf('down') : undefined));
      expect(pods[0]!.spec.containers.map((c) => c.name)).toEqual(['app']);
    } finally {
      balancer.paused = false;
    }
  });
});

describe('6. Staleness: no scale-down on invented zeros', () => {
  const ns = 'stale';
  let pods: LocalKubelet;

  it('stopped sidecars make their pods missing, not zero, and the HPA holds', async () => {
    await kubectl(kc, ['create', 'namespace', ns]);
    await kubectl(kc, ['apply', '-f', '-'], deployment(ns, 'web', { app: 'web' }).replace('"replicas":1', '"replicas":3'));
    pods = new LocalKubelet({ kubeconfig: kc, namespace: ns, selector: 'app=web', sidecarArgs: sidecarArgs(ns), log });
    kubelets.push(pods);
    pods.start();
    await until('3 pods', async () => (pods.names().length === 3 ? true : undefined));
    // 4 per pod against a target of 5: within what 3 replicas need (ceil(0.8 x 3) = 3).
    // NOTE: not exactly the target: at a usage ratio of exactly 1.0 the HPA treats missing pods as 0 (its
    // scale-up branch) and scales down anyway, an upstream quirk of replica_calculator.go.
    for (const p of pods.names()) await pods.app(p, 'set?connections=4');
    // The HPA must not start from the apps' initial zeros (that alone would scale down): wait for the values.
    await until('4 on every pod', async () => {
      const v = JSON.parse(await kubectl(kc, ['get', '--raw', `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${ns}/pods/*/cm_connection_count?labelSelector=app%3Dweb`])) as { items: { value: string }[] };
      return v.items.length === 3 && v.items.every((i) => i.value === '4') ? true : undefined;
    });
    await kubectl(kc, ['apply', '-f', '-'], hpa(ns, 'web', { type: 'Pods', pods: { metric: { name: 'cm_connection_count' }, target: { type: 'AverageValue', averageValue: '5' } } }));
    await until('the HPA sees 4 per pod', async () => ((await hpaStatus(ns, 'web')).currentMetrics?.[0]?.pods?.current?.averageValue === '4' ? true : undefined));
    // Two sidecars die without a goodbye: their last values age out (15s) and are then omitted.
    for (const name of pods.names().slice(0, 2)) pods.pods.get(name)!.sidecar!.kill('SIGKILL');
    await until('only one pod served', async () => {
      const v = JSON.parse(await kubectl(kc, ['get', '--raw', `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${ns}/pods/*/cm_connection_count?labelSelector=app%3Dweb`])) as { items: unknown[] };
      return v.items.length === 1 ? true : undefined;
    }, 40_000);
    // Zeros for the silent pods would give 4/3 per pod and a scale-down to 1; missing pods count as the target.
    await new Promise((r) => setTimeout(r, 8000));
    expect(await replicas(ns, 'web')).toBe(3);
    const st = await hpaStatus(ns, 'web');
    expect(st.currentMetrics?.[0]?.pods?.current?.averageValue).toBe('4');
    expect(st.conditions?.find((c) => c.type === 'ScalingActive')?.status).toBe('True');
  });
});

describe('7. Replica loss', () => {
  it('the HPA keeps getting metrics when one aggregator replica dies', async () => {
    const ns = 'shop';
    const web = shopWeb;
    aggregators[0]!.child.kill('SIGKILL');
    balancer.dropConnections();
    await web.app(web.names()[0]!, 'set?connections=12'); // ceil(12 / 5 x 1) = 3
    await until('scaled to 3 through the surviving replica', async () => ((await replicas(ns, 'web')) === 3 ? true : undefined));
  });
});

describe('8. Security on the real control plane', () => {
  it("a sidecar cannot report for another pod with its own pod's token", async () => {
    const ns = 'shop';
    const web = shopWeb;
    const [victim] = web.names();
    const agg = aggregators[1]!;
    const tokenOther = await podToken(ns, { name: victim!, uid: web.pods.get(victim!)!.uid });
    const forged = await startRelay([
      'sidecar', '--target', `http://127.0.0.1:${web.pods.get(victim!)!.appPort}/metrics`, '--aggregator', `127.0.0.1:${agg.ports['ingest']}`,
      '--ca-file', cp.caFile, '--token-file', tokenOther, '--interval', '1s', '--pod-name', 'not-my-pod', '--pod-namespace', ns, '--pod-uid', 'forged', '--metrics-port', '0',
    ]);
    try {
      await until('forged_identity counted', async () => {
        const m = await (await fetch(`http://127.0.0.1:${agg.ports['metrics']}/metrics`)).text();
        return /metrics_relay_aggregator_rejected_reports_total\{reason="forged_identity"\} [1-9]/.test(m) ? true : undefined;
      }, 20_000);
      const v = await kubectl(kc, ['get', '--raw', `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${ns}/pods/not-my-pod/cm_connection_count`]).catch((e: Error) => e.message);
      expect(v).toMatch(/NotFound|not find/);
    } finally {
      await forged.stop();
    }
  });
});

describe('9. RBAC on the real control plane', () => {
  const ns = 'rbac';
  const hpaUser = 'system:serviceaccount:kube-system:horizontal-pod-autoscaler';
  const metricGroups = ['custom.metrics.k8s.io', 'external.metrics.k8s.io'];
  interface Rule { apiGroups?: string[] }
  interface ClusterRole { metadata: Record<string, unknown>; rules: Rule[] }

  it("removing the HPA controller's metrics RBAC makes its requests 403 and its HPA says so; restoring it heals", async () => {
    await kubectl(kc, ['create', 'namespace', ns]);
    await kubectl(kc, ['apply', '-f', '-'], deployment(ns, 'web', { app: 'web' }));
    const web = new LocalKubelet({ kubeconfig: kc, namespace: ns, selector: 'app=web', sidecarArgs: sidecarArgs(ns), log });
    kubelets.push(web);
    web.start();
    await until('web pod', async () => (web.names().length === 1 ? true : undefined));
    await web.app(web.names()[0]!, 'set?connections=4');
    await kubectl(kc, ['apply', '-f', '-'], hpa(ns, 'web', { type: 'Pods', pods: { metric: { name: 'cm_connection_count' }, target: { type: 'AverageValue', averageValue: '5' } } }));
    await until('the HPA sees 4', async () => ((await hpaStatus(ns, 'web')).currentMetrics?.[0]?.pods?.current?.averageValue === '4' ? true : undefined));

    // The controller's metrics rights come from two places: its bootstrap ClusterRole (which also lets it write
    // HPA status, so it must stay bound or no condition could change) and the chart's reader binding.
    const role = await kubectlJson<ClusterRole>(kc, ['get', 'clusterrole', 'system:controller:horizontal-pod-autoscaler']);
    const binding = await kubectlJson<{ metadata: Record<string, unknown> }>(kc, ['get', 'clusterrolebinding', 'metrics-relay-hpa-metrics-reader']);
    const withoutMetrics = { ...role, metadata: { name: role.metadata['name'], annotations: role.metadata['annotations'], labels: role.metadata['labels'] }, rules: role.rules.filter((r) => !r.apiGroups?.some((g) => metricGroups.includes(g))) };
    expect(withoutMetrics.rules.length).toBeLessThan(role.rules.length);
    await kubectl(kc, ['replace', '-f', '-'], JSON.stringify(withoutMetrics));
    await kubectl(kc, ['delete', 'clusterrolebinding', 'metrics-relay-hpa-metrics-reader']);
    try {
      const path = `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${ns}/pods/*/cm_connection_count`;
      const refused = await until('403 for the HPA controller', () => kubectl(kc, ['get', '--raw', path, '--as', hpaUser]).then(() => undefined, (e: Error) => e.message));
      expect(refused).toContain(`Error from server (Forbidden): pods.custom.metrics.k8s.io "*" is forbidden: User "${hpaUser}" cannot get resource "pods/cm_connection_count" in API group "custom.metrics.k8s.io" in the namespace "${ns}"`);
      const failed = await until('ScalingActive=False', async () => (await hpaStatus(ns, 'web')).conditions?.find((c) => c.type === 'ScalingActive' && c.status === 'False'));
      expect(failed.reason).toBe('FailedGetPodsMetric');
      expect(failed.message).toMatch(/unable to get metric cm_connection_count: .*forbidden/);
      // Nothing else moved: the Deployment keeps its size, other readers still get the value.
      expect(await replicas(ns, 'web')).toBe(1);
      expect(JSON.parse(await kubectl(kc, ['get', '--raw', path])).items[0].value).toBe('4');
    } finally {
      await kubectl(kc, ['replace', '-f', '-'], JSON.stringify({ ...role, metadata: withoutMetrics.metadata }));
      await kubectl(kc, ['create', '-f', '-'], JSON.stringify({ ...binding, metadata: { name: 'metrics-relay-hpa-metrics-reader', labels: binding.metadata['labels'], annotations: binding.metadata['annotations'] } }));
    }
    await until('ScalingActive=True again', async () => ((await hpaStatus(ns, 'web')).conditions?.find((c) => c.type === 'ScalingActive')?.status === 'True' ? true : undefined));
  });
});

describe('10. Node mode: one agent process stands in for a node', () => {
  const ns = 'nodemode';
  const agents: RelayProcess[] = [];
  let web: LocalKubelet;
  // NOTE: a killed replica has signalCode set and exitCode null.
  const alive = () => aggregators.filter((a): a is RelayProcess => a !== undefined && a.child.exitCode === null && a.child.signalCode === null);
  const ingestList = () => alive().map((a) => `127.0.0.1:${a.ports['ingest']}`).join(',');

  /** The node agent's own pod (a DaemonSet's, bound to `node`) and a node agent process with its bound token. */
  async function startAgent(agentPodNode: string, watchNode: string): Promise<RelayProcess> {
    const name = `agent-${agentPodNode}`;
    if (!(await kubectl(kc, ['get', 'pods', '-n', RELEASE_NS, '-o', 'name']).then((o) => o.includes(`pod/${name}`)))) {
      await kubectl(kc, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: RELEASE_NS }, spec: { nodeName: agentPodNode, serviceAccountName: NODE_AGENT_SA, containers: [{ name: 'agent', image: 'metrics-relay-sidecar:e2e' }] } }));
    }
    const uid = (await kubectlJson<{ metadata: { uid: string } }>(kc, ['get', 'pod', name, '-n', RELEASE_NS])).metadata.uid;
    const token = (await kubectl(kc, ['create', 'token', NODE_AGENT_SA, '-n', RELEASE_NS, '--audience', 'metrics-relay', '--bound-object-kind', 'Pod', '--bound-object-name', name, '--bound-object-uid', uid, '--duration', '1h'])).trim();
    const tokenFile = join(workDir, `token-${name}`);
    writeFileSync(tokenFile, token);
    const agentKubeconfig = await serviceAccountKubeconfigFile(cp, join(workDir, `${name}.kubeconfig`), RELEASE_NS, NODE_AGENT_SA);
    const agent = await startRelay(['node-agent', '--node-name', watchNode, '--kubeconfig', agentKubeconfig, '--aggregator', ingestList(), '--ca-file', cp.caFile, '--token-file', tokenFile, '--interval', '1s', '--metrics-port', '0', '--bind-address', '127.0.0.1']);
    agents.push(agent);
    return agent;
  }
  const raw = (path: string) => kubectl(kc, ['get', '--raw', path]).then((o) => JSON.parse(o) as { items: { value: string; describedObject: { name: string } }[] }, (e: Error) => e.message);

  beforeAll(async () => {
    await kubectl(kc, ['create', 'namespace', ns]);
    await startAgent('node-a', 'node-a');
    // The pods ask for the node agent: in mode both the webhook leaves them alone.
    await kubectl(kc, ['apply', '-f', '-'], deployment(ns, 'web', { app: 'web' }, { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/mode': 'node' }));
    web = new LocalKubelet({ kubeconfig: kc, namespace: ns, selector: 'app=web', node: { name: 'node-a', subnet: 10 }, log });
    kubelets.push(web);
    web.start();
    await until('web pod on node-a', async () => (web.names().length === 1 ? true : undefined));
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
  });

  it('the webhook injected nothing; the agent streams the pod values the kube-aggregator serves', async () => {
    const pod = await kubectlJson<{ spec: { nodeName: string; containers: { name: string }[] } }>(kc, ['get', 'pod', web.names()[0]!, '-n', ns]);
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['app']);
    expect(pod.spec.nodeName).toBe('node-a');
    await web.app(web.names()[0]!, 'set?connections=3');
    await until('the value 3', async () => {
      const v = await raw(`/apis/custom.metrics.k8s.io/v1beta1/namespaces/${ns}/pods/*/cm_connection_count`);
      return typeof v !== 'string' && v.items[0]?.value === '3' ? true : undefined;
    });
  });

  it('the HPA scales on the values up to the formula, and back down', async () => {
    await kubectl(kc, ['apply', '-f', '-'], hpa(ns, 'web', { type: 'Pods', pods: { metric: { name: 'cm_connection_count' }, target: { type: 'AverageValue', averageValue: '5' } } }));
    await web.app(web.names()[0]!, 'set?connections=20'); // ceil(20 / 5 x 1 pod) = 4
    await until('Deployment at 4', async () => ((await replicas(ns, 'web')) === 4 ? true : undefined));
    await until('4 pods on node-a', async () => (web.names().length === 4 ? true : undefined));
    for (const p of web.names()) await web.app(p, 'set?connections=0');
    await until('Deployment back to 1', async () => ((await replicas(ns, 'web')) === 1 ? true : undefined));
    expect((await hpaStatus(ns, 'web')).conditions?.find((c) => c.type === 'ScalingActive')?.status).toBe('True');
  });

  it('an HPA on a Service sees the sum over its pods on the node (Object metric)', async () => {
    await apiBehindService(ns, { node: { name: 'node-a', subnet: 12 } }, { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/mode': 'node' });
    await kubectl(kc, ['apply', '-f', '-'], serviceHpa(ns));
    await until('the sum 42 in the HPA status', async () => ((await hpaStatus(ns, 'api')).currentMetrics?.[0]?.object?.current?.value === '42' ? true : undefined));
    await kubectl(kc, ['delete', 'hpa', 'api', '-n', ns]);
  });

  it('a pod leaving the node loses its values at once (the agent says Goodbye; no waiting for staleness)', async () => {
    await kubectl(kc, ['delete', 'hpa', 'web', '-n', ns]);
    // The pods the scale-down removed are stopped by the next kubelet sync: pick the one that stays.
    await until('1 pod on node-a', async () => (web.names().length === 1 ? true : undefined));
    const [pod] = web.names();
    await web.app(pod!, 'set?connections=2');
    const path = `/apis/custom.metrics.k8s.io/v1beta2/namespaces/${ns}/pods/${pod}/cm_connection_count`;
    await until('the value 2', async () => {
      const v = await raw(path);
      return typeof v !== 'string' && v.items[0]?.value === '2' ? true : undefined;
    });
    // Graceful deletion: the pod object stays (terminating: no kubelet confirms it here), so only the agent can
    // have removed the values, and well within the 15s a stale value would take.
    const t0 = Date.now();
    await kubectl(kc, ['delete', 'pod', pod!, '-n', ns, '--wait=false']);
    const gone = await until('the values gone', async () => {
      const v = await raw(path);
      return typeof v === 'string' && /NotFound/.test(v) ? v : undefined;
    }, 10_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(gone).not.toMatch(/stale/);
    expect((await kubectlJson<{ metadata: { deletionTimestamp?: string } }>(kc, ['get', 'pod', pod!, '-n', ns])).metadata.deletionTimestamp).toBeDefined();
  });

  it('an agent that claims the pods of another node is refused, counted, and serves nothing', async () => {
    // A pod on node-b, and an agent holding node-a's token that watches node-b.
    const other = new LocalKubelet({ kubeconfig: kc, namespace: ns, selector: 'app=other', node: { name: 'node-b', subnet: 11 }, log });
    kubelets.push(other);
    await kubectl(kc, ['apply', '-f', '-'], deployment(ns, 'other', { app: 'other' }, { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/mode': 'node' }));
    other.start();
    await until('the pod on node-b', async () => (other.names().length === 1 ? true : undefined));
    const agg = alive()[0]!;
    const refused = async () => Number(/metrics_relay_aggregator_rejected_reports_total\{reason="pod_not_on_node"\} (\d+)/.exec(await (await fetch(`http://127.0.0.1:${agg.ports['metrics']}/metrics`)).text())?.[1] ?? 0);
    const before = await refused();
    const forged = await startAgent('node-a', 'node-b');
    await until('pod_not_on_node counted', async () => ((await refused()) > before ? true : undefined), 20_000);
    const line = await until('the refusal in the agent log', async () => forged.lines.find((l) => l.includes('runs on node node-b')));
    expect(line).toContain(`the node agent ${RELEASE_NS}/agent-node-a of node node-a may report only for pods on that node; pod ${ns}/${other.names()[0]} runs on node node-b`);
    const v = await raw(`/apis/custom.metrics.k8s.io/v1beta2/namespaces/${ns}/pods/${other.names()[0]}/cm_connection_count`);
    expect(v).toMatch(/NotFound/);
  });
});
