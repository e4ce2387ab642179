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
    422: 'idempotency_key_reused: this Idempotency-Key came with another message before',
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
    editedAt: { type: 'integer', description: 'When edited: milliseconds since 1970 of the edit whose text `content` is.' },
  },
} as const;

/** A conversation as the desk sees it (core/inbox.ts ConversationItem). */
export const conversationSchema = {
  type: 'object',
  required: ['id', 'status', 'assignee', 'metadata', 'createdAt', 'updatedAt', 'lastMessage'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['open', 'pending', 'snoozed', 'resolved'], description: 'A snooze whose snoozedUntil has passed reads as open.' },
    snoozedUntil: { type: 'integer', description: 'With status snoozed: when it reopens by itself, ms since 1970.' },
    assignee: { type: ['string', 'null'], description: 'An agent id, or null.' },
    metadata: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'null'] }, description: 'At most 16 keys; values strings (≤256 characters), numbers, booleans or null.' },
    createdAt: { type: 'integer' },
    updatedAt: { type: 'integer', description: 'The latest write (message, delete, edit, field) to it; read cursors do not count.' },
    lastMessage: {
      type: ['object', 'null'],
      required: ['id', 'sender', 'content', 'timestamp'],
      additionalProperties: false,
      properties: { id: { type: 'string' }, sender: { type: 'string' }, content: { type: 'string', description: 'Its first 200 characters.' }, timestamp: { type: 'integer' } },
    },
    unread: { type: 'integer', description: 'AUTH=jwt: messages after the caller\'s read cursor that the caller did not write.' },
  },
} as const;

/** A conversation id or message id in a path. */
export const idParam = { type: 'string', minLength: 1 } as const;
