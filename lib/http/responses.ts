/**
 * HTTP answers shared by the routes: refusals written on a raw socket (an upgrade refused, or
 * a request Node could not parse), the one 405 every GET-only route gives, and the writer.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiErrorCode } from '../errors.js';

const STATUS_LINES = {
  400: '400 Bad Request',
  403: '403 Forbidden',
  404: '404 Not Found',
  408: '408 Request Timeout',
  431: '431 Request Header Fields Too Large',
  503: '503 Service Unavailable',
} as const;

/** Refuses a connection with an empty HTTP answer and closes it. */
export function rejectUpgrade(socket: Duplex, status: keyof typeof STATUS_LINES): void {
  socket.end(`HTTP/1.1 ${STATUS_LINES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
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
