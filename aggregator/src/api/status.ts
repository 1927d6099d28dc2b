/** An error that becomes a metav1.Status response. The one place that maps failures to HTTP. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: { name?: string; group?: string; kind?: string; causes?: { message: string }[] },
  ) {
    super(message);
  }
}

export const badRequest = (message: string): ApiError => new ApiError(400, 'BadRequest', message);
export const notFound = (message: string): ApiError => new ApiError(404, 'NotFound', message);
export const unavailable = (message: string): ApiError => new ApiError(503, 'ServiceUnavailable', message);
export const internal = (message: string): ApiError => new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] });

/** The metav1.Status body (key order as Go emits it). */
export function statusBody(err: ApiError): Record<string, unknown> {
  const body: Record<string, unknown> = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: err.message, reason: err.reason };
  if (err.details) body['details'] = err.details;
  body['code'] = err.code;
  return body;
}
