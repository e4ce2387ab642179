/**
 * Finding the token in a request. Browsers cannot set headers on a WebSocket, hence `?token=` on
 * the upgrade; REST clients can, so there the header is the only place (a token in a URL ends up
 * in access logs and proxies).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { AuthError, AuthErrorCode } from './errors.js';

/** The parts of an IncomingMessage the extractors read. */
export interface RequestLike {
  headers: IncomingHttpHeaders;
  url?: string | undefined;
}

/** RFC 6750 b64token: what a Bearer credential may contain. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The token of an `Authorization: Bearer …` header; undefined without the header.
 * Scheme case and surrounding spaces are tolerated; another scheme, or junk after the token, is
 * 'token_invalid' (never silently ignored).
 */
export function bearerFromHeader(headers: IncomingHttpHeaders): string | undefined {
  const value = headers.authorization;
  if (value === undefined || value.trim() === '') return undefined;
  const parts = value.trim().split(/[ \t]+/);
  if (parts[0]!.toLowerCase() !== 'bearer') throw new AuthError(AuthErrorCode.TokenInvalid, 'Authorization must use the Bearer scheme');
  if (parts.length < 2) throw new AuthError(AuthErrorCode.TokenMissing, 'Authorization: Bearer without a token');
  if (parts.length > 2 || !B64TOKEN.test(parts[1]!)) throw new AuthError(AuthErrorCode.TokenInvalid, 'Authorization: Bearer value is not a token');
  return parts[1];
}

/** REST: the Bearer header only. Throws 'token_missing' without it. */
export function tokenFromRequest(req: RequestLike): string {
  const token = bearerFromHeader(req.headers);
  if (token === undefined) throw new AuthError(AuthErrorCode.TokenMissing, 'Authorization: Bearer header required');
  return token;
}

/**
 * WebSocket upgrade: the Bearer header, else the `token` query parameter. A header with another
 * scheme is still refused when there is no query token, so a client that meant to send one hears why.
 */
export function tokenFromUpgrade(req: RequestLike): string {
  let headerError: AuthError | undefined;
  try {
    const token = bearerFromHeader(req.headers);
    if (token !== undefined) return token;
  } catch (err) {
    // e.g. a proxy's Basic credentials: fall back to the query, which the client controls.
    headerError = err as AuthError;
  }
  const values = queryTokens(req.url);
  if (values.length > 1) throw new AuthError(AuthErrorCode.TokenInvalid, 'more than one token query parameter');
  const token = values[0]?.trim();
  if (token === undefined || token === '') {
    throw headerError ?? new AuthError(AuthErrorCode.TokenMissing, 'token required: Authorization: Bearer header or ?token= parameter');
  }
  if (!B64TOKEN.test(token)) throw new AuthError(AuthErrorCode.TokenInvalid, 'token parameter is not a token');
  return token;
}

function queryTokens(url: string | undefined): string[] {
  try {
    return new URL(url ?? '/', 'http://localhost').searchParams.getAll('token');
  } catch {
    return []; // an unparsable URL has no query token
  }
}
