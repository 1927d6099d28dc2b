/**
 * The `/mutate` endpoint: AdmissionReview v1 in, AdmissionReview v1 out (docs/protocol.md#admission-webhook;
 * https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#response).
 */
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { ApiError } from '../errors.js';
import { statusBody } from '../api/status.js';
import { decideInjection, type InjectionConfig, type InjectionDecision } from './inject.js';

/** Largest AdmissionReview accepted (a pod object is far smaller; the apiserver caps requests at 3 MiB). */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

/**
 * Counter of answered reviews, label `result`: `injected`, `skipped` (not opted in, opted out, already
 * injected), `not_injectable` (asked for but invalid: answered with a warning), `ignored` (not a pod CREATE),
 * `bad_request`, `error` (unexpected failure, answered allowed without a patch).
 */
export interface WebhookMetrics {
  reviews: Counter<'result'>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Creates the handler for `POST /mutate/{pod|namespace}`, mounted at `/mutate/:scope` (scope: the webhook entry the request came
 * through, see inject.ts; absent means `pod`, the stricter one). It reads and parses the body itself, up to
 * {@link MAX_REVIEW_BYTES}: mount it WITHOUT a body parser in front (if one already set `req.body`, that is
 * used), and before any client-certificate authentication (the apiserver presents none by default).
 *
 * Contract: a pod CREATE gets `allowed: true` with a JSONPatch, or `allowed: true` without `patch`/`patchType`
 * (plus `warnings` when the pod asked for the sidecar but its annotations are invalid). Any other request is
 * allowed unchanged. A body that is not an AdmissionReview v1 with `request.uid` gets HTTP 400 and a metav1
 * Status. Never rejects a pod, never throws: an unexpected failure is logged and answered allowed without a
 * patch (a patch that might not apply would fail pod creation even with failurePolicy Ignore). The only side
 * effect is `beforeInject` (awaited before a patch is answered, never on a dry run; it must not throw).
 */
export function createMutateHandler(config: InjectionConfig | undefined, logger: Logger, metrics?: WebhookMetrics, beforeInject?: (namespace: string) => Promise<void>): RequestHandler {
  const log = logger.child({ component: 'webhook' });
  const count = (result: string) => metrics?.reviews.inc({ result });

  return async (req: Request, res: Response) => {
    let uid: string | undefined;
    try {
      const request = parseReview(await readJson(req));
      uid = request['uid'] as string;
      // NOTE: the scope is a path segment because webhook clientConfig paths and URLs may not carry a query.
      const scope = req.params['scope'] ?? 'pod';
      if (scope !== 'pod' && scope !== 'namespace') {
        throw new ApiError(400, 'BadRequest', `invalid webhook URL: the path must be /mutate/pod or /mutate/namespace, got scope ${show(scope)}`);
      }

      const kind = isObj(request['kind']) ? request['kind'] : {};
      const resource = isObj(request['resource']) ? request['resource'] : {};
      const isPodCreate = request['operation'] === 'CREATE' && kind['kind'] === 'Pod' && !kind['group'] && resource['resource'] === 'pods' && !request['subResource'];
      if (!isPodCreate) {
        sendReview(res, { uid, allowed: true });
        count('ignored');
        return;
      }

      const pod = request['object'];
      const meta = isObj(pod) && isObj(pod['metadata']) ? pod['metadata'] : {};
      const fields = {
        namespace: typeof request['namespace'] === 'string' ? request['namespace'] : meta['namespace'],
        // NOTE: controller-made pods have no name yet at admission (docs/protocol.md#admission-webhook).
        pod: typeof meta['name'] === 'string' && meta['name'] ? meta['name'] : `${typeof meta['generateName'] === 'string' ? meta['generateName'] : ''}<pending>`,
        uid,
        scope,
        dryRun: request['dryRun'] === true,
      };

      const decision: InjectionDecision = config ? decideInjection(pod, scope, config) : { inject: false, reason: 'injection is disabled (the aggregator has no --inject-image)' };
      if (decision.inject) {
        // e.g. managed TLS: the CA ConfigMap the sidecar mounts must exist in the namespace before the pod starts.
        // Skipped on dry runs, so the webhook has side effects only on real creations (NoneOnDryRun).
        if (beforeInject && !fields.dryRun && typeof fields.namespace === 'string') await beforeInject(fields.namespace);
        // NOTE: standard base64 with padding; the apiserver decodes `patch` as Go []byte (docs/protocol.md#admission-webhook).
        const patch = Buffer.from(JSON.stringify(decision.patch)).toString('base64');
        sendReview(res, { uid, allowed: true, patchType: 'JSONPatch', patch });
        log.info(fields, 'sidecar injected');
        count('injected');
      } else if (decision.warning !== undefined) {
        sendReview(res, { uid, allowed: true, warnings: [decision.warning] });
        log.warn({ ...fields, reason: decision.reason }, 'sidecar not injected');
        count('not_injectable');
      } else {
        sendReview(res, { uid, allowed: true });
        log.debug({ ...fields, reason: decision.reason }, 'no injection');
        count('skipped');
      }
    } catch (err) {
      if (res.headersSent) {
        log.error({ err }, 'failure after the admission response was sent');
      } else if (err instanceof ApiError) {
        res.status(err.code).type('application/json').send(JSON.stringify(statusBody(err)));
        log.warn({ code: err.code, reason: err.message }, 'bad admission request');
        count('bad_request');
      } else if (uid !== undefined) {
        sendReview(res, { uid, allowed: true });
        log.error({ err, uid }, 'unexpected failure; pod allowed without the sidecar');
        count('error');
      } else {
        const failure = new ApiError(500, 'InternalError', 'Internal error occurred: cannot read the admission request');
        res.status(500).type('application/json').send(JSON.stringify(statusBody(failure)));
        log.error({ err }, 'cannot read the admission request');
        count('error');
      }
    }
  };
}

function sendReview(res: Response, response: { uid: string; allowed: true; patchType?: 'JSONPatch'; patch?: string; warnings?: string[] }): void {
  res.status(200).type('application/json').send(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
}

const bad = (message: string) => new ApiError(400, 'BadRequest', `invalid AdmissionReview: ${message}`);

/** A value from the request, for an error message: JSON, cut short. */
function show(v: unknown): string {
  const s = v === undefined ? 'none' : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

/** Checks the envelope; returns `request` (with a non-empty string `uid`) or throws a 400 ApiError. */
function parseReview(body: unknown): Obj {
  if (!isObj(body)) throw bad('the body must be a JSON object');
  if (body['apiVersion'] !== 'admission.k8s.io/v1' || body['kind'] !== 'AdmissionReview') {
    throw bad(`expected apiVersion "admission.k8s.io/v1" and kind "AdmissionReview", got apiVersion ${show(body['apiVersion'])} and kind ${show(body['kind'])}`);
  }
  const request = body['request'];
  if (!isObj(request)) throw bad('request is missing');
  if (typeof request['uid'] !== 'string' || request['uid'] === '') throw bad('request.uid is missing');
  return request;
}

/** The parsed JSON body; throws a 400/413 ApiError for an empty, oversized or malformed one. */
async function readJson(req: Request): Promise<unknown> {
  const parsed: unknown = req.body;
  let text: string;
  if (parsed === undefined) text = await readText(req);
  else if (typeof parsed === 'string' || Buffer.isBuffer(parsed)) text = parsed.toString();
  else return parsed;
  if (text.trim() === '') throw bad('the body is empty');
  try {
    return JSON.parse(text);
  } catch {
    throw bad('the body is not valid JSON');
  }
}

function readText(req: Request): Promise<string> {
  // NOTE: a stream that a middleware already consumed would never emit 'end' again.
  if (req.readableEnded) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // NOTE: keep draining an oversized body (and answer 413 at its end) rather than reset the connection.
      if (size <= MAX_REVIEW_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_REVIEW_BYTES) reject(new ApiError(413, 'RequestEntityTooLarge', `invalid AdmissionReview: the body exceeds ${MAX_REVIEW_BYTES} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!req.readableEnded) reject(new Error('the client closed the connection before the body ended'));
    });
  });
}
