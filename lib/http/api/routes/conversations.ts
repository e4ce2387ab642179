/**
 * Conversations:
 *   POST /api/conversations        → 201 {id}, Location (a service may create one for a customer: `owner`)
 *   GET  /api/conversations/:id    → 200 {id, messages} in (timestamp, id) order
 *        ?limit=&before=|after=<messageId> → 200 {id, messages, prev, next}: a page (core/history-page.ts)
 * With AUTH=jwt a customer sees only the conversations it owns (another's is 404, so ids
 * cannot be probed); agents and services see all.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Identity } from '../../../auth/index.js';
import type { ConversationStore } from '../../../core/conversation-store.js';
import { PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, readPage } from '../../../core/history-page.js';
import { ApiErrorCode } from '../../../errors.js';
import type { ApiDeps } from '../deps.js';
import { ApiError, invalid, notFound } from '../errors.js';
import { conversationItem } from '../../../core/inbox.js';
import { conversationSchema, errors, idParam, messageSchema } from '../schemas.js';
import { commitAndWait } from '../writes.js';

/** A conversation this identity may see (a customer: its own); else 404, as if it did not exist. */
export function visible(store: ConversationStore, id: string, who: Identity | null): void {
  if (!store.has(id) || (who?.role === 'customer' && store.ownerOf(id) !== who.sub)) throw notFound('no such conversation');
}

const { lastMessage: _lastMessage, ...deskProperties } = conversationSchema.properties;

export function conversationRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { store, replicator, creations, disk } = deps;

  app.route({
    method: 'POST',
    url: '/api/conversations',
    config: { body: 'optional' },
    schema: {
      summary: 'Create a conversation',
      security: [{ bearer: [] }],
      body: {
        type: 'object',
        properties: { owner: { type: 'string', description: 'AUTH=jwt, service role: the customer (token sub) who owns it. Ignored for other roles.' } },
      },
      response: {
        201: { description: 'Created (Location: /api/conversations/:id)', type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string' } } },
        ...errors(400, 401, 413, 415, 429, 503, 507),
      },
    },
    handler: async (request, reply) => {
      const who = request.identity;
      const body = request.body as { owner?: string };
      // A customer's conversation is its own; a service may create one for a customer (`owner`).
      let owner = who?.role === 'customer' ? who.sub : undefined;
      if (who?.role === 'service' && body.owner !== undefined) {
        if (body.owner === '' || body.owner.length > 128 || !body.owner.isWellFormed()) throw invalid('owner must be a user id (1 to 128 characters)');
        owner = body.owner;
      }
      const waitMs = creations.take(request.raw.socket.remoteAddress ?? 'unknown');
      if (waitMs > 0) {
        const seconds = Math.ceil(waitMs / 1000);
        throw new ApiError(429, ApiErrorCode.RateLimited, `too many new conversations from this address: try again in ${seconds} s`, { 'retry-after': String(seconds) });
      }
      const id = randomBytes(12).toString('base64url');
      await commitAndWait(replicator, { type: 'created', room: id, id: store.nextId(), ...(owner !== undefined && { owner }) });
      return reply.code(201).header('location', `/api/conversations/${id}`).send({ id });
    },
  });

  app.route({
    method: 'GET',
    url: '/api/conversations/:id',
    schema: {
      summary: 'A conversation and its history, oldest first; with limit, before or after: one page of it',
      description: 'Without parameters: the whole history (memory\'s window, and the disk\'s with DATA_DIR). With `limit`, `before` or `after`: '
        + `a page of at most \`limit\` (default ${PAGE_LIMIT_DEFAULT}, at most ${PAGE_LIMIT_MAX}) messages, oldest first: the newest ones, `
        + 'the ones just before the message `before`, or just after the message `after`. `prev` (older: ask before=prev) and `next` '
        + '(newer: ask after=next) are null at the ends, and both null on an empty page. A cursor that is no message id: 400 invalid_cursor; '
        + 'a message this conversation does not hold (deleted and gone, or never there): 404 cursor_not_found.',
      security: [{ bearer: [] }],
      params: { type: 'object', required: ['id'], properties: { id: idParam } },
      querystring: {
        type: 'object',
        properties: {
          limit: { type: 'integer', minimum: 1, maximum: PAGE_LIMIT_MAX, description: `Messages per page (default ${PAGE_LIMIT_DEFAULT}).` },
          before: { type: 'string', minLength: 1, maxLength: 200, description: 'A message id: the page just before it.' },
          after: { type: 'string', minLength: 1, maxLength: 200, description: 'A message id: the page just after it.' },
        },
      },
      response: {
        200: {
          description: 'The conversation (prev and next only when paging)',
          type: 'object',
          required: ['id', 'messages'],
          additionalProperties: false,
          // The desk's view of it (as an inbox item, without lastMessage), then its history.
          properties: {
            ...deskProperties,
            messages: { type: 'array', items: messageSchema },
            prev: { type: ['string', 'null'], description: 'Older messages exist: ask before=prev.' },
            next: { type: ['string', 'null'], description: 'Newer messages exist: ask after=next.' },
          },
        },
        ...errors(400, 401, 404, 503),
      },
    },
    handler: async (request) => {
      const { id } = request.params as { id: string };
      const query = request.query as { limit?: number; before?: string; after?: string };
      visible(store, id, request.identity);
      const conv = store.conversation(id);
      if (!conv) throw notFound('no such conversation');
      const { lastMessage: _, ...desk } = conversationItem(conv, Date.now(), request.identity?.sub);
      if (query.limit !== undefined || query.before !== undefined || query.after !== undefined) {
        if (query.before !== undefined && query.after !== undefined) throw invalid('give before or after, not both');
        const page = readPage(store, disk, id, { ...query, limit: query.limit ?? PAGE_LIMIT_DEFAULT });
        if (page === 'invalid_cursor') throw new ApiError(400, ApiErrorCode.InvalidCursor, 'before/after must be a message id');
        if (page === 'cursor_not_found') throw new ApiError(404, ApiErrorCode.CursorNotFound, 'no such message in this conversation: start again from the newest page');
        return { ...desk, ...page };
      }
      const recent = store.history(id) ?? [];
      // Memory holds the newest messages (and every delete among them); the disk, what is older.
      const messages = disk ? [...disk.historyBefore(id, recent[0] ?? null), ...recent] : recent;
      return { ...desk, messages };
    },
  });
}
