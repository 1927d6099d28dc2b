import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { startRelay, eventually, type RelayProcess } from '../helpers/processes.js';
import { TestReporter } from '../helpers/ingest-client.js';
import { get } from '../helpers/http.js';
import { TestPki, type Issued } from '../helpers/pki.js';
import { FakeKube } from '../helpers/fake-kube.js';

// Real TLS on loopback: who may ask the API, who may report on the ingest port.

const pki = new TestPki();
const kube = new FakeKube();
let serverCa: Issued;
let frontProxyCa: Issued;
let frontProxy: Issued;
let agg: RelayProcess;
let api: string;
const reporters: TestReporter[] = [];

const PODS_URL = '/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/%2A/cm_conn?labelSelector=app%3Dweb';
const unauthorizedBody = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };

function configMap(ca: Issued): Record<string, string> {
  return {
    'requestheader-client-ca-file': ca.cert,
    'requestheader-allowed-names': '["front-proxy-client"]',
    'requestheader-username-headers': '["X-Remote-User"]',
    'requestheader-group-headers': '["X-Remote-Group"]',
    'requestheader-extra-headers-prefix': '["X-Remote-Extra-"]',
  };
}

function call(url: string, client?: Issued, headers: Record<string, string> = {}) {
  return get(`${api}${url}`, { ca: serverCa.cert, headers, ...(client ? { cert: client.cert, key: client.key } : {}) });
}

function reporter(token?: string): TestReporter {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  const r = new TestReporter(`127.0.0.1:${agg.ports['ingest']}`, md, grpc.credentials.createSsl(Buffer.from(serverCa.cert)));
  reporters.push(r);
  return r;
}

beforeAll(async () => {
  serverCa = pki.ca('server-ca');
  const serving = pki.leaf(serverCa, 'serving', { server: ['127.0.0.1', 'localhost'] });
  frontProxyCa = pki.ca('front-proxy-ca');
  frontProxy = pki.leaf(frontProxyCa, 'front-proxy-client');
  await kube.start();
  kube.setAuthConfigMap(configMap(frontProxyCa));
  const podToken = (pod: string, uid: string) => ({ username: 'system:serviceaccount:shop:web', extra: { 'authentication.kubernetes.io/pod-name': [pod], 'authentication.kubernetes.io/pod-uid': [uid] }, audiences: ['metrics-relay'] });
  kube.tokens.set('token-web-1', podToken('web-1', 'uid-1'));
  kube.tokens.set('token-web-2', podToken('web-2', 'uid-2'));
  kube.tokens.set('token-wrong-audience', { ...podToken('web-1', 'uid-1'), audiences: ['https://kubernetes.default.svc'] });
  kube.tokens.set('prometheus-token', { username: 'system:serviceaccount:monitoring:prometheus', groups: ['system:serviceaccounts'] });
  // A node agent on node-a, and pods on node-a and node-b (the agent's own pod is how its node is known).
  kube.tokens.set('token-agent-a', { username: 'system:serviceaccount:metrics-relay:metrics-relay-node-agent', extra: { 'authentication.kubernetes.io/pod-name': ['agent-a'], 'authentication.kubernetes.io/pod-uid': ['uid-agent-a'] }, audiences: ['metrics-relay'] });
  kube.tokens.set('token-agent-gone', { username: 'system:serviceaccount:metrics-relay:metrics-relay-node-agent', extra: { 'authentication.kubernetes.io/pod-name': ['agent-old'], 'authentication.kubernetes.io/pod-uid': ['uid-agent-old'] }, audiences: ['metrics-relay'] });
  const pod = (namespace: string, name: string, uid: string, nodeName: string) => ({ metadata: { namespace, name, uid, labels: { app: 'db' } }, spec: { nodeName } });
  kube.put('/api/v1/pods', pod('metrics-relay', 'agent-a', 'uid-agent-a', 'node-a'));
  kube.put('/api/v1/pods', pod('shop', 'db-1', 'uid-db-1', 'node-a'));
  kube.put('/api/v1/pods', pod('shop', 'db-2', 'uid-db-2', 'node-b'));
  agg = await startRelay(['aggregator', '--bind-address', '127.0.0.1', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--kubeconfig', kube.kubeconfig(), '--tls-cert-file', serving.certFile, '--tls-key-file', serving.keyFile, '--warmup', '1s', '--node-agent-service-account', 'metrics-relay/metrics-relay-node-agent']);
  api = `https://127.0.0.1:${agg.ports['api']}`;
  await reporter('token-web-1').hello({ namespace: 'shop', name: 'web-1', uid: 'uid-1', labels: { app: 'web' } }).snapshot([{ name: 'cm_conn', value: 3 }]);
  // The front-proxy trust arrives from the ConfigMap shortly after start.
  await eventually(async () => ((await call('/apis/custom.metrics.k8s.io/v1beta2', frontProxy, { 'X-Remote-User': 'system:kube-aggregator', 'X-Remote-Group': 'system:masters' })).status === 200 ? true : undefined));
});

afterAll(async () => {
  for (const r of reporters) r.close();
  await agg?.stop();
  await kube.stop();
});

describe('API port authentication and authorization', () => {
  it('401 without a client certificate or token', async () => {
    const r = await call(PODS_URL);
    expect(r.status).toBe(401);
    expect(r.json).toEqual(unauthorizedBody);
  });

  it('401 for a certificate from another CA, even with the allowed CN', async () => {
    const other = pki.leaf(pki.ca('other-ca'), 'front-proxy-client-other', { cn: 'front-proxy-client' });
    const r = await call(PODS_URL, other, { 'X-Remote-User': 'alice' });
    expect([r.status, r.json]).toEqual([401, unauthorizedBody]);
  });

  it('401 for a valid certificate whose CN is not allowed', async () => {
    const stranger = pki.leaf(frontProxyCa, 'not-the-proxy');
    const r = await call(PODS_URL, stranger, { 'X-Remote-User': 'alice' });
    expect([r.status, r.json]).toEqual([401, unauthorizedBody]);
  });

  it('401 for forged X-Remote-* headers without a certificate', async () => {
    const reviews = kube.reviews.length;
    const r = await call(PODS_URL, undefined, { 'X-Remote-User': 'system:admin', 'X-Remote-Group': 'system:masters' });
    expect([r.status, r.json]).toEqual([401, unauthorizedBody]);
    expect(kube.reviews.length).toBe(reviews);
  });

  it('403 with the Go message when the SubjectAccessReview denies', async () => {
    kube.decide = () => ({ allowed: false, reason: 'no RBAC policy matched' });
    const r = await call(PODS_URL, frontProxy, { 'X-Remote-User': 'bob' });
    expect(r.status).toBe(403);
    expect(r.json).toEqual({
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: 'pods.custom.metrics.k8s.io "*" is forbidden: User "bob" cannot get resource "pods/cm_conn" in API group "custom.metrics.k8s.io" in the namespace "shop": no RBAC policy matched',
      reason: 'Forbidden', details: { name: '*', group: 'custom.metrics.k8s.io', kind: 'pods' }, code: 403,
    });
  });

  it('503 (fail closed) when the SubjectAccessReview cannot be made', async () => {
    kube.decide = () => {
      throw new Error('etcd on fire');
    };
    const r = await call(PODS_URL, frontProxy, { 'X-Remote-User': 'carol' });
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ kind: 'Status', reason: 'ServiceUnavailable', code: 503 });
    expect(r.json.message).toMatch(/^authorization is unavailable, so the request is refused: /);
  });

  it('200 when allowed, with the SubjectAccessReview built as the Go webhook authorizer builds it', async () => {
    kube.decide = () => ({ allowed: true });
    const r = await call(PODS_URL, frontProxy, { 'X-Remote-User': 'system:serviceaccount:kube-system:horizontal-pod-autoscaler', 'X-Remote-Group': 'system:serviceaccounts', 'X-Remote-Extra-Authentication.kubernetes.io%2fcredential-Id': 'JTI=abc' });
    expect(r.status).toBe(200);
    expect(r.json.items[0].value).toBe('3');
    expect(kube.reviews.at(-1)).toEqual({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: 'system:serviceaccount:kube-system:horizontal-pod-autoscaler',
        groups: ['system:serviceaccounts', 'system:authenticated'],
        extra: { 'authentication.kubernetes.io/credential-id': ['JTI=abc'] },
        uid: '',
        resourceAttributes: { namespace: 'shop', verb: 'get', group: 'custom.metrics.k8s.io', version: 'v1beta2', resource: 'pods', subresource: 'cm_conn', name: '*' },
      },
    });
  });

  it('caches decisions briefly and short-circuits system:masters', async () => {
    const before = kube.reviews.length;
    await call(PODS_URL, frontProxy, { 'X-Remote-User': 'system:serviceaccount:kube-system:horizontal-pod-autoscaler', 'X-Remote-Group': 'system:serviceaccounts', 'X-Remote-Extra-Authentication.kubernetes.io%2fcredential-Id': 'JTI=abc' });
    expect(kube.reviews.length).toBe(before);
    const m = await call(PODS_URL, frontProxy, { 'X-Remote-User': 'admin', 'X-Remote-Group': 'system:masters' });
    expect(m.status).toBe(200);
    expect(kube.reviews.length).toBe(before);
  });

  it('accepts bearer tokens through TokenReview and rejects unknown ones', async () => {
    expect((await call(PODS_URL, undefined, { authorization: 'Bearer prometheus-token' })).status).toBe(200);
    const bad = await call(PODS_URL, undefined, { authorization: 'Bearer nope' });
    expect([bad.status, bad.json]).toEqual([401, unauthorizedBody]);
  });

  it('authorizes discovery as a non-resource path and always allows probes', async () => {
    kube.decide = (spec) => ({ allowed: Boolean(spec['nonResourceAttributes']) });
    expect((await call('/apis/custom.metrics.k8s.io/v1beta1', frontProxy, { 'X-Remote-User': 'system:kube-aggregator' })).status).toBe(200);
    expect(kube.reviews.at(-1)!['spec']).toMatchObject({ nonResourceAttributes: { path: '/apis/custom.metrics.k8s.io/v1beta1', verb: 'get' }, groups: ['system:authenticated'] });
    // Probes need no identity at all (the replica may still be warming up: any Status-free answer proves it).
    const probe = await call('/readyz');
    expect([200, 503]).toContain(probe.status);
    expect(probe.json).toBeUndefined();
    expect((await call('/livez')).text).toBe('ok');
    kube.decide = () => ({ allowed: true });
  });

  it('picks up a rotated front-proxy CA from the ConfigMap without a restart', async () => {
    const newCa = pki.ca('front-proxy-ca-2');
    const newProxy = pki.leaf(newCa, 'front-proxy-client-2', { cn: 'front-proxy-client' });
    kube.setAuthConfigMap(configMap(newCa));
    await eventually(async () => ((await call(PODS_URL, newProxy, { 'X-Remote-User': 'admin', 'X-Remote-Group': 'system:masters' })).status === 200 ? true : undefined));
    expect((await call(PODS_URL, frontProxy, { 'X-Remote-User': 'admin', 'X-Remote-Group': 'system:masters' })).status).toBe(401);
    kube.setAuthConfigMap(configMap(frontProxyCa));
    await eventually(async () => ((await call(PODS_URL, frontProxy, { 'X-Remote-User': 'admin', 'X-Remote-Group': 'system:masters' })).status === 200 ? true : undefined));
  });
});

describe('ingest port: only the pod itself may report', () => {
  const admin = { 'X-Remote-User': 'admin', 'X-Remote-Group': 'system:masters' };
  const value = async (pod: string) => (await call(`/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/${pod}/cm_conn`, frontProxy, admin)).json;

  it('UNAUTHENTICATED without a token', async () => {
    const r = reporter().hello({ namespace: 'shop', name: 'web-1', uid: 'uid-1' });
    expect(await r.endOfStream()).toEqual({ code: grpc.status.UNAUTHENTICATED, details: 'missing bearer token: send the pod\'s projected ServiceAccount token (audience metrics-relay) as "authorization: Bearer <token>"' });
  });

  it('UNAUTHENTICATED for a token of the wrong audience or unknown', async () => {
    for (const token of ['token-wrong-audience', 'expired-token']) {
      const r = reporter(token).hello({ namespace: 'shop', name: 'web-1', uid: 'uid-1' });
      expect(await r.endOfStream()).toEqual({ code: grpc.status.UNAUTHENTICATED, details: 'token rejected by TokenReview (expired, revoked, or not for audience metrics-relay)' });
    }
  });

  it("PERMISSION_DENIED when pod A's token reports for pod B; A's own data is unaffected", async () => {
    const forged = reporter('token-web-2').hello({ namespace: 'shop', name: 'web-1', uid: 'uid-1' });
    expect(await forged.endOfStream()).toEqual({ code: grpc.status.PERMISSION_DENIED, details: "this stream's token is bound to pod shop/web-2 (uid uid-2); it may not report for pod shop/web-1 (uid uid-1)" });
    expect((await value('web-1')).items[0].value).toBe('3');
    const metrics = await get(`http://127.0.0.1:${agg.ports['metrics']}/metrics`);
    expect(metrics.text).toMatch(/metrics_relay_aggregator_rejected_reports_total\{reason="forged_identity"\} 1/);
  });

  it('RESOURCE_EXHAUSTED for a snapshot flood, without disturbing other streams', async () => {
    const flood = reporter('token-web-2').hello({ namespace: 'shop', name: 'web-2', uid: 'uid-2', labels: { app: 'web' } });
    const sent: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) sent.push(flood.snapshot([{ name: 'cm_conn', value: i }]).catch(() => undefined));
    await Promise.all(sent);
    expect(await flood.endOfStream()).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'more than 20 snapshots per second on one stream' });
    expect((await value('web-1')).items[0].value).toBe('3');
  });

  it('RESOURCE_EXHAUSTED beyond the open streams a pod may hold', async () => {
    const open: TestReporter[] = [];
    for (let i = 0; i < 4; i++) {
      const r = reporter('token-web-2').hello({ namespace: 'shop', name: 'web-2', uid: 'uid-2' });
      await r.snapshot([{ name: 'cm_conn', value: 1 }]);
      open.push(r);
    }
    const fifth = reporter('token-web-2').hello({ namespace: 'shop', name: 'web-2', uid: 'uid-2' });
    expect(await fifth.endOfStream()).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'pod shop/web-2 already has 4 open streams on this aggregator (limit 4)' });
    for (const r of open) r.close();
  });
});

describe('ingest port: a node agent reports only for the pods on its node', () => {
  const admin = { 'X-Remote-User': 'admin', 'X-Remote-Group': 'system:masters' };
  const value = async (pod: string) => (await call(`/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/${pod}/cm_conn`, frontProxy, admin)).json;
  const rejected = async (reason: string) => Number(new RegExp(`metrics_relay_aggregator_rejected_reports_total\\{reason="${reason}"\\} (\\d+)`).exec((await get(`http://127.0.0.1:${agg.ports['metrics']}/metrics`)).text)?.[1] ?? 0);
  const rule = 'the node agent metrics-relay/agent-a of node node-a may report only for pods on that node';

  it('accepts the agent for a pod on its node', async () => {
    await reporter('token-agent-a').hello({ namespace: 'shop', name: 'db-1', uid: 'uid-db-1', labels: { app: 'db' } }).snapshot([{ name: 'cm_conn', value: 11 }]);
    expect((await value('db-1')).items[0].value).toBe('11');
  });

  it('PERMISSION_DENIED for a pod of another node, a wrong uid, or no such pod; counted, and nothing else moves', async () => {
    const cases: [{ name: string; uid: string }, string][] = [
      [{ name: 'db-2', uid: 'uid-db-2' }, `${rule}; pod shop/db-2 runs on node node-b`],
      [{ name: 'db-1', uid: 'uid-forged' }, `${rule}; pod shop/db-1 has uid uid-db-1, not uid-forged as reported`],
      [{ name: 'ghost', uid: 'uid-ghost' }, `${rule}; pod shop/ghost does not exist`],
    ];
    const before = await rejected('pod_not_on_node');
    for (const [pod, details] of cases) {
      const r = reporter('token-agent-a').hello({ namespace: 'shop', ...pod });
      expect(await r.endOfStream()).toEqual({ code: grpc.status.PERMISSION_DENIED, details });
    }
    expect(await rejected('pod_not_on_node')).toBe(before + 3);
    expect((await value('db-1')).items[0].value).toBe('11');
    expect((await value('db-2')).message).toMatch(/could not find the metric cm_conn for pods in namespace shop/);
  });

  it("UNAUTHENTICATED when the agent's own pod is gone; a pod's sidecar token still reports only for its pod", async () => {
    const gone = reporter('token-agent-gone').hello({ namespace: 'shop', name: 'db-1', uid: 'uid-db-1' });
    expect(await gone.endOfStream()).toEqual({ code: grpc.status.UNAUTHENTICATED, details: "the node agent's token is bound to pod metrics-relay/agent-old, which no longer exists" });
    const sidecar = reporter('token-web-2').hello({ namespace: 'shop', name: 'db-1', uid: 'uid-db-1' });
    expect((await sidecar.endOfStream()).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await value('db-1')).items[0].value).toBe('11');
  });
});
