/** GET /api/openapi.json: the OpenAPI 3.1 document, built by @fastify/swagger from the route schemas (openapi-doc.ts). */
import type { FastifyInstance } from 'fastify';
import type { OpenApiDocument } from '../openapi-doc.js';

export function openApiRoute(app: FastifyInstance, doc: OpenApiDocument): void {
  app.route({
    method: 'GET',
    url: '/api/openapi.json',
    // Not in the document itself; no token needed (it describes, it holds no data).
    schema: { hide: true },
    config: { public: true },
    handler: async () => doc.get(),
  });
}
