/**
 * The REST API for conversations:
 *   POST   /api/conversations                              → 201 {id}, Location
 *   POST   /api/conversations/:id/messages                 → 201 {id,sender,content,timestamp}
 *   GET    /api/conversations/:id                          → 200 {id,messages}
 *   DELETE /api/conversations/:id/messages/:messageId      → 204
 * With AUTH=jwt every call needs Authorization: Bearer (else 401 with WWW-Authenticate); a
 * customer sees only the conversations it owns (another's is 404, so ids cannot be probed),
 * posts as customer and deletes only its own messages (403); agents and services see all.
 * Errors are {"error":{"code","message"}} with 400/401/403/404/405/409/413/415/429/503/507; bad input never
 * gets a 500. A write answers once every linked peer acknowledged it, or after the ack
 * timeout, and only if this instance stored it: a write the store refused is never a 201.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError, AuthErrorCode, tokenFromRequest, type Identity, type TokenVerifier } from '../auth/index.js';
import type { ChatmeshOptions } from '../config.js';
import type { ApplyResult, ConversationStore, StoredMessage } from '../core/conversation-store.js';
import type { CreationLimiter } from '../core/creation-limiter.js';
// The same window every instance applies to messages from peers (store-write.ts): a client's
// `timestamp` from 30 days before now (importing recent history) to 60 s after (clock skew).
import { MESSAGE_TS_MAX_FUTURE_MS, MESSAGE_TS_MAX_PAST_MS } from '../core/store-write.js';
import { ApiErrorCode } from '../errors.js';
import { forbiddenKey } from '../protocol/forbidden-keys.js';
import type { Replicator } from '../replication/replicator.js';
import { sendJson } from './http-server.js';
import { bearerChallenge } from './responses.js';

/** The history kept on disk (DATA_DIR, storage/disk-window.ts) that sorts before a message. */
export interface OlderHistory {
  historyBefore(room: string, before: Pick<StoredMessage, 'timestamp' | 'id'> | null): StoredMessage[];
}

export type ApiOptions = Pick<ChatmeshOptions, 'maxBodyBytes' | 'maxTextLength' | 'maxNameLength'>;

const SENDERS = new Set(['customer', 'agent']);

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class ConversationsApi {
  constructor(
    private readonly options: ApiOptions,
    private readonly store: ConversationStore,
    private readonly replicator: Replicator,
    private readonly creations: CreationLimiter,
    /** AUTH=jwt: verifies each request's token; null with AUTH=none. */
    private readonly verifier: TokenVerifier | null = null,
    /** DATA_DIR: the record on disk, which holds the history older than memory's window; null without. */
    private readonly disk: OlderHistory | null = null,
  ) {}

  /** Handles a request under /api/; never throws. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): void {
    this.route(req, res, path).catch((err: unknown) => {
      if (res.headersSent) return;
      if (err instanceof ApiError) {
        if (err.status === 413) res.setHeader('connection', 'close');
        sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
        // Discard what is left of a rejected body; the connection closes after the answer if asked.
        req.resume();
        return;
      }
      sendJson(res, 500, { error: { code: ApiErrorCode.Internal, message: 'internal error' } });
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const parts = path.split('/').slice(1); // ['api', 'conversations', ...]
    if (parts[0] !== 'api' || parts[1] !== 'conversations') throw notFound(`no route for ${path}`);
    const rest = parts.slice(2).map(decodeSegment);
    const method = req.method ?? 'GET';
    const who = await this.identify(req);

    if (rest.length === 0) {
      allow(method, ['POST']);
      return this.createConversation(req, res, req.socket.remoteAddress ?? 'unknown', who);
    }
    const conversationId = rest[0];
    if (rest.length === 1) {
      allow(method, ['GET', 'HEAD']);
      return this.getConversation(res, conversationId, who);
    }
    if (rest[1] === 'messages' && rest.length === 2) {
      allow(method, ['POST']);
      return this.postMessage(req, res, conversationId, who);
    }
    if (rest[1] === 'messages' && rest.length === 3) {
      allow(method, ['DELETE']);
      return this.deleteMessage(res, conversationId, rest[2], who);
    }
    throw notFound(`no route for ${path}`);
  }

  /** AUTH=jwt: the request's Identity, or 401 (503 when the signing keys cannot be fetched). Null with AUTH=none. */
  private async identify(req: IncomingMessage): Promise<Identity | null> {
    if (this.verifier === null) return null;
    try {
      return await this.verifier.verify(tokenFromRequest(req));
    } catch (err) {
      const e = err instanceof AuthError ? err : new AuthError(AuthErrorCode.TokenInvalid, 'token could not be verified');
      if (e.code === AuthErrorCode.AuthUnavailable) throw new ApiError(503, e.code, e.message, { 'retry-after': '5' });
      throw new ApiError(401, ApiErrorCode.Unauthorized, e.message, { 'www-authenticate': bearerChallenge(e.code, e.message) });
    }
  }

  /** A conversation this identity may see (a customer: its own); else 404, as if it did not exist. */
  private visible(id: string, who: Identity | null): void {
    if (!this.store.has(id) || (who?.role === 'customer' && this.store.ownerOf(id) !== who.sub)) throw notFound('no such conversation');
  }

  private async createConversation(req: IncomingMessage, res: ServerResponse, address: string, who: Identity | null): Promise<void> {
    const body = await this.readBody(req, true);
    // A customer's conversation is its own; a service may create one for a customer (`owner`).
    let owner = who?.role === 'customer' ? who.sub : undefined;
    if (who?.role === 'service' && body.owner !== undefined) {
      if (typeof body.owner !== 'string' || body.owner === '' || body.owner.length > 128 || !body.owner.isWellFormed()) throw invalid('owner must be a user id (1 to 128 characters)');
      owner = body.owner;
    }
    const waitMs = this.creations.take(address);
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      throw new ApiError(429, ApiErrorCode.RateLimited, `too many new conversations from this address: try again in ${seconds} s`, { 'retry-after': String(seconds) });
    }
    const id = randomBytes(12).toString('base64url');
    const { result, replicated, durable } = this.replicator.commit({ type: 'created', room: id, id: this.store.nextId(), ...(owner !== undefined && { owner }) });
    refuseUnlessStored(result);
    await onDisk(durable);
    await replicated;
    sendJson(res, 201, { id }, { location: `/api/conversations/${id}` });
  }

  private getConversation(res: ServerResponse, id: string, who: Identity | null): void {
    this.visible(id, who);
    const recent = this.store.history(id);
    if (!recent) throw notFound('no such conversation');
    // Memory holds the newest messages (and every delete among them); the disk, what is older.
    const messages = this.disk ? [...this.disk.historyBefore(id, recent[0] ?? null), ...recent] : recent;
    sendJson(res, 200, { id, messages });
  }

  private async postMessage(req: IncomingMessage, res: ServerResponse, conversationId: string, who: Identity | null): Promise<void> {
    const body = await this.readBody(req, false);
    this.visible(conversationId, who);
    // With a token the sender follows from the role (a service says which it posts as).
    const roleSender = who === null || who.role === 'service' ? undefined : who.role;
    if (roleSender !== undefined && body.sender !== undefined && body.sender !== roleSender) {
      throw new ApiError(403, ApiErrorCode.Forbidden, `your role posts as "${roleSender}"`);
    }
    const sender = roleSender ?? body.sender;
    if (typeof sender !== 'string' || !SENDERS.has(sender)) throw invalid('sender must be "customer" or "agent"');
    const content = body.content;
    if (typeof content !== 'string' || content.trim() === '') throw invalid('content must be a non-empty string');
    if (content.length > this.options.maxTextLength) throw invalid(`content must be at most ${this.options.maxTextLength} characters`);
    if (!content.isWellFormed()) throw invalid('content holds an unpaired surrogate');
    const given = body.timestamp;
    if (given !== undefined && (typeof given !== 'number' || !Number.isSafeInteger(given) || given < 0)) {
      throw invalid('timestamp must be whole milliseconds since 1970');
    }
    const stamp = this.store.nextStamp();
    if (given !== undefined && (given < stamp.wall - MESSAGE_TS_MAX_PAST_MS || given > stamp.wall + MESSAGE_TS_MAX_FUTURE_MS)) {
      throw invalid('timestamp must be within 30 days before and 60 s after the server\'s clock');
    }
    const timestamp = given ?? stamp.wall;
    if (!this.store.acceptsMessageAt(conversationId, timestamp, stamp.id)) {
      // Older than every message kept in a full conversation: it would be dropped at once.
      throw new ApiError(409, ApiErrorCode.OutsideHistory, 'the conversation is full and this timestamp is older than every message it keeps');
    }
    const by = who === null ? {} : { by: who.sub };
    const { result, replicated, durable } = this.replicator.commit({ type: 'message', id: stamp.id, room: conversationId, user: sender, text: content, ts: timestamp, ...by });
    refuseUnlessStored(result);
    await onDisk(durable);
    await replicated;
    sendJson(res, 201, { id: stamp.id, sender, content, timestamp, ...(who !== null && { author: who.sub }) });
  }

  private async deleteMessage(res: ServerResponse, conversationId: string, messageId: string, who: Identity | null): Promise<void> {
    this.visible(conversationId, who);
    const { ts, author } = this.messageToDelete(conversationId, messageId);
    if (who?.role === 'customer' && author !== who.sub) {
      throw new ApiError(403, ApiErrorCode.Forbidden, 'a customer may delete only its own messages');
    }
    const { result, replicated, durable } = this.replicator.commit({ type: 'deleted', room: conversationId, id: messageId, ts, at: this.store.nextId() });
    refuseUnlessStored(result);
    await onDisk(durable);
    await replicated;
    res.writeHead(204);
    res.end();
  }

  /** The timestamp and author of a message not deleted: in memory, else (DATA_DIR) older than its window on disk; else 404. */
  private messageToDelete(room: string, id: string): { ts: number; author: string | undefined } {
    const ts = this.store.messageTimestamp(room, id);
    if (ts !== null) return { ts, author: this.store.authorOf(room, id) };
    const old = this.replicator.history?.messageAt(room, id);
    if (!old || old.deleted) throw notFound('no such message');
    return { ts: old.timestamp, author: old.author };
  }

  /** Reads a JSON object body within the size limit. `optional`: an empty body is {}. */
  private async readBody(req: IncomingMessage, optional: boolean): Promise<Record<string, unknown>> {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > this.options.maxBodyBytes) throw tooLarge(this.options.maxBodyBytes);
    const hasBody = declared > 0 || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody) {
      if (optional) return {};
      throw new ApiError(415, ApiErrorCode.UnsupportedMediaType, 'send a JSON body with content-type application/json');
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') {
      throw new ApiError(415, ApiErrorCode.UnsupportedMediaType, 'content-type must be application/json');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > this.options.maxBodyBytes) throw tooLarge(this.options.maxBodyBytes);
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '' && optional) return {};
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ApiError(400, ApiErrorCode.BadJson, 'body is not valid JSON');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('body must be a JSON object');
    const forbidden = forbiddenKey(value);
    if (forbidden !== undefined) throw invalid(`key "${forbidden}" is not allowed`);
    return value as Record<string, unknown>;
  }
}

function allow(method: string, methods: string[]): void {
  if (!methods.includes(method)) {
    throw new ApiError(405, ApiErrorCode.MethodNotAllowed, `use ${methods.join(' or ')}`, { allow: methods.join(', ') });
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, ApiErrorCode.InvalidField, 'malformed percent-encoding in the path');
  }
}

/** Every acknowledgement reflects the store's answer: a write it did not store is an error. */
function refuseUnlessStored(result: ApplyResult | 'storage_unavailable'): void {
  if (result === 'applied' || result === 'duplicate') return;
  if (result === 'storage_unavailable') throw storageUnavailable();
  if (result === 'store_full') throw new ApiError(507, ApiErrorCode.StoreFull, 'the store is full: nothing was stored (MAX_STORE_BYTES or MAX_CONVERSATIONS)');
  throw new ApiError(409, ApiErrorCode.OutsideHistory, 'not stored: older than everything this conversation keeps');
}

/** With DATA_DIR, a write is acknowledged only once it is on disk. */
async function onDisk(durable: Promise<void>): Promise<void> {
  try {
    await durable;
  } catch {
    throw storageUnavailable();
  }
}

const storageUnavailable = () => new ApiError(503, ApiErrorCode.StorageUnavailable, 'DATA_DIR cannot take writes now (disk full?): this write is not acknowledged; retry later');
const notFound = (message: string) => new ApiError(404, ApiErrorCode.NotFound, message);
const invalid = (message: string) => new ApiError(400, ApiErrorCode.InvalidField, message);
const tooLarge = (max: number) => new ApiError(413, ApiErrorCode.PayloadTooLarge, `body over ${max} bytes`);
