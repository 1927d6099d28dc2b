import { describe, expect, it } from 'vitest';
import { Authorizer, requestAttributes, subjectAccessReview, type RequestAttributes } from '../../../../aggregator/src/auth/authz.js';
import { ApiError } from '../../../../aggregator/src/errors.js';
import type { UserInfo } from '../../../../aggregator/src/auth/authn.js';

const attrs = (path: string) => requestAttributes(path, path.split('/').slice(1).map(decodeURIComponent), 'GET');

describe('request attributes (docs/protocol.md#aggregation-layer)', () => {
  it.each([
    ['/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/deployments.apps/web/rps', { verb: 'get', namespace: 'shop', resource: 'deployments.apps', subresource: 'rps', name: 'web' }],
    ['/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/%2A/rps', { verb: 'get', namespace: 'shop', resource: 'pods', subresource: 'rps', name: '*' }],
    ['/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/metrics/queue_depth', { verb: 'get', namespace: 'shop', resource: 'metrics', subresource: '', name: 'queue_depth' }],
    ['/apis/custom.metrics.k8s.io/v1beta1/nodes/node-1/temp', { verb: 'get', namespace: '', resource: 'nodes', subresource: 'temp', name: 'node-1' }],
    ['/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/queue_messages_ready', { verb: 'list', namespace: 'shop', resource: 'queue_messages_ready', subresource: '', name: '' }],
  ])('%s', (path, want) => {
    expect(attrs(path)).toMatchObject({ kind: 'resource', ...want });
  });

  it('discovery and OpenAPI are non-resource paths', () => {
    for (const p of ['/apis', '/apis/custom.metrics.k8s.io', '/apis/custom.metrics.k8s.io/v1beta2', '/openapi/v2']) {
      expect(attrs(p)).toEqual({ kind: 'nonResource', verb: 'get', path: p });
    }
  });
});

describe('Authorizer', () => {
  const user: UserInfo = { name: 'u', uid: '', groups: ['system:authenticated'], extra: {} };
  const a: RequestAttributes = attrs('/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/%2A/rps');

  it('caches allow and deny separately for their TTLs, bounded', async () => {
    let now = 0;
    let calls = 0;
    let allow = true;
    const z = new Authorizer(async () => (calls++, { allowed: allow, reason: '' }), { allowTtlMs: 1000, denyTtlMs: 100, maxEntries: 2, now: () => now });
    await z.authorize(user, a);
    await z.authorize(user, a);
    expect(calls).toBe(1);
    now = 1001;
    allow = false;
    await expect(z.authorize(user, a)).rejects.toMatchObject({ code: 403 });
    await expect(z.authorize(user, a)).rejects.toMatchObject({ code: 403 });
    expect(calls).toBe(2);
    now = 1102;
    allow = true;
    await z.authorize(user, a);
    expect(calls).toBe(3);
  });

  it('fails closed with 503 when the review cannot be made', async () => {
    const z = new Authorizer(async () => { throw new Error('breaker kube-subjectaccessreview is open'); }, { allowTtlMs: 1, denyTtlMs: 1, maxEntries: 1 });
    const err = await z.authorize(user, a).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 503, reason: 'ServiceUnavailable', message: 'authorization is unavailable, so the request is refused: breaker kube-subjectaccessreview is open' });
  });

  it('never asks for system:masters', async () => {
    const z = new Authorizer(async () => { throw new Error('must not be called'); }, { allowTtlMs: 1, denyTtlMs: 1, maxEntries: 1 });
    await z.authorize({ ...user, groups: ['system:masters'] }, a);
  });

  it('builds the SubjectAccessReview body (docs/protocol.md#aggregation-layer)', () => {
    expect(subjectAccessReview(user, a)).toEqual({
      apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
      spec: { user: 'u', groups: ['system:authenticated'], extra: {}, uid: '', resourceAttributes: { namespace: 'shop', verb: 'get', group: 'custom.metrics.k8s.io', version: 'v1beta2', resource: 'pods', subresource: 'rps', name: '*' } },
    });
  });
});
