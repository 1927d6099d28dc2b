import CircuitBreaker from 'opossum';
import { AuthenticationV1Api, AuthorizationV1Api, CoreV1Api, type KubeConfig, type V1ConfigMap, type V1TokenReview } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { UserInfo, RequestHeaderConfig, AuthnSettings } from '../auth/authn.js';
import { subjectAccessReview, type AccessReviewer } from '../auth/authz.js';
import type { AggregatorMetrics } from '../self-metrics.js';
import { followObject, type Followed } from './follow.js';

/** A breaker around one kind of kube-apiserver call, with its state exported as a gauge. Errors name the breaker. */
export function kubeBreaker<A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>, metrics: AggregatorMetrics, timeoutMs = 10_000): (...args: A) => Promise<R> {
  const breaker = new CircuitBreaker(fn, { name, timeout: timeoutMs, errorThresholdPercentage: 50, volumeThreshold: 3, resetTimeout: 10_000 });
  const set = (v: number) => () => metrics.breakerState.set({ breaker: name }, v);
  breaker.on('open', set(2));
  breaker.on('halfOpen', set(1));
  breaker.on('close', set(0));
  set(0)();
  return async (...args: A) => {
    try {
      return (await breaker.fire(...args)) as R;
    } catch (err) {
      if (breaker.opened) throw new Error(`breaker ${name} is open (the Kubernetes API failed repeatedly): ${(err as Error).message}`);
      throw new Error(`${name} failed: ${(err as Error).message}`);
    }
  };
}

/** A TokenReview as the user it yields (undefined: not authenticated). `audiences` restricts the token's audience. */
export function tokenReviewer(kc: KubeConfig, metrics: AggregatorMetrics, audiences?: string[]): (token: string) => Promise<(UserInfo & { audiences: string[] }) | undefined> {
  const api = kc.makeApiClient(AuthenticationV1Api);
  const call = kubeBreaker('kube-tokenreview', (token: string) => api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, ...(audiences ? { audiences } : {}) } } }), metrics);
  return async (token) => {
    const review: V1TokenReview = await call(token);
    const s = review.status;
    if (!s?.authenticated || !s.user?.username) return undefined;
    return { name: s.user.username, uid: s.user.uid ?? '', groups: s.user.groups ?? [], extra: s.user.extra ?? {}, audiences: s.audiences ?? [] };
  };
}

/** SubjectAccessReview against the cluster; allowed only when allowed and not denied. */
export function accessReviewer(kc: KubeConfig, metrics: AggregatorMetrics): AccessReviewer {
  const api = kc.makeApiClient(AuthorizationV1Api);
  const call = kubeBreaker('kube-subjectaccessreview', (body: ReturnType<typeof subjectAccessReview>) => api.createSubjectAccessReview({ body: body as never }), metrics);
  return async (user, attrs) => {
    const res = await call(subjectAccessReview(user, attrs));
    const st = res.status;
    return { allowed: Boolean(st?.allowed) && !st?.denied, reason: st?.reason ?? st?.evaluationError ?? '' };
  };
}

/** Reads ConfigMap data (as kube-apiserver writes it) into authentication settings. */
export function settingsFromConfigMap(data: Record<string, string>): AuthnSettings {
  const list = (key: string, dflt: string[]): string[] => {
    const raw = data[key];
    if (raw === undefined) return dflt;
    try {
      const v = JSON.parse(raw) as unknown;
      return Array.isArray(v) ? v.map(String) : dflt;
    } catch {
      return dflt;
    }
  };
  const requestHeader: RequestHeaderConfig | undefined = data['requestheader-client-ca-file']
    ? {
        caPem: data['requestheader-client-ca-file'],
        allowedNames: list('requestheader-allowed-names', []),
        usernameHeaders: list('requestheader-username-headers', ['X-Remote-User']),
        uidHeaders: list('requestheader-uid-headers', []),
        groupHeaders: list('requestheader-group-headers', ['X-Remote-Group']),
        extraHeaderPrefixes: list('requestheader-extra-headers-prefix', ['X-Remote-Extra-']),
      }
    : undefined;
  return { ...(requestHeader ? { requestHeader } : {}), ...(data['client-ca-file'] ? { clientCaPem: data['client-ca-file'] } : {}) };
}

const CM_NAMESPACE = 'kube-system';
const CM_NAME = 'extension-apiserver-authentication';

/**
 * Follows ConfigMap kube-system/extension-apiserver-authentication: one read at start, then a watch restricted to
 * that name (the only thing the extension-apiserver-authentication-reader Role allows), re-established on failure.
 * A rotated CA reaches `onChange` without a restart.
 */
export function watchAuthConfigMap(kc: KubeConfig, logger: Logger, onChange: (s: AuthnSettings) => void): Followed {
  const core = kc.makeApiClient(CoreV1Api);
  let seen: string | undefined;
  return followObject<V1ConfigMap>(kc, {
    collectionPath: `/api/v1/namespaces/${CM_NAMESPACE}/configmaps`,
    name: CM_NAME,
    read: () => core.readNamespacedConfigMap({ name: CM_NAME, namespace: CM_NAMESPACE }),
    what: `${CM_NAMESPACE}/${CM_NAME}`,
    hint: "grant it with 'kubectl create rolebinding -n kube-system ROLEBINDING_NAME --role=extension-apiserver-authentication-reader --serviceaccount=YOUR_NS:YOUR_SA'",
  }, logger, (cm) => {
    const data = JSON.stringify(cm.data ?? {});
    if (data === seen) return;
    if (seen !== undefined) logger.info('front-proxy trust updated from ConfigMap kube-system/extension-apiserver-authentication');
    seen = data;
    onChange(settingsFromConfigMap(cm.data ?? {}));
  });
}
