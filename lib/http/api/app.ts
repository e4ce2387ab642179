/**
 * /api/* on fastify (docs/decisions/rest-framework.md), mounted in chatmesh's own HTTP server:
 * `serverFactory` hands fastify that server and gives us fastify's request handler, which
 * http-server.ts calls for paths under /api/. Fastify never listens and never closes the
 * server: the node does both, once, with its own timeouts and header limits.
 * Bodies: JSON only (415 otherwise), MAX_BODY_BYTES (413, connection closed), bad JSON 400
 * bad_json, a `__proto__`/`constructor`/`prototype` key 400 invalid_field; every route's
 * input is validated by its JSON Schemas, and the same schemas write the answers and the
 * OpenAPI document (GET /api/openapi.json).
 */
import type http from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { Ajv } from 'ajv';
import { ApiErrorCode } from '../../errors.js';
import { forbiddenKey } from '../../protocol/forbidden-keys.js';
import type { ApiDeps } from './deps.js';
import { ApiError, invalid, notFound, sendError, unsupportedMediaType } from './errors.js';
import { addIdentityHook } from './identity.js';
import { OpenApiDocument } from './openapi-doc.js';
import { registerRoutes } from './routes/index.js';

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface RestApi {
  /** Handles a request under /api/ (fastify answers every one, errors included). */
  handle: RequestHandler;
  close(): Promise<void>;
}

/** Builds the API on `server` (already created, listening or not) and waits until it is ready. */
export async function createRestApi(server: http.Server, deps: ApiDeps): Promise<RestApi> {
  let handle: RequestHandler | null = null;
  const internal = deps.onInternalError ?? (() => {});
  const app: FastifyInstance = Fastify({
    serverFactory: (handler) => {
      handle = handler;
      return server;
    },
    // The node's own clientError handler answers malformed requests (http-server.ts).
    clientErrorHandler: () => {},
    logger: false,
    bodyLimit: deps.options.maxBodyBytes,
    // The default JSON parser is replaced below (see jsonBody); these say the same for any other.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Room names (conversation ids from WebSocket joins) may be longer than fastify's default 100.
    routerOptions: { maxParamLength: 1024 },
    frameworkErrors: (err, request, reply) => sendError(err, request, reply, internal),
  });
  useValidators(app);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, text, done) => {
    try {
      done(null, jsonBody(text as string, request.routeOptions.config.body === 'optional'));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // A route that needs a body and got none: 415 (the body is what is missing, not a field).
  app.addHook('preValidation', async (request) => {
    const mode = request.routeOptions.config.body;
    if (mode === undefined || request.body !== undefined) return;
    if (mode === 'optional') request.body = {};
    else throw unsupportedMediaType('send a JSON body with content-type application/json');
  });
  app.setErrorHandler((err, request, reply) => sendError(err, request, reply, internal));
  addIdentityHook(app, deps.verifier);
  // A declared length over the limit is refused before anything else about the body (its type).
  app.addHook('onRequest', async (request) => {
    if (Number(request.headers['content-length']) > request.routeOptions.bodyLimit) {
      throw new ApiError(413, ApiErrorCode.PayloadTooLarge, `body over ${request.routeOptions.bodyLimit} bytes`);
    }
  });
  answerUnmatched(app);
  const openApi = new OpenApiDocument(app);
  registerRoutes(app, deps, openApi);
  await app.ready();
  if (handle === null) throw new Error('fastify did not call serverFactory');
  return { handle, close: () => app.close() };
}

/**
 * Two validators: query strings and path params arrive as text and are coerced to the schema's
 * types ("limit=10" → 10); JSON bodies are not (a "1000" timestamp is a string, not a number).
 * Not strict: the schemas carry OpenAPI annotations (description) besides validation keywords.
 * No meta-schema check at start-up (it costs ~30 ms of CPU per process, each cluster worker
 * pays it): the schemas are ours, and test/integration/openapi.test.ts validates them all.
 */
function useValidators(app: FastifyInstance): void {
  const lean = { useDefaults: true, allErrors: false, strict: false, meta: false, validateSchema: false } as const;
  const bodies = new Ajv({ ...lean, coerceTypes: false });
  const texts = new Ajv({ ...lean, coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodies : texts).compile(schema));
}

/**
 * A JSON body as chatmesh always read it: empty (or blank, where a body is optional) is
 * "no body" (undefined); JSON.parse exactly (a BOM or trailing garbage is bad_json); a
 * forbidden key at the top is refused before the object reaches any code of ours.
 */
function jsonBody(text: string, optional: boolean): unknown {
  if (text === '' || (optional && text.trim() === '')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, ApiErrorCode.BadJson, 'body is not valid JSON');
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const key = forbiddenKey(value);
    if (key !== undefined) throw invalid(`key "${key}" is not allowed`);
  }
  return value;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** An unmatched request: 405 with Allow when the path has routes under other methods, else 404. */
function answerUnmatched(app: FastifyInstance): void {
  const routes: Array<{ method: string; pattern: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(`^${route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+')}$`);
    for (const method of [route.method].flat()) {
      routes.push({ method, pattern });
      if (method === 'GET') routes.push({ method: 'HEAD', pattern });
    }
  });
  app.setNotFoundHandler(async (request) => {
    const path = request.url.split('?')[0];
    const allowed = METHODS.filter((m) => routes.some((r) => r.method === m && r.pattern.test(path)));
    if (allowed.length > 0) throw new ApiError(405, ApiErrorCode.MethodNotAllowed, `use ${allowed.join(' or ')}`, { allow: allowed.join(', ') });
    throw notFound(`no route for ${request.method} ${path}`);
  });
}
