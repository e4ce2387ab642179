/**
 * Read state and edits (issue 13 items 4 and 7):
 *   POST  /api/conversations/:id/read                      {"upTo"} → 200 {user, upTo}
 *   PATCH /api/conversations/:id/messages/:messageId       {"content"} → 200 the message
 * The read cursor is the caller's (AUTH=jwt: the token's sub; without auth, `user` in the
 * body) and only moves forward: the answer is the cursor as it stands. An edit is by the
 * message's author (a customer: only its own, else 403) or an agent or service; the later
 * edit wins everywhere, a delete beats any edit.
 */
import type { FastifyInstance } from 'fastify';
import { publicMessage } from '../../../core/conversation.js';
import { isValidName } from '../../../core/store-write.js';
import type { ApiDeps } from '../deps.js';
import { forbidden, invalid, notFound } from '../errors.js';
import { errors, idParam, messageSchema } from '../schemas.js';
import { commitAndWait } from '../writes.js';
import { visible } from './conversations.js';

export function deskMessageRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { store, replicator, options } = deps;

  app.route({
    method: 'POST',
    url: '/api/conversations/:id/read',
    config: { body: 'required' },
    schema: {
      summary: 'Move the caller\'s read cursor forward (members get a read receipt)',
      security: [{ bearer: [] }],
      params: { type: 'object', required: ['id'], properties: { id: idParam } },
      body: {
        type: 'object',
        required: ['upTo'],
        additionalProperties: false,
        properties: {
          upTo: { type: 'string', minLength: 1, maxLength: 256, description: 'The id of the last message read.' },
          user: { type: 'string', description: 'AUTH=none only (required then): whose cursor. With a token it is the token\'s sub.' },
        },
      },
      response: {
        200: {
          description: 'The cursor as it stands (a cursor never moves back)',
          type: 'object',
          required: ['user', 'upTo'],
          additionalProperties: false,
          properties: { user: { type: 'string' }, upTo: { type: 'string' } },
        },
        ...errors(400, 401, 404, 413, 415, 503, 507),
      },
    },
    handler: async (request) => {
      const id = (request.params as { id: string }).id;
      const body = request.body as { upTo: string; user?: string };
      const who = request.identity;
      if (who !== null && body.user !== undefined && body.user !== who.sub) throw forbidden('user must be the token\'s subject (or left out)');
      const user = who?.sub ?? body.user;
      if (!isValidName(user, options.maxNameLength)) throw invalid(`user must be a name (1 to ${options.maxNameLength} characters, no control characters)`);
      visible(store, id, who);
      const at = store.messageTimestamp(id, body.upTo);
      if (at === null) throw notFound('no such message in this conversation');
      await commitAndWait(replicator, { type: 'read', room: id, id: store.nextId(), user, upTo: body.upTo, at });
      const cursor = store.conversation(id)?.reads.get(user);
      return { user, upTo: cursor?.upTo ?? body.upTo };
    },
  });

  app.route({
    method: 'PATCH',
    url: '/api/conversations/:id/messages/:messageId',
    config: { body: 'required' },
    schema: {
      summary: 'Edit a message (its author, an agent or a service)',
      security: [{ bearer: [] }],
      params: { type: 'object', required: ['id', 'messageId'], properties: { id: idParam, messageId: idParam } },
      body: {
        type: 'object',
        required: ['content'],
        additionalProperties: false,
        properties: { content: { type: 'string', description: 'The new text: non-blank, at most MAX_TEXT_LENGTH, well-formed.' } },
      },
      response: {
        200: { description: 'The message as it now reads (with editedAt), stored and replicated', ...messageSchema },
        ...errors(400, 401, 403, 404, 409, 413, 415, 503, 507),
      },
    },
    handler: async (request) => {
      const { id, messageId } = request.params as { id: string; messageId: string };
      const content = (request.body as { content: string }).content;
      const who = request.identity;
      if (content.trim() === '') throw invalid('content must be a non-empty string');
      if (content.length > options.maxTextLength) throw invalid(`content must be at most ${options.maxTextLength} characters`);
      if (!content.isWellFormed()) throw invalid('content holds an unpaired surrogate');
      visible(store, id, who);
      const ts = store.messageTimestamp(id, messageId);
      if (ts === null) throw notFound('no such message');
      if (who?.role === 'customer' && store.authorOf(id, messageId) !== who.sub) throw forbidden('a customer may edit only its own messages');
      await commitAndWait(replicator, { type: 'edited', room: id, id: store.nextId(), msg: messageId, text: content, ts, ...(who !== null && { by: who.sub }) });
      const entry = store.conversation(id)?.byId.get(messageId);
      if (entry === undefined || entry.deleted) throw notFound('no such message (deleted meanwhile)');
      return publicMessage(entry);
    },
  });
}
