/**
 * HTTP answers shared by the routes: refusals written on a raw socket (an upgrade refused, or
 * a request Node could not parse), the one 405 every GET-only route gives, the writer, and
 * the constant-time check of a shared secret (METRICS_TOKEN).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiErrorCode } from '../errors.js';

const STATUS_LINES = {
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  408: '408 Request Timeout',
  431: '431 Request Header Fields Too Large',
  503: '503 Service Unavailable',
} as const;

/** Refuses a connection with an empty HTTP answer (and these headers) and closes it. */
export function rejectUpgrade(socket: Duplex, status: keyof typeof STATUS_LINES, headers: Record<string, string> = {}): void {
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(`HTTP/1.1 ${STATUS_LINES[status]}\r\n${extra}Connection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * The WWW-Authenticate value of a 401 (RFC 6750): no error attribute when no token came, else
 * invalid_token with the reason (AuthError messages never contain the token).
 */
export function bearerChallenge(code: string, message: string): string {
  if (code === 'token_missing') return 'Bearer realm="chatmesh"';
  return `Bearer realm="chatmesh", error="invalid_token", error_description="${message.replace(/[^\x20-\x7e]|["\\]/g, ' ')}"`;
}

/** The 405 of routes that only answer GET (and HEAD): its JSON body and its Allow header. */
export const GET_ONLY = {
  body: JSON.stringify({ error: { code: ApiErrorCode.MethodNotAllowed, message: 'use GET' } }),
  headers: { allow: 'GET, HEAD' },
} as const;

/** Writes a complete response (no body for HEAD); does nothing once the response is destroyed. */
export function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Compares in constant time (hashes first, so lengths leak nothing either). */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
