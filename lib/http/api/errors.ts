/**
 * The errors of /api/*: every refusal is an ApiError, and one error handler turns it (and
 * fastify's own errors: body limits, content types, schema validation, bad URLs) into the
 * documented `{"error":{"code","message"}}` with the same statuses and codes as before fastify.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ApiErrorCode } from '../../errors.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const notFound = (message: string) => new ApiError(404, ApiErrorCode.NotFound, message);
export const invalid = (message: string) => new ApiError(400, ApiErrorCode.InvalidField, message);
export const forbidden = (message: string) => new ApiError(403, ApiErrorCode.Forbidden, message);
export const unsupportedMediaType = (message: string) => new ApiError(415, ApiErrorCode.UnsupportedMediaType, message);
export const storageUnavailable = () => new ApiError(503, ApiErrorCode.StorageUnavailable, 'DATA_DIR cannot take writes now (disk full?): this write is not acknowledged; retry later');

/** Fastify's own errors, by code, as ours (anything else with a 4xx status is a 400 invalid_field). */
function fromFastify(err: FastifyError, bodyLimit: number): ApiError | null {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, ApiErrorCode.PayloadTooLarge, `body over ${bodyLimit} bytes`, { connection: 'close' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_EMPTY_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return unsupportedMediaType('content-type must be application/json');
    case 'FST_ERR_BAD_URL':
      return invalid('malformed percent-encoding in the path');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return notFound('no such resource (a path segment is too long)');
  }
  // Schema validation: fastify's message names the part and the field ("body/content must be string").
  if (err.validation) return invalid(err.message + allowedValues(err.validation[0]?.params));
  return null;
}

/** An enum's values, so "must be equal to one of the allowed values" says which. */
function allowedValues(params: unknown): string {
  const values = (params as { allowedValues?: unknown } | undefined)?.allowedValues;
  return Array.isArray(values) ? `: ${values.map((v) => JSON.stringify(v)).join(', ')}` : '';
}

/**
 * The one error handler of the API: never a stack trace, never a 500 for bad input. `internal`
 * hears of anything that is no known refusal (a bug), answered 500 `internal`.
 */
export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply, internal: (err: unknown) => void): void {
  const bodyLimit = request.routeOptions.bodyLimit ?? 0;
  let e: ApiError | null = err instanceof ApiError ? err : null;
  if (e === null && err instanceof Error) {
    const f = err as FastifyError;
    e = fromFastify(f, bodyLimit);
    if (e === null && typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) e = invalid(f.message);
  }
  if (e === null) {
    internal(err);
    e = new ApiError(500, ApiErrorCode.Internal, 'internal error');
  }
  // A refused body may still be arriving: close the connection after the answer.
  if (e.status === 413) reply.header('connection', 'close');
  reply.code(e.status).headers(e.headers).send({ error: { code: e.code, message: e.message } });
}
