/**
 * POST /api/auth/revocations (AUTH=jwt, a `service` token only):
 *   {"jti":"<id>","exp":<seconds>}   revokes one token (exp optional: the longest a token may live)
 *   {"sub":"<user>"}                 revokes every token of a user issued up to now
 * → 201 {"revoked":{…entry}}, applied here at once and sent to every instance (see
 * lib/replication/revocations.ts); 200 when the table already held it. 401 without a valid
 * token, 403 for another role, 404 with AUTH=none.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError, AuthErrorCode, revokeSubject, revokeToken, tokenFromRequest, type AuthOptions, type TokenVerifier } from '../auth/index.js';
import { ApiErrorCode } from '../errors.js';
import type { Revocations } from '../replication/revocations.js';
import { sendJson } from './http-server.js';
import { bearerChallenge } from './responses.js';

export const REVOCATIONS_PATH = '/api/auth/revocations';
const MAX_BODY = 4096;

export class RevocationsApi {
  constructor(
    private readonly verifier: TokenVerifier | null,
    private readonly revocations: Revocations,
    private readonly auth: Pick<AuthOptions, 'clockToleranceSec' | 'maxTokenLifetimeSec'>,
  ) {}

  /** Never throws. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.route(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: ApiErrorCode.Internal, message: 'internal error' } });
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}) => {
      req.resume();
      sendJson(res, status, { error: { code, message } }, headers);
    };
    if (this.verifier === null) return fail(404, ApiErrorCode.NotFound, 'revocations need AUTH=jwt');
    if (req.method !== 'POST') return fail(405, ApiErrorCode.MethodNotAllowed, 'use POST', { allow: 'POST' });
    let role: string;
    try {
      role = (await this.verifier.verify(tokenFromRequest(req))).role;
    } catch (err) {
      const e = err instanceof AuthError ? err : new AuthError(AuthErrorCode.TokenInvalid, 'token could not be verified');
      if (e.code === AuthErrorCode.AuthUnavailable) return fail(503, e.code, e.message, { 'retry-after': '5' });
      return fail(401, ApiErrorCode.Unauthorized, e.message, { 'www-authenticate': bearerChallenge(e.code, e.message) });
    }
    if (role !== 'service') return fail(403, ApiErrorCode.Forbidden, 'only a service token may revoke');
    if ((req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase() !== 'application/json') {
      return fail(415, ApiErrorCode.UnsupportedMediaType, 'content-type must be application/json');
    }
    let text = '';
    for await (const chunk of req as AsyncIterable<Buffer>) {
      text += chunk.toString('utf8');
      if (text.length > MAX_BODY) return fail(413, ApiErrorCode.PayloadTooLarge, `body over ${MAX_BODY} bytes`);
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text);
    } catch {
      return fail(400, ApiErrorCode.BadJson, 'body is not valid JSON');
    }
    const nowSec = Math.floor(Date.now() / 1000);
    const { clockToleranceSec: tolerance, maxTokenLifetimeSec: lifetime } = this.auth;
    const ok = (s: unknown): s is string => typeof s === 'string' && s.length > 0 && s.length <= 256 && s.isWellFormed();
    let entry;
    if (body?.jti !== undefined && body.sub === undefined) {
      if (!ok(body.jti)) return fail(400, ApiErrorCode.InvalidField, 'jti must be a string of 1 to 256 characters');
      const exp = body.exp ?? nowSec + lifetime;
      if (typeof exp !== 'number' || !Number.isSafeInteger(exp) || exp < 0 || exp > nowSec + lifetime) {
        return fail(400, ApiErrorCode.InvalidField, 'exp must be the token\'s exp, in seconds (at most JWT_MAX_LIFETIME_SEC from now)');
      }
      entry = revokeToken({ jti: body.jti, exp }, tolerance);
    } else if (body?.sub !== undefined && body.jti === undefined) {
      if (!ok(body.sub) || body.sub.length > 128) return fail(400, ApiErrorCode.InvalidField, 'sub must be a string of 1 to 128 characters');
      entry = revokeSubject(body.sub, nowSec, lifetime, tolerance);
    } else {
      return fail(400, ApiErrorCode.InvalidField, 'give either jti (and exp) or sub');
    }
    const changed = this.revocations.revoke(entry);
    sendJson(res, changed ? 201 : 200, { revoked: entry });
  }
}
