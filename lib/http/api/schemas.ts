/**
 * JSON Schemas shared by the routes. Each route's schema validates its input (ajv), writes its
 * output (fast-json-stringify: a field not in the schema is never sent) and describes it in
 * /api/openapi.json, so keep them exact: the OpenAPI test checks real answers against them.
 */

/** `{"error":{"code","message"}}`: every refusal. */
export const errorSchema = {
  type: 'object',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: {
        code: { type: 'string', description: 'A stable code (lib/errors.ts ApiErrorCode).' },
        message: { type: 'string', description: 'For humans; may change.' },
      },
    },
  },
} as const;

/** The error answers of a route, by status, each with its description. */
export function errors(...statuses: number[]): Record<number, object> {
  const described: Record<number, string> = {
    400: 'Bad input: bad_json, invalid_field, invalid_cursor',
    401: 'AUTH=jwt and no valid token (with WWW-Authenticate: Bearer)',
    403: 'The token\'s role does not allow this',
    404: 'No such resource (a customer\'s view: not its own)',
    409: 'outside_history: older than everything a full conversation keeps',
    413: 'payload_too_large: the body is over MAX_BODY_BYTES',
    415: 'unsupported_media_type: the body must be JSON (application/json)',
    429: 'rate_limited: try again after Retry-After seconds',
    503: 'storage_unavailable (DATA_DIR cannot take writes) or auth_unavailable (signing keys cannot be fetched)',
    507: 'store_full: nothing was stored',
  };
  return Object.fromEntries(statuses.map((s) => [s, { description: described[s], ...errorSchema }]));
}

export const messageSchema = {
  type: 'object',
  required: ['id', 'sender', 'content', 'timestamp'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', description: 'The message id (an HLC stamp); also a paging cursor.' },
    sender: { type: 'string', enum: ['customer', 'agent'] },
    content: { type: 'string' },
    timestamp: { type: 'integer', description: 'Milliseconds since 1970; the history is ordered by (timestamp, id).' },
    author: { type: 'string', description: 'AUTH=jwt: the author\'s token sub.' },
  },
} as const;

/** A conversation id or message id in a path. */
export const idParam = { type: 'string', minLength: 1 } as const;
