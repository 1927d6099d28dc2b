import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ApiError } from '../errors.js';
import { statusBody } from '../api/status.js';
import type { Authenticator } from './authn.js';
import { ALWAYS_ALLOW_PATHS, requestAttributes, type Authorizer } from './authz.js';

/**
 * Authenticates every request on the API port and, with an authorizer, authorizes it. Probes are always
 * allowed. Failures are metav1.Status bodies: 401 (no valid identity), 403 (denied), 503 (cannot decide).
 * Without an authorizer (--standalone with a request-header CA) any authenticated user is allowed.
 */
export function authMiddleware(authn: Authenticator, authz: Authorizer | undefined, logger: Logger): RequestHandler {
  return (req, res, next) => {
    const path = (req.originalUrl.split('?')[0] ?? '/').replace(/\/+$/, '') || '/';
    if (ALWAYS_ALLOW_PATHS.has(path)) return next();
    void (async () => {
      const user = await authn.authenticate(req);
      if (authz) {
        let segments: string[];
        try {
          segments = path.split('/').slice(1).map((s) => decodeURIComponent(s));
        } catch {
          segments = path.split('/').slice(1);
        }
        await authz.authorize(user, requestAttributes(path, segments, req.method));
      }
      res.locals['user'] = user;
    })().then(
      () => next(),
      (err: unknown) => {
        const apiErr = err instanceof ApiError ? err : new ApiError(500, 'InternalError', 'Internal error occurred: authentication failed');
        if (!(err instanceof ApiError)) logger.error({ err }, 'unexpected authentication error');
        else logger.debug({ path, code: apiErr.code, why: (err as ApiError & { why?: string }).why ?? apiErr.message }, 'request refused');
        res.status(apiErr.code).type('application/json').send(JSON.stringify(statusBody(apiErr)));
      },
    );
  };
}
