import { inject, afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startControlPlane, type ControlPlane } from './controlplane.js';
import { kubectl } from './harness.js';
import { ROOT } from '../helpers/processes.js';

// The Helm chart: lint, render, validation by a real kube-apiserver (server-side dry run), and an install and
// upgrade against it that leave what the aggregator wrote (the managed CA and every caBundle) alone.

const run = promisify(execFile);
const CHART = join(ROOT, 'charts/metrics-relay');
let helm: string;
let cp: ControlPlane;
let workDir: string;

type Obj = { kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec?: any; data?: any; webhooks?: any[] }; // eslint-disable-line @typescript-eslint/no-explicit-any

async function template(...sets: string[]): Promise<string> {
  return (await run(helm, ['template', 'metrics-relay', CHART, '--namespace', 'metrics-relay', ...sets.flatMap((s) => ['--set', s])])).stdout;
}

/** Renders, then has the real API server validate and default every object (server-side dry run). */
async function validated(...sets: string[]): Promise<Obj[]> {
  const out = await kubectl(cp.kubeconfig, ['apply', '--dry-run=server', '-o', 'json', '-f', '-'], await template(...sets));
  const doc = JSON.parse(out) as { kind: string; items?: Obj[] } & Obj;
  return doc.kind === 'List' ? doc.items! : [doc];
}

beforeAll(async () => {
  const binDir = inject('k8sBinDir');
  helm = join(binDir, 'helm');
  workDir = mkdtempSync(join(tmpdir(), 'metrics-relay-chart-'));
  cp = await startControlPlane({ binDir, workDir });
  await kubectl(cp.kubeconfig, ['create', 'namespace', 'metrics-relay']);
});

afterAll(async () => {
  await cp?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('chart', () => {
  it('passes helm lint', async () => {
    const { stdout } = await run(helm, ['lint', CHART]);
    expect(stdout).toContain('0 chart(s) failed');
  });

  it('renders objects the API server accepts: TLS everywhere, two API versions, external off by default', async () => {
    const objs = await validated();
    const apiservices = objs.filter((o) => o.kind === 'APIService');
    expect(apiservices.map((a) => a.metadata.name).sort()).toEqual(['v1beta1.custom.metrics.k8s.io', 'v1beta2.custom.metrics.k8s.io']);
    for (const a of apiservices) {
      // Managed TLS: the aggregator writes the caBundle (test/e2e/fleet.test.ts), never insecureSkipTLSVerify.
      expect(a.spec.caBundle).toBeUndefined();
      expect(a.spec.insecureSkipTLSVerify).toBeUndefined();
      expect(a.spec.service).toEqual({ name: 'metrics-relay', namespace: 'metrics-relay', port: 443 });
    }
    expect(apiservices.find((a) => a.metadata.name.startsWith('v1beta2'))!.spec.versionPriority).toBeGreaterThan(apiservices.find((a) => a.metadata.name.startsWith('v1beta1'))!.spec.versionPriority);
    const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'metrics-relay')!;
    expect(svc.spec.ports).toEqual([expect.objectContaining({ name: 'https', port: 443, targetPort: 'https' })]);
    const headless = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'metrics-relay-ingest')!;
    expect(headless.spec.clusterIP).toBe('None');
    const dep = objs.find((o) => o.kind === 'Deployment')!;
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.containers[0].securityContext.readOnlyRootFilesystem).toBe(true);
    expect(pod.containers[0].args).toEqual(expect.arrayContaining(['aggregator', '--managed-tls-secret=metrics-relay/metrics-relay-tls', '--inject-aggregator=metrics-relay-ingest.metrics-relay.svc:9443']));
    expect(objs.map((o) => o.kind)).toEqual(expect.arrayContaining(['PodDisruptionBudget', 'ServiceAccount', 'Secret', 'Lease', 'Role', 'MutatingWebhookConfiguration']));
  });

  it('registers the webhook twice (namespace opt-in, annotated pods), failing open, never in kube-system or its own namespace', async () => {
    const hook = (await validated()).find((o) => o.kind === 'MutatingWebhookConfiguration')!;
    expect(hook.webhooks!.map((w) => [w.name, w.clientConfig.service.path])).toEqual([
      ['namespace.inject.metrics-relay.io', '/mutate/namespace'],
      ['pod.inject.metrics-relay.io', '/mutate/pod'],
    ]);
    for (const w of hook.webhooks!) {
      expect(w).toMatchObject({ failurePolicy: 'Ignore', sideEffects: 'NoneOnDryRun', timeoutSeconds: 5, admissionReviewVersions: ['v1'] });
      expect(w.clientConfig.caBundle).toBeUndefined();
      expect(w.namespaceSelector.matchExpressions[0]).toEqual({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'metrics-relay'] });
    }
    expect(hook.webhooks![0].namespaceSelector.matchExpressions[1]).toEqual({ key: 'metrics-relay.io/inject', operator: 'In', values: ['enabled'] });
    expect(hook.webhooks![1].namespaceSelector.matchExpressions[1]).toEqual({ key: 'metrics-relay.io/inject', operator: 'NotIn', values: ['enabled'] });
  });

  it('adds v1beta1.external.metrics.k8s.io when asked', async () => {
    const names = (await validated('externalMetrics.enabled=true')).filter((o) => o.kind === 'APIService').map((o) => o.metadata.name);
    expect(names).toContain('v1beta1.external.metrics.k8s.io');
  });

  it('out of cluster: an ExternalName Service, the given CA, the webhook by URL, no workloads', async () => {
    const objs = await validated('outOfCluster.enabled=true', 'outOfCluster.address=127.0.0.1', 'outOfCluster.apiPort=7443', 'outOfCluster.caBundle=Zm9vCg==');
    expect(objs.find((o) => o.kind === 'Service')!.spec).toMatchObject({ type: 'ExternalName', externalName: '127.0.0.1' });
    expect(objs.filter((o) => o.kind === 'APIService').every((a) => a.spec.caBundle === 'Zm9vCg==' && a.spec.service.port === 7443)).toBe(true);
    expect(objs.find((o) => o.kind === 'MutatingWebhookConfiguration')!.webhooks![0].clientConfig.url).toBe('https://127.0.0.1:7443/mutate/namespace');
    expect(objs.some((o) => o.kind === 'Deployment' || o.kind === 'Secret')).toBe(false);
  });

  it('with cert-manager: a Certificate and CA injection annotations instead of literal bundles', async () => {
    const out = await template('certManager.enabled=true');
    expect(out).toContain('kind: Certificate');
    expect(out).toContain('cert-manager.io/inject-ca-from: metrics-relay/metrics-relay');
    expect(out).not.toMatch(/caBundle:/);
    expect(out).not.toContain('insecureSkipTLSVerify');
  });

  it('mode=both and mode=node: the node agents\' DaemonSet, RBAC and CA ConfigMap pass the API server\'s validation', async () => {
    const both = await validated('mode=both');
    const ds = both.find((o) => o.kind === 'DaemonSet')!;
    expect(ds.metadata.name).toBe('metrics-relay-node-agent');
    expect(ds.spec.updateStrategy).toMatchObject({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } });
    expect(ds.spec.template.spec.volumes[0].projected.sources[0].serviceAccountToken).toMatchObject({ audience: 'metrics-relay', expirationSeconds: 3600, path: 'token' });
    expect(both.filter((o) => o.metadata.name === 'metrics-relay-node-agent').map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'ServiceAccount']);
    expect(both.some((o) => o.kind === 'MutatingWebhookConfiguration')).toBe(true);
    const node = await validated('mode=node', 'tls.existingSecret=corp-tls', 'tls.caBundle=Zm9vCg==');
    expect(node.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'metrics-relay-ca')!.data).toEqual({ 'ca.crt': 'foo\n' });
    expect(node.some((o) => o.kind === 'MutatingWebhookConfiguration')).toBe(false);
  });

  it('rejects bad values at install with messages naming them', async () => {
    const err = await template('replicaCount=0', 'ports.api=70000', 'logLevel=loud', 'warmup=soon').then(() => undefined, (e: { stderr: string }) => e.stderr);
    expect(err).toContain("at '/replicaCount': minimum: got 0, want 1");
    expect(err).toContain("at '/ports/api': maximum: got 70,000, want 65,535");
    expect(err).toContain("at '/logLevel': value must be one of");
    expect(err).toContain("at '/warmup': 'soon' does not match pattern");
    const missing = await template('tls.existingSecret=corp-tls').then(() => undefined, (e: { stderr: string }) => e.stderr);
    expect(missing).toContain('tls.caBundle is required with tls.existingSecret');
  });

  it('installs, and an upgrade leaves the CA and caBundles the aggregator wrote', async () => {
    const env = { ...process.env, KUBECONFIG: cp.kubeconfig };
    const install = ['upgrade', '--install', 'metrics-relay', CHART, '--namespace', 'metrics-relay'];
    await run(helm, install, { env });
    const k = (args: string[], input?: string) => kubectl(cp.kubeconfig, args, input);
    const secret = async () => JSON.parse(await k(['get', 'secret', 'metrics-relay-tls', '-n', 'metrics-relay', '-o', 'json'])) as { data?: Record<string, string> };
    const apiCa = async () => JSON.parse(await k(['get', 'apiservice', 'v1beta2.custom.metrics.k8s.io', '-o', 'json'])).spec.caBundle as string | undefined;
    expect((await secret()).data).toBeUndefined();
    expect(await apiCa()).toBeUndefined();
    // What the aggregator's leader does (with its own field manager): fill the Secret, write the caBundle.
    const written = { 'ca.crt': Buffer.from('ca').toString('base64'), 'tls.crt': Buffer.from('crt').toString('base64') };
    await k(['patch', 'secret', 'metrics-relay-tls', '-n', 'metrics-relay', '--type=merge', '-p', JSON.stringify({ data: written })]);
    await k(['patch', 'apiservice', 'v1beta2.custom.metrics.k8s.io', '--type=merge', '-p', JSON.stringify({ spec: { caBundle: written['ca.crt'] } })]);
    await run(helm, [...install, '--set', 'logLevel=debug'], { env });
    expect((await secret()).data).toEqual(written);
    expect(await apiCa()).toBe(written['ca.crt']);

    // To node mode: the webhook goes, the agents' CA ConfigMap comes empty; what the leader writes into it stays.
    await run(helm, [...install, '--set', 'mode=node'], { env });
    await expect(k(['get', 'mutatingwebhookconfiguration', 'metrics-relay-injector'])).rejects.toThrow(/NotFound|not found/);
    const caMap = async () => JSON.parse(await k(['get', 'configmap', 'metrics-relay-ca', '-n', 'metrics-relay', '-o', 'json'])) as { data?: Record<string, string> };
    expect((await caMap()).data).toBeUndefined();
    await k(['patch', 'configmap', 'metrics-relay-ca', '-n', 'metrics-relay', '--type=merge', '-p', JSON.stringify({ data: { 'ca.crt': 'ca' } })]);
    await run(helm, [...install, '--set', 'mode=node', '--set', 'logLevel=debug'], { env });
    expect((await caMap()).data).toEqual({ 'ca.crt': 'ca' });
    expect((await secret()).data).toEqual(written);
  });
});
