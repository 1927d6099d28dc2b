import { inject, afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCert, startControlPlane, type ControlPlane } from './controlplane.js';
import { eventually } from '../helpers/processes.js';

// Smoke test of the harness: real apiserver + aggregator + HPA controller, a throwaway external-metrics server.

let cp: ControlPlane | undefined;
let workDir: string;
let fake: Server | undefined;
const remoteUsers: string[] = [];

// async on purpose: a sync exec would block the event loop and so the fake metrics server in this process
function kubectl(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('kubectl', ['--kubeconfig', cp!.kubeconfig, ...args], { encoding: 'utf8' }, (err, stdout, stderr) =>
      err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout));
    child.stdin!.end(input ?? '');
  });
}

/** Polls fn every 500ms until it yields a value; the error names what was awaited. */
function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  return eventually(fn, timeoutMs, 500).catch((err: Error) => {
    throw new Error(`waiting for ${what}: ${err.message}`);
  });
}

beforeAll(async () => {
  const binDir = inject('k8sBinDir');
  workDir = mkdtempSync(join(tmpdir(), 'metrics-relay-cp-'));
  const t0 = Date.now();
  cp = await startControlPlane({ binDir, workDir, log: (l) => console.log(`[cp] ${l}`) });
  console.log(`[cp] startControlPlane took ${Date.now() - t0}ms`);
});

afterAll(async () => {
  fake?.close();
  await cp?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('control plane', () => {
  it('serves the API with the admin kubeconfig', async () => {
    const names = (await kubectl(['get', 'ns', '-o', 'name'])).split('\n');
    expect(names).toContain('namespace/default');
    expect(names).toContain('namespace/kube-system');
    // the requestheader flags publish the ConfigMap that aggregated servers read
    const cm = JSON.parse(await kubectl(['-n', 'kube-system', 'get', 'configmap', 'extension-apiserver-authentication', '-o', 'json'])) as { data: Record<string, string> };
    expect(cm.data['requestheader-allowed-names']).toContain('front-proxy-client');
  });

  it('aggregates an ExternalName-backed APIService, calls a URL webhook, and the HPA scales on it', async () => {
    // external.metrics.k8s.io server on 127.0.0.1: one metric, queue_depth = 30
    const tls = issueCert(cp!.pkiDir, 'fake-metrics', { sans: ['fake-metrics.default.svc', '127.0.0.1'] });
    const srv = createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const send = (body: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'POST' && path === '/mutate') {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          const review = JSON.parse(body) as { request: { uid: string } };
          const patch = Buffer.from(JSON.stringify([{ op: 'add', path: '/metadata/labels/injected', value: 'yes' }])).toString('base64');
          send({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch } });
        });
        return;
      }
      if (path === '/apis/external.metrics.k8s.io/v1beta1') {
        return send({ kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'external.metrics.k8s.io/v1beta1',
          resources: [{ name: 'queue_depth', singularName: '', namespaced: true, kind: 'ExternalMetricValueList', verbs: ['get'] }] });
      }
      if (path === '/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth') {
        remoteUsers.push(String(req.headers['x-remote-user']));
        return send({ kind: 'ExternalMetricValueList', apiVersion: 'external.metrics.k8s.io/v1beta1', metadata: {},
          items: [{ metricName: 'queue_depth', metricLabels: {}, timestamp: new Date().toISOString(), value: '30' }] });
      }
      res.writeHead(404).end();
    });
    fake = srv;
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;

    await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'fake-metrics', namespace: 'default' }, spec: { type: 'ExternalName', externalName: '127.0.0.1' } },
      { apiVersion: 'apiregistration.k8s.io/v1', kind: 'APIService', metadata: { name: 'v1beta1.external.metrics.k8s.io' },
        spec: { group: 'external.metrics.k8s.io', version: 'v1beta1', groupPriorityMinimum: 100, versionPriority: 100,
          service: { namespace: 'default', name: 'fake-metrics', port }, caBundle: readFileSync(cp!.caFile).toString('base64') } },
    ] }));
    await kubectl(['wait', '--for=condition=Available', '--timeout=60s', 'apiservice/v1beta1.external.metrics.k8s.io']);
    const value = JSON.parse(await kubectl(['get', '--raw', '/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth'])) as { items: { value: string }[] };
    expect(value.items[0]!.value).toBe('30');

    // mutating webhook by URL on 127.0.0.1 (cert with IP SAN, cluster CA as caBundle)
    await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'e2e-inject' },
      webhooks: [{ name: 'inject.e2e.example.com', clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: readFileSync(cp!.caFile).toString('base64') },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }], objectSelector: { matchLabels: { app: 'web' } },
        sideEffects: 'None', admissionReviewVersions: ['v1'], failurePolicy: 'Fail' }] }));

    // Deployment without kubelet: pods stay Pending until the test patches their status.
    await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'example.invalid/none' }] } } } }));
    const markRunning = async (): Promise<number> => {
      const pods = JSON.parse(await kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json'])) as { items: { metadata: { name: string }; status: { phase: string } }[] };
      for (const pod of pods.items.filter((p) => p.status.phase === 'Pending')) {
        const now = new Date().toISOString();
        await kubectl(['patch', 'pod', pod.metadata.name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: {
          phase: 'Running', startTime: now,
          conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime: now })) } })]);
      }
      return pods.items.length;
    };
    await until('first pod', async () => ((await markRunning()) >= 1 ? true : undefined));
    const phase = await kubectl(['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].status.phase}']);
    expect(phase).toBe('Running');
    expect(await kubectl(['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].metadata.labels.injected}'])).toBe('yes');

    // External/Value needs Running+Ready pods: 30 / 10 per ready pod => 3 replicas.
    await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'web', namespace: 'default' },
      spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 1, maxReplicas: 3,
        metrics: [{ type: 'External', external: { metric: { name: 'queue_depth' }, target: { type: 'Value', value: '10' } } }] } }));
    await until('deployment scaled to 3', async () => {
      await markRunning();
      return (await kubectl(['get', 'deployment', 'web', '-o', 'jsonpath={.spec.replicas}'])) === '3' ? true : undefined;
    }, 90_000);
    // the HPA controller ran as its own service account (--use-service-account-credentials)
    expect(remoteUsers).toContain('system:serviceaccount:kube-system:horizontal-pod-autoscaler');
  });

  it('stop() leaves no process behind', async () => {
    const { pids, ports } = cp!;
    await cp!.stop();
    await cp!.stop(); // idempotent
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    const leftovers = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
      try {
        const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
        return cmd.includes(workDir) || cmd.includes(`127.0.0.1:${ports.etcd}`);
      } catch {
        return false;
      }
    });
    expect(leftovers).toEqual([]);
  });
});
