/**
 * POST /api/auth/revocations (AUTH=jwt, a `service` token only):
 *   {"jti":"<id>","exp":<seconds>}   revokes one token (exp optional: the longest a token may live)
 *   {"sub":"<user>"}                 revokes every token of a user issued up to now
 * → 201 {"revoked":{…entry}}, applied here at once and sent to every instance (see
 * lib/replication/revocations.ts); 200 when the table already held it. 401 without a valid
 * token, 403 for another role; with AUTH=none the route does not exist (404).
 */
import type { FastifyInstance } from 'fastify';
import { revokeSubject, revokeToken } from '../../../auth/index.js';
import type { ApiDeps } from '../deps.js';
import { invalid } from '../errors.js';
import { errors } from '../schemas.js';

export const REVOCATIONS_PATH = '/api/auth/revocations';
const MAX_BODY = 4096;

const entrySchema = {
  type: 'object',
  required: ['kind', 'until'],
  additionalProperties: false,
  properties: {
    kind: { type: 'string', enum: ['jti', 'sub'] },
    jti: { type: 'string' },
    sub: { type: 'string' },
    before: { type: 'integer', description: 'kind sub: tokens issued before this second are revoked.' },
    until: { type: 'integer', description: 'Seconds since 1970 after which the entry is dropped (every token it covers has expired).' },
  },
} as const;

export function revocationRoutes(app: FastifyInstance, deps: ApiDeps): void {
  if (deps.verifier === null) return;
  app.route({
    method: 'POST',
    url: REVOCATIONS_PATH,
    bodyLimit: MAX_BODY,
    config: { roles: ['service'], rolesMessage: 'only a service token may revoke', body: 'required' },
    schema: {
      summary: 'Revoke a token (jti) or every token of a user (sub); service role only',
      security: [{ bearer: [] }],
      body: {
        type: 'object',
        properties: {
          jti: { type: 'string', minLength: 1, maxLength: 256 },
          exp: { type: 'integer', minimum: 0, description: 'The token\'s exp (seconds); default: the longest a token may live.' },
          sub: { type: 'string', minLength: 1, maxLength: 128 },
        },
      },
      response: {
        200: { description: 'Already revoked', type: 'object', required: ['revoked'], additionalProperties: false, properties: { revoked: entrySchema } },
        201: { description: 'Revoked here and sent to every instance', type: 'object', required: ['revoked'], additionalProperties: false, properties: { revoked: entrySchema } },
        ...errors(400, 401, 403, 413, 415, 503),
      },
    },
    handler: async (request, reply) => {
      const body = request.body as { jti?: string; exp?: number; sub?: string };
      const nowSec = Math.floor(Date.now() / 1000);
      const { clockToleranceSec: tolerance, maxTokenLifetimeSec: lifetime } = deps.auth;
      let entry;
      if (body.jti !== undefined && body.sub === undefined) {
        if (!body.jti.isWellFormed()) throw invalid('jti must be a string of 1 to 256 characters');
        const exp = body.exp ?? nowSec + lifetime;
        if (!Number.isSafeInteger(exp) || exp > nowSec + lifetime) throw invalid('exp must be the token\'s exp, in seconds (at most JWT_MAX_LIFETIME_SEC from now)');
        entry = revokeToken({ jti: body.jti, exp }, tolerance);
      } else if (body.sub !== undefined && body.jti === undefined) {
        if (!body.sub.isWellFormed()) throw invalid('sub must be a string of 1 to 128 characters');
        entry = revokeSubject(body.sub, nowSec, lifetime, tolerance);
      } else {
        throw invalid('give either jti (and exp) or sub');
      }
      const changed = deps.revocations.revoke(entry);
      return reply.code(changed ? 201 : 200).send({ revoked: entry });
    },
  });
}
