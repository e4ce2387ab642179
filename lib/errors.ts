/**
 * Stable error codes and close codes. Clients and tests rely on the codes, never on message text.
 */

/** Codes sent to clients in `{"type":"error","code","message"}`. */
export const ClientErrorCode = {
  BadJson: 'bad_json',
  InvalidFrame: 'invalid_frame',
  InvalidField: 'invalid_field',
  UnknownType: 'unknown_type',
  NotJoined: 'not_joined',
  AlreadyJoined: 'already_joined',
  UserMismatch: 'user_mismatch',
  TooManyRooms: 'too_many_rooms',
  BinaryNotSupported: 'binary_not_supported',
  RateLimited: 'rate_limited',
  /** The store is at MAX_CONVERSATIONS (all with messages) or MAX_STORE_BYTES: nothing was stored. */
  StoreFull: 'store_full',
  /** The write was not stored for another reason (named in the message). */
  NotStored: 'not_stored',
  /** AUTH=jwt: the token does not allow this (a room outside its grant). The connection stays open. */
  Forbidden: 'forbidden',
  /** DATA_DIR cannot take writes now (disk full, I/O error): the write is not acknowledged. */
  StorageUnavailable: 'storage_unavailable',
  /** A read cursor (or an edit) names a message the room does not hold (or holds deleted). */
  UnknownMessage: 'unknown_message',
  /** The instance already feeds the inbox to its most subscribers (INBOX_SUBSCRIBERS_MAX): poll GET /api/conversations instead. */
  TooManySubscribers: 'too_many_subscribers',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** WebSocket close codes chatmesh uses towards clients and peers. */
export const CloseCode = {
  /** Server shutting down (RFC 6455 "going away"). */
  GoingAway: 1001,
  /** Frame not valid UTF-8 (sent by ws itself). */
  InvalidPayload: 1007,
  /** Policy violation: sustained flooding over the rate limit. */
  PolicyViolation: 1008,
  /** Frame over the size limit (sent by ws itself). */
  MessageTooBig: 1009,
  /** Slow consumer: the client does not read and its send buffer is full. */
  TryAgainLater: 1013,
  /** Client, AUTH=jwt: the connection's token expired (send a refresh before exp to stay). */
  TokenExpired: 4401,
  /** Client, AUTH=jwt: the connection's token was revoked. */
  Revoked: 4403,
  /** Peer: a second link to the same node; the other one is kept. */
  DuplicateLink: 4000,
  /** Peer: authentication failed or not allowed from this address. */
  Rejected: 4003,
  /** Peer: the dialled address is this node itself. */
  Self: 4004,
  /** Peer: protocol version not supported. */
  VersionMismatch: 4005,
  /** Peer: too many frames that failed validation in a short time (see lib/mesh/invalid-frames.ts). */
  InvalidFrames: 4007,
  /** Peer: silent for longer than the peer timeout. */
  HeartbeatTimeout: 4008,
  /** Peer: handshake not completed in time, or malformed. */
  HandshakeFailed: 4009,
  /** Peer: a newer incarnation of the same node, or another node at the same address, took over. */
  Replaced: 4010,
  /** Peer: too many unsent bytes; catch-up repairs what was not sent. */
  SlowPeer: 4013,
} as const;

/** Codes for errors in HTTP responses: `{"error":{"code","message"}}`. */
export const ApiErrorCode = {
  NotFound: 'not_found',
  MethodNotAllowed: 'method_not_allowed',
  BadJson: 'bad_json',
  InvalidField: 'invalid_field',
  /** 400: a paging cursor that is not one the API gives (before/after: no message id; the inbox's cursor: not its `next`). */
  InvalidCursor: 'invalid_cursor',
  /** 404: a paging cursor naming a message the conversation does not hold. */
  CursorNotFound: 'cursor_not_found',
  UnsupportedMediaType: 'unsupported_media_type',
  PayloadTooLarge: 'payload_too_large',
  OutsideHistory: 'outside_history',
  /** Too many new conversations from this address: retry after Retry-After seconds. */
  RateLimited: 'rate_limited',
  /** 507: the store is full; nothing was stored. */
  StoreFull: 'store_full',
  /** 401: AUTH=jwt and no valid token (the answer carries WWW-Authenticate: Bearer). */
  Unauthorized: 'unauthorized',
  /** 403: the token's role does not allow this. */
  Forbidden: 'forbidden',
  /** 503: DATA_DIR cannot take writes now (disk full); retry later. */
  StorageUnavailable: 'storage_unavailable',
  /** 422: an Idempotency-Key already used by this caller in this conversation for another message. */
  IdempotencyKeyReused: 'idempotency_key_reused',
  Internal: 'internal',
} as const;
