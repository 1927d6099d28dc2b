/**
 * An error that becomes a metav1.Status response (api/status.ts writes the body). Here, outside api/, so that the
 * layers under the API (kube/, auth/, webhook/) can raise one without importing the API layer.
 */
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
