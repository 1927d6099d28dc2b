import type { ApiError } from '../errors.js';

/** The metav1.Status body of an ApiError (key order as Go emits it). The one place that maps failures to HTTP. */
export function statusBody(err: ApiError): Record<string, unknown> {
  const body: Record<string, unknown> = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: err.message, reason: err.reason };
  if (err.details) body['details'] = err.details;
  body['code'] = err.code;
  return body;
}
