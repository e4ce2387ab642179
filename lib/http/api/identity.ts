/**
 * Who is calling (AUTH=jwt): one onRequest hook verifies the Bearer token of every /api
 * request before its body is read, and refuses a role the route does not allow
 * (`config.roles`). Routes read `request.identity` (null with AUTH=none). Routes marked
 * `config.public` (the OpenAPI document) and unmatched paths (404/405) skip it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuthError, AuthErrorCode, tokenFromRequest, type Identity, type Role, type TokenVerifier } from '../../auth/index.js';
import { ApiErrorCode } from '../../errors.js';
import { bearerChallenge } from '../responses.js';
import { ApiError, forbidden } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** AUTH=jwt: the verified caller; null with AUTH=none. */
    identity: Identity | null;
  }
  interface FastifyContextConfig {
    /** AUTH=jwt: the roles that may call this route (all when absent). */
    roles?: readonly Role[];
    /** The refusal for another role (default: "your role may not do this"). */
    rolesMessage?: string;
    /** No token needed, even with AUTH=jwt. */
    public?: boolean;
    /** A JSON body is `required` (none: 415) or `optional` (none or blank: {}). */
    body?: 'required' | 'optional';
  }
}

export function addIdentityHook(app: FastifyInstance, verifier: TokenVerifier | null): void {
  app.decorateRequest('identity', null);
  if (verifier === null) return;
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const config = request.routeOptions.config;
    if (request.is404 || config.public) return;
    const who = await identify(verifier, request);
    if (config.roles && !config.roles.includes(who.role)) throw forbidden(config.rolesMessage ?? `the role "${who.role}" may not do this`);
    request.identity = who;
  });
}

/** The request's Identity, or 401 (503 when the signing keys cannot be fetched). */
async function identify(verifier: TokenVerifier, request: FastifyRequest): Promise<Identity> {
  try {
    return await verifier.verify(tokenFromRequest(request.raw));
  } catch (err) {
    const e = err instanceof AuthError ? err : new AuthError(AuthErrorCode.TokenInvalid, 'token could not be verified');
    if (e.code === AuthErrorCode.AuthUnavailable) throw new ApiError(503, e.code, e.message, { 'retry-after': '5' });
    throw new ApiError(401, ApiErrorCode.Unauthorized, e.message, { 'www-authenticate': bearerChallenge(e.code, e.message) });
  }
}
