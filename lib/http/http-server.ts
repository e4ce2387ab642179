/**
 * The HTTP face: routes plain requests (/health, /metrics, /mesh/state, the pages) and hands WebSocket upgrades to the client
 * gateway (path /) or the mesh (path /_mesh). Timeouts and header limits are set explicitly
 * against slow or hostile clients.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { ChatmeshOptions } from '../config.js';
import { ApiErrorCode } from '../errors.js';
import { GET_ONLY, bearerChallenge, rejectUpgrade, sameSecret, send } from './responses.js';
import { MESH_STATE_PATH } from './mesh-state-api.js';
import { serveMetrics, type MetricsSource } from './metrics.js';
import { isChatPagePath, serveChatPage } from './chat-page.js';

export type HttpLimits = Pick<
  ChatmeshOptions,
  'httpHeadersTimeoutMs' | 'httpRequestTimeoutMs' | 'httpKeepAliveTimeoutMs' | 'httpMaxHeaderBytes'
>;

export interface HttpRoutes {
  health?: () => { statusCode: number; body: unknown };
  /** GET /metrics: Prometheus text from this source (null before the node runs: 503). */
  metrics?: () => MetricsSource | null;
  /** METRICS_TOKEN: /metrics answers 401 without `Authorization: Bearer <it>`. */
  metricsToken?: string;
  /** GET /mesh/state (its own access rules: mesh-state-api.ts). */
  meshState?: (req: IncomingMessage, res: ServerResponse) => void;
  /** Requests under /api/ (fastify's handler: lib/http/api/app.ts). */
  api?: (req: IncomingMessage, res: ServerResponse, path: string) => void;
  /** WebSocket upgrades, by path; any other path is refused with 404. */
  upgrades: Record<string, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>;
}

/** TLS for a server: its certificate and key; with `ca` and requestCert, only clients with a certificate from that CA. */
export type ServerTls = Pick<SecureContextOptions, 'cert' | 'key' | 'ca'> & { requestCert?: boolean; rejectUnauthorized?: boolean };

/** A plain HTTP server, or HTTPS with `tls` (the same routes, limits and timeouts). */
export function createHttpServer(limits: HttpLimits, routes: HttpRoutes, tls?: ServerTls): http.Server {
  const options = {
    headersTimeout: limits.httpHeadersTimeoutMs,
    requestTimeout: limits.httpRequestTimeoutMs,
    keepAliveTimeout: limits.httpKeepAliveTimeoutMs,
    maxHeaderSize: limits.httpMaxHeaderBytes,
    // Node checks the two timeouts above only this often (30 s by default, which would make
    // any shorter timeout a dead letter): check a few times per shortest timeout.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(limits.httpHeadersTimeoutMs, limits.httpRequestTimeoutMs) / 4))),
  };
  // An https.Server is an http.Server with TLS under it (the same events and methods).
  const server = tls ? (https.createServer({ ...options, ...tls }) as unknown as http.Server) : http.createServer(options);
  server.on('request', (req, res) => handleRequest(req, res, routes));
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const handler = routes.upgrades[pathOf(req)];
    if (!handler) {
      rejectUpgrade(socket, 404);
      return;
    }
    handler(req, socket, head);
  });
  // A malformed request costs its own connection only.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) return socket.destroy();
    rejectUpgrade(socket, err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400);
  });
  return server;
}

function handleRequest(req: IncomingMessage, res: ServerResponse, routes: HttpRoutes): void {
  const path = pathOf(req);
  if (path === '/health' && routes.health) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, JSON_TYPE, GET_ONLY.body, GET_ONLY.headers);
    }
    const { statusCode, body } = routes.health();
    return sendJson(res, statusCode, body);
  }
  if (path === '/metrics' && routes.metrics) {
    if (routes.metricsToken !== undefined && !sameSecret(req.headers.authorization ?? '', `Bearer ${routes.metricsToken}`)) {
      const code = req.headers.authorization ? 'token_invalid' : 'token_missing';
      const challenge = bearerChallenge(code, 'METRICS_TOKEN required');
      return sendJson(res, 401, { error: { code: ApiErrorCode.Unauthorized, message: 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>' } }, { 'www-authenticate': challenge });
    }
    return void serveMetrics(req, res, routes.metrics());
  }
  if (path === MESH_STATE_PATH && routes.meshState) return routes.meshState(req, res);
  if (routes.api && path.startsWith('/api/')) return routes.api(req, res, path);
  // The browser pages (/, /mesh and their files), only where clients connect: it opens ws://its-host/.
  if (routes.upgrades['/'] && isChatPagePath(path)) return void serveChatPage(req, res, path);
  sendJson(res, 404, { error: { code: ApiErrorCode.NotFound, message: `no route for ${req.method} ${path}` } });
}

const JSON_TYPE = 'application/json; charset=utf-8';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON_TYPE, JSON.stringify(body), headers);
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
