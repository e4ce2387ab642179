/** GET /api/openapi.json: the OpenAPI 3.1 document, built by @fastify/swagger from the route schemas. */
import type { FastifyInstance } from 'fastify';

export function openApiRoute(app: FastifyInstance): void {
  app.route({
    method: 'GET',
    url: '/api/openapi.json',
    // Not in the document itself; no token needed (it describes, it holds no data).
    schema: { hide: true },
    config: { public: true },
    handler: async () => app.swagger(),
  });
}
