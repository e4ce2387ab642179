/**
 * Messages of a conversation:
 *   POST   /api/conversations/:id/messages              → 201 {id, sender, content, timestamp, author?}
 *     With `Idempotency-Key` (1–64 characters): the same key from the same caller in the same
 *     conversation, on any instance, stores nothing new and answers 200 with the original
 *     message (422 idempotency_key_reused if its content differs). The key is the write's `cid`.
 *   DELETE /api/conversations/:id/messages/:messageId   → 204
 * With AUTH=jwt the sender follows from the role (a service says which it posts as), and a
 * customer deletes only its own messages (403).
 */
import type { FastifyInstance } from 'fastify';
import { ApiErrorCode } from '../../../errors.js';
// The same window every instance applies to messages from peers (store-write.ts): a client's
// `timestamp` from 30 days before now (importing recent history) to 60 s after (clock skew).
import { MESSAGE_TS_MAX_FUTURE_MS, MESSAGE_TS_MAX_PAST_MS, isClientId } from '../../../core/store-write.js';
import { reopenOnCustomerMessage } from '../../../replication/reopen.js';
import { publicMessage } from '../../../core/conversation.js';
import type { ApiDeps } from '../deps.js';
import { ApiError, forbidden, invalid, notFound } from '../errors.js';
import { errors, idParam, messageSchema } from '../schemas.js';
import { commitAndWait } from '../writes.js';
import { visible } from './conversations.js';

const SENDERS = new Set(['customer', 'agent']);

export function messageRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { store, replicator, options } = deps;

  app.route({
    method: 'POST',
    url: '/api/conversations/:id/messages',
    config: { body: 'required' },
    schema: {
      summary: 'Post a message',
      security: [{ bearer: [] }],
      params: { type: 'object', required: ['id'], properties: { id: idParam } },
      headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', description: 'A send that can be retried: 1–64 characters, unique per message.' } } },
      body: {
        type: 'object',
        properties: {
          sender: { type: 'string', enum: ['customer', 'agent'], description: 'Required with AUTH=none or a service token; otherwise the role decides.' },
          content: { type: 'string', description: `Non-blank, at most MAX_TEXT_LENGTH (default 8000) UTF-16 code units, well-formed.` },
          timestamp: { type: 'integer', minimum: 0, description: 'Milliseconds since 1970, within 30 days before and 60 s after the server\'s clock (default: now).' },
        },
      },
      response: {
        201: { description: 'Stored here, on disk (DATA_DIR) and acknowledged by every linked peer (or the ack timeout passed)', ...messageSchema },
        200: { description: 'Idempotency-Key already used for this message: the original, nothing stored', ...messageSchema },
        ...errors(400, 401, 403, 404, 409, 413, 415, 422, 503, 507),
      },
    },
    handler: async (request, reply) => {
      const body = request.body as { sender?: string; content?: string; timestamp?: number };
      const who = request.identity;
      const conversationId = (request.params as { id: string }).id;
      visible(store, conversationId, who);
      const roleSender = who === null || who.role === 'service' ? undefined : who.role;
      if (roleSender !== undefined && body.sender !== undefined && body.sender !== roleSender) throw forbidden(`your role posts as "${roleSender}"`);
      const sender = roleSender ?? body.sender;
      if (sender === undefined || !SENDERS.has(sender)) throw invalid('sender must be "customer" or "agent"');
      const content = body.content;
      if (typeof content !== 'string' || content.trim() === '') throw invalid('content must be a non-empty string');
      if (content.length > options.maxTextLength) throw invalid(`content must be at most ${options.maxTextLength} characters`);
      if (!content.isWellFormed()) throw invalid('content holds an unpaired surrogate');
      const key = request.headers['idempotency-key'];
      if (key !== undefined && !isClientId(key)) throw invalid('Idempotency-Key must be 1 to 64 characters without control characters');
      if (key !== undefined) {
        const held = store.sentWithClientId(conversationId, who?.sub ?? sender, key);
        const entry = held === null ? undefined : store.conversation(conversationId)?.byId.get(held.id);
        if (entry !== undefined) {
          // Edited or deleted since, its text says nothing of the send: the send was taken, that is the answer.
          const changed = entry.deleted || entry.editedAt !== undefined;
          if (entry.sender !== sender || (!changed && entry.content !== content)) throw new ApiError(422, ApiErrorCode.IdempotencyKeyReused, 'this Idempotency-Key was used for another message in this conversation');
          return reply.code(200).send(publicMessage(entry));
        }
      }
      const given = body.timestamp;
      if (given !== undefined && !Number.isSafeInteger(given)) throw invalid('timestamp must be whole milliseconds since 1970');
      const stamp = store.nextStamp();
      if (given !== undefined && (given < stamp.wall - MESSAGE_TS_MAX_PAST_MS || given > stamp.wall + MESSAGE_TS_MAX_FUTURE_MS)) {
        throw invalid('timestamp must be within 30 days before and 60 s after the server\'s clock');
      }
      const timestamp = given ?? stamp.wall;
      if (!store.acceptsMessageAt(conversationId, timestamp, stamp.id)) {
        // Older than every message kept in a full conversation: it would be dropped at once.
        throw new ApiError(409, ApiErrorCode.OutsideHistory, 'the conversation is full and this timestamp is older than every message it keeps');
      }
      await commitAndWait(replicator, { type: 'message', id: stamp.id, room: conversationId, user: sender, text: content, ts: timestamp, ...(who !== null && { by: who.sub }), ...(key !== undefined && { cid: key }) });
      if (sender === 'customer') reopenOnCustomerMessage(replicator, conversationId);
      return reply.code(201).send({ id: stamp.id, sender, content, timestamp, ...(who !== null && { author: who.sub }) });
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/conversations/:id/messages/:messageId',
    schema: {
      summary: 'Delete a message (a customer: only its own)',
      security: [{ bearer: [] }],
      params: { type: 'object', required: ['id', 'messageId'], properties: { id: idParam, messageId: idParam } },
      response: {
        204: { description: 'Deleted everywhere', type: 'null' },
        ...errors(400, 401, 403, 404, 503, 507),
      },
    },
    handler: async (request, reply) => {
      const { id: conversationId, messageId } = request.params as { id: string; messageId: string };
      const who = request.identity;
      visible(store, conversationId, who);
      const { ts, author } = messageToDelete(store, replicator, conversationId, messageId);
      if (who?.role === 'customer' && author !== who.sub) throw forbidden('a customer may delete only its own messages');
      await commitAndWait(replicator, { type: 'deleted', room: conversationId, id: messageId, ts, at: store.nextId() });
      return reply.code(204).send();
    },
  });
}

/** The timestamp and author of a message not deleted: in memory, else (DATA_DIR) older than its window on disk; else 404. */
function messageToDelete(store: ApiDeps['store'], replicator: ApiDeps['replicator'], room: string, id: string): { ts: number; author: string | undefined } {
  const ts = store.messageTimestamp(room, id);
  if (ts !== null) return { ts, author: store.authorOf(room, id) };
  const old = replicator.history?.messageAt(room, id);
  if (!old || old.deleted) throw notFound('no such message');
  return { ts: old.timestamp, author: old.author };
}
