/**
 * The OpenAPI 3.1 document of /api, built by @fastify/swagger from the route schemas, on the
 * first GET /api/openapi.json rather than at start-up: building it costs ~50 ms of CPU that
 * every process start (each cluster worker, each test instance) would otherwise pay. The
 * routes are recorded as they are added to the API (onRoute) and added again, with their
 * schemas and a handler that never runs, to a throwaway fastify instance that carries the
 * swagger plugin; its document is kept.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { VERSION } from '../../version.js';

type Paths = Record<string, Record<string, { requestBody?: { required?: boolean } }>>;

export class OpenApiDocument {
  private readonly routes: RouteOptions[] = [];
  private built: Promise<unknown> | null = null;

  /** Records every route added to `app` from now on (HEAD routes fastify adds itself are left out). */
  constructor(app: FastifyInstance) {
    app.addHook('onRoute', (route) => {
      if (route.method !== 'HEAD') this.routes.push(route);
    });
  }

  get(): Promise<unknown> {
    this.built ??= this.build();
    return this.built;
  }

  private async build(): Promise<unknown> {
    const [{ default: Fastify }, { default: swagger }] = await Promise.all([import('fastify'), import('@fastify/swagger')]);
    const app = Fastify({ logger: false, exposeHeadRoutes: false });
    // Only the schemas matter here: nothing is validated or written by this instance.
    app.setValidatorCompiler(() => () => true);
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    // @fastify/swagger marks every request body required; a route with config.body 'optional' is not.
    const optional = new Set(this.routes.filter((r) => r.config?.body === 'optional').flatMap((r) => [r.method].flat().map((m) => `${m.toLowerCase()} ${r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`)));
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: 'chatmesh REST API', version: VERSION, description: 'Conversations over a brokerless chat mesh. Errors are {"error":{"code","message"}}. The bearer token is needed only with AUTH=jwt.' },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      },
      transformObject: (documents) => {
        const doc = (documents as { openapiObject: { paths?: Paths } }).openapiObject;
        for (const [path, operations] of Object.entries(doc.paths ?? {})) {
          for (const [method, operation] of Object.entries(operations)) {
            if (optional.has(`${method} ${path}`) && operation.requestBody) operation.requestBody.required = false;
          }
        }
        return doc;
      },
    });
    for (const r of this.routes) app.route({ method: r.method, url: r.url, schema: r.schema, config: r.config, handler: async () => null });
    await app.ready();
    const doc = app.swagger();
    await app.close();
    return doc;
  }
}
