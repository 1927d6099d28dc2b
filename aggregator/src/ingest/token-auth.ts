import * as grpc from '@grpc/grpc-js';
import type { UserInfo } from '../auth/authn.js';
import { StreamAuthError, type BoundPod, type PodPlacement, type StreamAuthenticator, type StreamIdentity } from './server.js';

/** Node agents: the ServiceAccount their DaemonSet runs as (`namespace:name`), and where pods run. */
export interface NodeAgentTrust {
  serviceAccount: string;
  placement: PodPlacement;
}


/**
 * Authenticates ingest streams by their projected ServiceAccount token (`authorization: Bearer ...`, audience
 * metrics-relay): TokenReview yields the pod the token is bound to. A token of the node agents' ServiceAccount
 * yields the node its bound pod runs on instead (that pod's spec.nodeName, its uid checked). Reviews are cached per
 * token (bounded, TTL).
 */
export function tokenStreamAuthenticator(review: (token: string) => Promise<UserInfo | undefined>, opts: { ttlMs: number; maxEntries: number; now?: () => number; nodeAgents?: NodeAgentTrust }): StreamAuthenticator {
  const cache = new Map<string, { pod: StreamIdentity | StreamAuthError; expiresMs: number }>();
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
    let result: StreamIdentity | StreamAuthError = user ? boundPod(user) : new StreamAuthError(grpc.status.UNAUTHENTICATED, 'token rejected by TokenReview (expired, revoked, or not for audience metrics-relay)');
    const agents = opts.nodeAgents;
    if (agents && user && !(result instanceof StreamAuthError) && user.name === `system:serviceaccount:${agents.serviceAccount}`) {
      try {
        result = await agentNode(result as BoundPod, agents.placement);
      } catch (err) {
        throw new StreamAuthError(grpc.status.UNAVAILABLE, `cannot look up the node agent's pod now: ${(err as Error).message}`);
      }
    }
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

/** The node a node agent's bound pod runs on, or why its token cannot stand for a node. */
async function agentNode(agent: BoundPod, placement: PodPlacement): Promise<StreamIdentity | StreamAuthError> {
  const at = await placement(agent.namespace, agent.name);
  const who = `the node agent's token is bound to pod ${agent.namespace}/${agent.name}`;
  if (!at || (agent.uid !== '' && at.uid !== agent.uid)) return new StreamAuthError(grpc.status.UNAUTHENTICATED, `${who}, which no longer exists`);
  if (!at.nodeName) return new StreamAuthError(grpc.status.UNAUTHENTICATED, `${who}, which is not scheduled to a node`);
  return { node: at.nodeName, agent: `${agent.namespace}/${agent.name}` };
}
