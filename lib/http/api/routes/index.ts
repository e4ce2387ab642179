/**
 * Every /api route, one file per resource. To add a route:
 *   1. In the resource's file (or a new one here, registered below), call
 *      `app.route({ method, url: '/api/...', schema: { params, querystring, body, response }, config, handler })`.
 *      Give every response the route answers a schema (errors(...) from ../schemas.ts for the
 *      error statuses): it validates nothing, but it writes the answer (fields not in it are
 *      dropped) and documents it in /api/openapi.json.
 *   2. `config.roles` limits the roles with AUTH=jwt (request.identity is the caller, null
 *      with AUTH=none); `config.body: 'required' | 'optional'` for a route that takes JSON.
 *   3. Refuse with the ApiError helpers of ../errors.ts (codes from lib/errors.ts ApiErrorCode).
 *   4. Add an example request for each new path and status to the table in
 *      test/integration/openapi.test.ts: that test fails for a documented path without one.
 * 404, 405 (with Allow), 413, 415, bad_json and schema errors are answered for every route by app.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';
import type { OpenApiDocument } from '../openapi-doc.js';
import { conversationRoutes } from './conversations.js';
import { deskMessageRoutes } from './desk-messages.js';
import { deskRoutes } from './desk.js';
import { messageRoutes } from './messages.js';
import { openApiRoute } from './openapi.js';
import { revocationRoutes } from './revocations.js';

export function registerRoutes(app: FastifyInstance, deps: ApiDeps, openApi: OpenApiDocument): void {
  conversationRoutes(app, deps);
  deskRoutes(app, deps);
  messageRoutes(app, deps);
  deskMessageRoutes(app, deps);
  revocationRoutes(app, deps);
  openApiRoute(app, openApi);
}
