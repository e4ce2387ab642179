/**
 * The support desk's conversations (issue 13):
 *   GET   /api/conversations        → 200 {items, next}: the inbox, newest activity first
 *   PATCH /api/conversations/:id    → 200 the conversation: status, snoozedUntil, assignee, metadata
 * With AUTH=jwt a customer's inbox holds only its own conversations, and only agents and
 * services may PATCH (a customer: 403). Each changed field is one replicated write (a
 * register: the later write wins on every instance), so concurrent PATCHes of different
 * fields on two instances both survive.
 */
import type { FastifyInstance } from 'fastify';
import { SNOOZE_MAX_MS, METADATA_MAX_KEYS, isAgentId, metadataProblem, type FieldWrite, type Metadata, type Status } from '../../../core/desk-writes.js';
import { INBOX_LIMIT_DEFAULT, INBOX_LIMIT_MAX, conversationItem, conversationState, decodeCursor, inbox, type ConversationState, type InboxQuery } from '../../../core/inbox.js';
import { ApiErrorCode } from '../../../errors.js';
import type { ApiDeps } from '../deps.js';
import { ApiError, invalid, notFound } from '../errors.js';
import { conversationSchema, errors, idParam } from '../schemas.js';
import { commitAndWait } from '../writes.js';
import { visible } from './conversations.js';

const statusSchema = { type: 'string', enum: ['open', 'pending', 'snoozed', 'resolved'] } as const;

export function deskRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { store, replicator } = deps;

  app.route({
    method: 'GET',
    url: '/api/conversations',
    schema: {
      summary: 'The inbox: conversations by last activity, newest first (a customer: its own)',
      security: [{ bearer: [] }],
      querystring: {
        type: 'object',
        properties: {
          limit: { type: 'integer', minimum: 1, maximum: INBOX_LIMIT_MAX, default: INBOX_LIMIT_DEFAULT },
          cursor: { type: 'string', description: 'The `next` of the previous page.' },
          status: statusSchema,
          assignee: { type: 'string', minLength: 1, maxLength: 128, description: 'An agent id; `me` (AUTH=jwt): the caller; `none`: unassigned.' },
          updatedSince: { type: 'integer', minimum: 0, description: 'Only conversations updated at or after this (ms since 1970).' },
        },
      },
      response: {
        200: {
          description: 'A page of the inbox',
          type: 'object',
          required: ['items', 'next'],
          additionalProperties: false,
          properties: { items: { type: 'array', items: conversationSchema }, next: { type: ['string', 'null'], description: 'The cursor of the next page, or null at the end.' } },
        },
        ...errors(400, 401, 503),
      },
    },
    handler: async (request) => {
      const q = request.query as { limit: number; cursor?: string; status?: Status; assignee?: string; updatedSince?: number };
      const who = request.identity;
      const query: InboxQuery = { limit: q.limit, status: q.status, updatedSince: q.updatedSince };
      if (q.cursor !== undefined) {
        const after = decodeCursor(q.cursor);
        if (after === null) throw new ApiError(400, ApiErrorCode.InvalidCursor, 'cursor is not one this API gave (use the `next` of the previous page)');
        query.after = after;
      }
      if (q.assignee === 'me') {
        if (who === null) throw invalid('assignee=me needs AUTH=jwt (who is "me"?)');
        query.assignee = who.sub;
      } else if (q.assignee !== undefined) query.assignee = q.assignee === 'none' ? null : q.assignee;
      if (who !== null) {
        query.reader = who.sub;
        if (who.role === 'customer') query.owner = who.sub;
      }
      return inbox(store.liveConversations(), query, Date.now());
    },
  });

  app.route({
    method: 'PATCH',
    url: '/api/conversations/:id',
    config: { body: 'required', roles: ['agent', 'service'], rolesMessage: 'only agents and services change a conversation' },
    schema: {
      summary: 'Change status, snooze, assignee or metadata (agents and services)',
      security: [{ bearer: [] }],
      params: { type: 'object', required: ['id'], properties: { id: idParam } },
      body: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: {
          status: statusSchema,
          snoozedUntil: { type: 'integer', description: 'Required with status snoozed (only then): ms since 1970, in the future, at most a year ahead.' },
          assignee: { type: ['string', 'null'], description: 'An agent id (1–128 characters), or null to unassign.' },
          metadata: { type: 'object', description: `Replaces the whole object: at most ${METADATA_MAX_KEYS} keys, 2 KiB as JSON.` },
        },
      },
      response: {
        200: { description: 'The conversation, changed here and acknowledged by every linked peer (or the ack timeout passed)', ...conversationSchema },
        ...errors(400, 401, 403, 404, 413, 415, 503, 507),
      },
    },
    handler: async (request) => {
      const id = (request.params as { id: string }).id;
      const body = request.body as { status?: Status; snoozedUntil?: number; assignee?: string | null; metadata?: Metadata };
      const who = request.identity;
      visible(store, id, who);
      const now = Date.now();
      const by = who === null ? {} : { by: who.sub };
      const writes: FieldWrite[] = [];
      if (body.status !== undefined) {
        if (body.status === 'snoozed') {
          const until = body.snoozedUntil;
          if (until === undefined || !Number.isSafeInteger(until) || until <= now || until > now + SNOOZE_MAX_MS) throw invalid('status snoozed needs snoozedUntil: ms since 1970, in the future, at most a year ahead');
          writes.push({ type: 'field', room: id, id: store.nextId(), f: 'status', v: 'snoozed', until, ...by });
        } else writes.push({ type: 'field', room: id, id: store.nextId(), f: 'status', v: body.status, ...by });
      }
      if (body.snoozedUntil !== undefined && body.status !== 'snoozed') throw invalid('snoozedUntil goes with status snoozed');
      if (body.assignee !== undefined) {
        if (body.assignee !== null && !isAgentId(body.assignee)) throw invalid('assignee must be an agent id (1 to 128 characters, no control characters) or null');
        writes.push({ type: 'field', room: id, id: store.nextId(), f: 'assignee', v: body.assignee, ...by });
      }
      if (body.metadata !== undefined) {
        const problem = metadataProblem(body.metadata);
        if (problem !== null) throw invalid(problem);
        writes.push({ type: 'field', room: id, id: store.nextId(), f: 'metadata', v: body.metadata, ...by });
      }
      // Each field its own write (see above), only where it changes something (a write is an
      // event: webhooks, `conversation` frames); answered once all are stored and replicated.
      const current = store.conversation(id);
      const state = current === null ? null : conversationState(current, now);
      const changes = writes.filter((w) => state === null || !sameValue(state, w));
      await Promise.all(changes.map((w) => commitAndWait(replicator, w)));
      const conv = store.conversation(id);
      if (conv === null) throw notFound('no such conversation');
      return conversationItem(conv, Date.now(), who?.sub);
    },
  });
}

/** True when a field write would leave the conversation as it reads now. */
function sameValue(state: ConversationState, write: FieldWrite): boolean {
  switch (write.f) {
    case 'status':
      return state.status === write.v && state.snoozedUntil === write.until;
    case 'assignee':
      return state.assignee === write.v;
    case 'metadata':
      return JSON.stringify(state.metadata) === JSON.stringify(write.v);
  }
}
