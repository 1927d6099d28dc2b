import * as grpc from '@grpc/grpc-js';
import type { UserInfo } from '../auth/authn.js';
import { StreamAuthError, type BoundPod, type StreamAuthenticator } from './server.js';


/**
 * Authenticates ingest streams by their projected ServiceAccount token (`authorization: Bearer ...`, audience
 * metrics-relay): TokenReview yields the pod the token is bound to. Reviews are cached per token (bounded, TTL).
 */
export function tokenStreamAuthenticator(review: (token: string) => Promise<UserInfo | undefined>, opts: { ttlMs: number; maxEntries: number; now?: () => number }): StreamAuthenticator {
  const cache = new Map<string, { pod: BoundPod | StreamAuthError; expiresMs: number }>();
  const now = opts.now ?? Date.now;
  return async (metadata) => {
    const header = String(metadata.get('authorization')[0] ?? '');
    if (!header.startsWith('Bearer ')) {
      throw new StreamAuthError(grpc.status.UNAUTHENTICATED, 'missing bearer token: send the pod\'s projected ServiceAccount token (audience metrics-relay) as "authorization: Bearer <token>"');
    }
    const token = header.slice(7).trim();
    const hit = cache.get(token);
    if (hit && hit.expiresMs > now()) {
      if (hit.pod instanceof StreamAuthError) throw hit.pod;
      return hit.pod;
    }
    let user: UserInfo | undefined;
    try {
      user = await review(token);
    } catch (err) {
      throw new StreamAuthError(grpc.status.UNAVAILABLE, `cannot check the token now: ${(err as Error).message}`);
    }
    const result = user ? boundPod(user) : new StreamAuthError(grpc.status.UNAUTHENTICATED, 'token rejected by TokenReview (expired, revoked, or not for audience metrics-relay)');
    if (cache.size >= opts.maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(token, { pod: result, expiresMs: now() + opts.ttlMs });
    if (result instanceof StreamAuthError) throw result;
    return result;
  };
}

function boundPod(user: UserInfo): BoundPod | StreamAuthError {
  const m = /^system:serviceaccount:([^:]+):[^:]+$/.exec(user.name);
  const name = user.extra['authentication.kubernetes.io/pod-name']?.[0];
  const uid = user.extra['authentication.kubernetes.io/pod-uid']?.[0] ?? '';
  if (!m || !name) return new StreamAuthError(grpc.status.UNAUTHENTICATED, `the token of ${user.name} is not bound to a pod (use a projected ServiceAccount token)`);
  return { namespace: m[1]!, name, uid };
}
