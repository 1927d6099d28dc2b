import { ApiError } from '../errors.js';
import type { UserInfo } from './authn.js';

/** What a request asks to do, as Go's RequestInfoFactory derives it from the raw URL (docs/protocol.md#aggregation-layer). */
export type RequestAttributes =
  | { kind: 'resource'; verb: string; namespace: string; group: string; version: string; resource: string; subresource: string; name: string }
  | { kind: 'nonResource'; verb: string; path: string };

/** A SubjectAccessReview call: allowed/denied with the reason. Throws when the API cannot be asked (breaker open...). */
export type AccessReviewer = (user: UserInfo, attrs: RequestAttributes) => Promise<{ allowed: boolean; reason: string }>;

/** Paths every caller may reach without authorization (Go's AlwaysAllowPaths). */
export const ALWAYS_ALLOW_PATHS = new Set(['/healthz', '/readyz', '/livez']);

/** Derives the attributes of a GET on an API path. `segments` are the decoded path segments. */
export function requestAttributes(path: string, segments: string[], method: string): RequestAttributes {
  const verb = method === 'GET' || method === 'HEAD' ? 'get' : method.toLowerCase();
  // /apis/{group}/{version}/[namespaces/{ns}/]{resource}[/{name}[/{subresource}]]
  if (segments[0] !== 'apis' || segments.length < 4) return { kind: 'nonResource', verb, path };
  const [, group, version, ...rest] = segments as [string, string, string, ...string[]];
  let namespace = '';
  let parts = rest;
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    namespace = parts[1]!;
    parts = parts.slice(2);
  }
  const [resource = '', name = '', subresource = ''] = parts;
  return { kind: 'resource', verb: name === '' ? (verb === 'get' ? 'list' : verb) : verb, namespace, group, version, resource, subresource, name };
}

/** The metav1.Status message Go writes for a denied request. */
export function forbidden(user: UserInfo, a: RequestAttributes, reason: string): ApiError {
  const suffix = reason ? `: ${reason}` : '';
  if (a.kind === 'nonResource') return new ApiError(403, 'Forbidden', `forbidden: User "${user.name}" cannot ${a.verb} path "${a.path}"${suffix}`);
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const qualified = `${a.resource}.${a.group}`;
  const subject = a.name ? `${qualified} "${a.name}"` : qualified;
  return new ApiError(403, 'Forbidden', `${subject} is forbidden: User "${user.name}" cannot ${a.verb} resource "${resource}" in API group "${a.group}" ${scope}${suffix}`, {
    ...(a.name ? { name: a.name } : {}),
    group: a.group,
    kind: a.resource,
  });
}

interface Cached {
  allowed: boolean;
  reason: string;
  expiresMs: number;
}

/**
 * Delegated authorization with a bounded decision cache (allow and deny kept separately, each with its own TTL),
 * the short-circuit for system:masters, and fail-closed: when the reviewer cannot answer, the request gets a 503
 * that says so, never an allow.
 */
export class Authorizer {
  private readonly allowCache = new Map<string, Cached>();
  private readonly denyCache = new Map<string, Cached>();

  constructor(
    private readonly review: AccessReviewer,
    private readonly opts: { allowTtlMs: number; denyTtlMs: number; maxEntries: number; now?: () => number },
  ) {}

  /** Resolves when allowed; throws ApiError 403 (denied) or 503 (cannot decide). */
  async authorize(user: UserInfo, attrs: RequestAttributes): Promise<void> {
    if (user.groups.includes('system:masters')) return;
    const now = (this.opts.now ?? Date.now)();
    const key = JSON.stringify([user.name, user.uid, [...user.groups].sort(), user.extra, attrs]);
    const live = (c: Map<string, Cached>) => {
      const e = c.get(key);
      return e && e.expiresMs > now ? e : undefined;
    };
    const hit = live(this.allowCache) ?? live(this.denyCache);
    let decision: { allowed: boolean; reason: string };
    if (hit) {
      decision = hit;
    } else {
      try {
        decision = await this.review(user, attrs);
      } catch (err) {
        throw new ApiError(503, 'ServiceUnavailable', `authorization is unavailable, so the request is refused: ${(err as Error).message}`);
      }
      const cache = decision.allowed ? this.allowCache : this.denyCache;
      (decision.allowed ? this.denyCache : this.allowCache).delete(key);
      cache.delete(key);
      if (cache.size >= this.opts.maxEntries) cache.delete(cache.keys().next().value!); // oldest first
      cache.set(key, { ...decision, expiresMs: now + (decision.allowed ? this.opts.allowTtlMs : this.opts.denyTtlMs) });
    }
    if (!decision.allowed) throw forbidden(user, attrs, decision.reason);
  }
}

/** The SubjectAccessReview body for a user and request (docs/protocol.md#aggregation-layer). */
export function subjectAccessReview(user: UserInfo, a: RequestAttributes): Record<string, unknown> {
  const spec: Record<string, unknown> = { user: user.name, groups: user.groups, extra: user.extra, uid: user.uid };
  if (a.kind === 'nonResource') spec['nonResourceAttributes'] = { path: a.path, verb: a.verb };
  else {
    const ra: Record<string, string> = { namespace: a.namespace, verb: a.verb, group: a.group, version: a.version, resource: a.resource };
    if (a.subresource) ra['subresource'] = a.subresource;
    if (a.name) ra['name'] = a.name;
    spec['resourceAttributes'] = ra;
  }
  return { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec };
}
