import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import jsonpatch from 'fast-json-patch';
import { createMutateHandler } from '../../aggregator/src/webhook/handler.js';
import { decideInjection, type InjectionConfig } from '../../aggregator/src/webhook/inject.js';
import { injectionConfig, replicaSetPod, type Json } from '../helpers/webhook-fixtures.js';

const UID = '3c8a1f0e-6a5b-4f0e-9d8a-2d6f4b1a7c55';

function review(object: unknown, overrides: Json = {}): Json {
  return {
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: UID,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:authenticated'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
      ...overrides,
    },
  };
}

describe('webhook over HTTP: the returned patch applies', () => {
  let server: Server;
  let base: string;
  let failing: Server;
  let failingBase: string;
  const registry = new Registry();
  const reviews = new Counter({ name: 'reviews_total', help: 'x', labelNames: ['result'], registers: [registry] });
  const logger = pino({ level: 'silent' });

  const listen = (app: express.Express): Promise<[Server, string]> =>
    new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve([s, `http://127.0.0.1:${(s.address() as AddressInfo).port}`]));
    });

  beforeAll(async () => {
    const app = express();
    app.post(['/mutate', '/mutate/:scope'], createMutateHandler(injectionConfig, logger, { reviews }));
    // The same handler behind a JSON body parser still works.
    app.post('/parsed/mutate/:scope', express.json({ limit: '3mb' }), createMutateHandler(injectionConfig, logger));
    [server, base] = await listen(app);

    // A injectionConfig that blows up inside the injector: the webhook must fail open.
    const broken = new Proxy(injectionConfig, { get: (t, k) => { if (k === 'resources') throw new Error('boom'); return t[k as keyof InjectionConfig]; } });
    const app2 = express();
    app2.post(['/mutate', '/mutate/:scope'], createMutateHandler(broken, logger, { reviews }));
    [failing, failingBase] = await listen(app2);
  });

  afterAll(async () => {
    await Promise.all([server, failing].map((s) => new Promise((r) => s.close(r))));
  });

  async function post(body: string | Json, path = '/mutate/namespace?timeout=5s', url = base) {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, contentType: res.headers.get('content-type'), text, json: JSON.parse(text) as Json };
  }

  /** Posts a review, checks the envelope, decodes and applies the patch with validation on. */
  async function mutate(pod: Json, path?: string): Promise<{ pod: Json; patch: Json[] }> {
    const res = await post(review(pod), path);
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^application\/json\b/);
    expect(res.json.apiVersion).toBe('admission.k8s.io/v1');
    expect(res.json.kind).toBe('AdmissionReview');
    expect(res.json.response.uid).toBe(UID);
    expect(res.json.response.allowed).toBe(true);
    expect(res.json.response.patchType).toBe('JSONPatch');
    expect(res.json.response.patch).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(res.json.response.patch.length % 4).toBe(0);
    const patch = JSON.parse(Buffer.from(res.json.response.patch, 'base64').toString('utf8')) as Json[];
    const { newDocument } = jsonpatch.applyPatch(structuredClone(pod), patch as jsonpatch.Operation[], true, false);
    return { pod: newDocument, patch };
  }

  const sidecars = (pod: Json, where = 'containers') => (pod.spec[where] ?? []).filter((c: Json) => c.name === 'metrics-relay-sidecar');

  it('injects into a ReplicaSet pod (volumes, no annotations, generateName only)', async () => {
    const { pod } = await mutate(replicaSetPod());
    expect(sidecars(pod)).toHaveLength(1);
    const [c] = sidecars(pod);
    expect(pod.spec.containers[0].name).toBe('app');
    expect(pod.metadata.annotations).toEqual({ 'metrics-relay.io/injected': 'true' });
    expect(pod.spec.volumes.map((v: Json) => v.name)).toEqual(['kube-api-access-x2c4m', 'metrics-relay-podinfo', 'metrics-relay-token']);
    expect(pod.spec.volumes[1].downwardAPI.items).toEqual([{ path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } }]);
    expect(pod.spec.volumes[2].projected.sources[0]).toEqual({ serviceAccountToken: { audience: 'metrics-relay', expirationSeconds: 3600, path: 'token' } });
    // The container itself is checked field by field in the injector's unit tests: over HTTP it must be the same.
    const decision = decideInjection(replicaSetPod(), 'namespace', injectionConfig);
    if (!decision.inject) throw new Error(decision.reason);
    expect(c).toEqual(sidecars(jsonpatch.applyPatch(replicaSetPod(), decision.patch as jsonpatch.Operation[]).newDocument)[0]);
    expect(c.args).toContain('metrics-relay-ingest.metrics-system.svc:9443');
  });

  it('is idempotent: the patched pod sent again gets no patch', async () => {
    const { pod } = await mutate(replicaSetPod());
    const again = await post(review(pod));
    expect(again.json).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: UID, allowed: true } });
  });

  it('pod scope: applies to an annotated pod without volumes (escaped annotation key)', async () => {
    const pod = replicaSetPod();
    delete pod.spec.volumes;
    delete pod.spec.containers[0].volumeMounts;
    pod.spec.automountServiceAccountToken = false;
    pod.metadata.annotations = { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/port': '9100', 'metrics-relay.io/interval': '2s' };
    const { pod: out, patch } = await mutate(pod, '/mutate/pod');
    expect(patch.map((op) => op.path)).toContain('/metadata/annotations/metrics-relay.io~1injected');
    expect(out.spec.volumes.map((v: Json) => v.name)).toEqual(['metrics-relay-podinfo', 'metrics-relay-token']);
    expect(out.metadata.annotations['metrics-relay.io/injected']).toBe('true');
    const [c] = sidecars(out);
    expect(c.args).toContain('http://127.0.0.1:9100/metrics');
    expect(c.args).toContain('2s');
  });

  it('native sidecar mode puts a restartable init container', async () => {
    const app = express();
    app.post(['/mutate', '/mutate/:scope'], createMutateHandler({ ...injectionConfig, nativeSidecar: true }, logger));
    const [s, url] = await listen(app);
    try {
      const pod = replicaSetPod();
      pod.spec.initContainers = [{ name: 'migrate', image: 'busybox' }];
      const res = await post(review(pod), '/mutate/namespace', url);
      const patch = JSON.parse(Buffer.from(res.json.response.patch, 'base64').toString()) as jsonpatch.Operation[];
      const out = jsonpatch.applyPatch(structuredClone(pod), patch, true, false).newDocument;
      expect(out.spec.initContainers.map((c: Json) => [c.name, c.restartPolicy])).toEqual([['migrate', undefined], ['metrics-relay-sidecar', 'Always']]);
      expect(sidecars(out)).toHaveLength(0);
    } finally {
      await new Promise((r) => s.close(r));
    }
  });

  it('works behind express.json too', async () => {
    const { pod } = await mutate(replicaSetPod(), '/parsed/mutate/namespace');
    expect(sidecars(pod)).toHaveLength(1);
  });

  it('no opt-in in pod scope: allowed, neither patch nor patchType', async () => {
    for (const path of ['/mutate/pod', '/mutate']) {
      const res = await post(review(replicaSetPod()), path);
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: UID, allowed: true } });
    }
  });

  it('invalid annotation: allowed, no patch, a warning', async () => {
    const pod = replicaSetPod();
    pod.metadata.annotations = { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/interval': 'often' };
    const res = await post(review(pod), '/mutate/pod');
    expect(res.json).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: UID, allowed: true, warnings: ['metrics-relay: sidecar not injected: annotation metrics-relay.io/interval: --interval: "often" is not a duration (e.g. 500ms, 5s, 1m)'] },
    });
  });

  it.each([
    ['UPDATE of a pod', { operation: 'UPDATE', oldObject: replicaSetPod() }],
    ['DELETE of a pod', { operation: 'DELETE', object: null, oldObject: replicaSetPod() }],
    ['a Deployment', { kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, resource: { group: 'apps', version: 'v1', resource: 'deployments' } }],
    ['a pods subresource', { subResource: 'ephemeralcontainers' }],
    ['an Eviction', { kind: { group: 'policy', version: 'v1', kind: 'Eviction' }, subResource: 'eviction' }],
  ])('%s: allowed unchanged', async (_name, overrides) => {
    const res = await post(review(replicaSetPod(), overrides));
    expect(res.json).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: UID, allowed: true } });
  });

  it('dryRun requests are answered the same way', async () => {
    const res = await post(review(replicaSetPod(), { dryRun: true }));
    expect(res.json.response.patchType).toBe('JSONPatch');
  });

  const status = (message: string, code = 400, reason = 'BadRequest') => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });

  it.each([
    ['not JSON', '{"kind": "AdmissionReview",', 'invalid AdmissionReview: the body is not valid JSON'],
    ['empty', '', 'invalid AdmissionReview: the body is empty'],
    ['an array', '[]', 'invalid AdmissionReview: the body must be a JSON object'],
    ['v1beta1', { ...review(replicaSetPod()), apiVersion: 'admission.k8s.io/v1beta1' }, 'invalid AdmissionReview: expected apiVersion "admission.k8s.io/v1" and kind "AdmissionReview", got apiVersion "admission.k8s.io/v1beta1" and kind "AdmissionReview"'],
    ['wrong kind', { apiVersion: 'admission.k8s.io/v1', kind: 'Pod' }, 'invalid AdmissionReview: expected apiVersion "admission.k8s.io/v1" and kind "AdmissionReview", got apiVersion "admission.k8s.io/v1" and kind "Pod"'],
    ['no kind', { apiVersion: 'admission.k8s.io/v1' }, 'invalid AdmissionReview: expected apiVersion "admission.k8s.io/v1" and kind "AdmissionReview", got apiVersion "admission.k8s.io/v1" and kind none'],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 'invalid AdmissionReview: request is missing'],
    ['no uid', review(replicaSetPod(), { uid: undefined }), 'invalid AdmissionReview: request.uid is missing'],
    ['empty uid', review(replicaSetPod(), { uid: '' }), 'invalid AdmissionReview: request.uid is missing'],
  ])('bad body (%s): 400 with a Status', async (_name, body, message) => {
    const res = await post(body as string | Json);
    expect(res.status).toBe(400);
    expect(res.contentType).toMatch(/^application\/json\b/);
    expect(res.json).toEqual(status(message));
  });

  it('unknown scope: 400 with a Status', async () => {
    const res = await post(review(replicaSetPod()), '/mutate/cluster');
    expect(res.status).toBe(400);
    expect(res.json).toEqual(status('invalid webhook URL: the path must be /mutate/pod or /mutate/namespace, got scope "cluster"'));
  });

  it('oversized body: 413 with a Status', async () => {
    const res = await post(`{"pad":"${'x'.repeat(3 * 1024 * 1024)}"}`);
    expect(res.status).toBe(413);
    expect(res.json).toEqual(status('invalid AdmissionReview: the body exceeds 3145728 bytes', 413, 'RequestEntityTooLarge'));
  });

  it('a good request right after bad ones still works', async () => {
    expect((await post('not json')).status).toBe(400);
    expect((await post('{}')).status).toBe(400);
    const { pod } = await mutate(replicaSetPod());
    expect(sidecars(pod)).toHaveLength(1);
  });

  it('an unexpected failure fails open: allowed, no patch', async () => {
    const res = await post(review(replicaSetPod()), '/mutate/namespace', failingBase);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: UID, allowed: true } });
    // And the server is still fine afterwards.
    expect((await post(review(replicaSetPod()), '/mutate/pod', failingBase)).json.response).toEqual({ uid: UID, allowed: true });
  });

  it('counts reviews by result', async () => {
    const values = Object.fromEntries((await reviews.get()).values.map((v) => [v.labels['result'], v.value]));
    expect(values['injected']).toBeGreaterThan(0);
    expect(values['skipped']).toBeGreaterThan(0);
    expect(values['not_injectable']).toBeGreaterThan(0);
    expect(values['ignored']).toBeGreaterThan(0);
    expect(values['bad_request']).toBeGreaterThan(0);
    expect(values['error']).toBeGreaterThan(0);
  });
});
