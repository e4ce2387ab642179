/**
 * The browser pages: GET (or HEAD) /, /app.js and /style.css (the chat), and /mesh, /mesh.js
 * and /mesh.css (the live view of the mesh, whose data is GET /mesh/state), and /agent,
 * /agent.js (with /agent-shared.js and /agent-conversation.js) and /agent.css (the agent inbox,
 * on the REST API and chatmesh/client), served from
 * lib/http/page/ with their content types, `Cache-Control: no-cache` and a strict
 * Content-Security-Policy (the page has no inline script or style).
 *
 * The files are read from the source folder, not from dist/: tsc does not copy non-TS
 * files, and reading them where they are written needs no build step, works however the
 * TypeScript was compiled (`npm run build`, bare `tsc`) and can never serve a stale copy.
 * The compiled module is dist/lib/http/chat-page.js, so the folder is ../../../lib/http/page.
 * Each file is read once, on its first request, and then kept in memory.
 *
 * The client library (chatmesh/client, lib/client/) is served too, as ES modules: /client.js
 * re-exports /client/index.js, and /client/*.js are the compiled files of dist/lib/client/
 * (JavaScript from tsc, so these are read from dist/; node.js, which loads `ws`, is not served).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { GET_ONLY, send } from './responses.js';

export const PAGE_DIR = fileURLToPath(new URL('../../../lib/http/page/', import.meta.url));
/** The compiled client library, next to this module's folder in dist/lib/. */
export const CLIENT_DIR = fileURLToPath(new URL('../client/', import.meta.url));
const CLIENT_MODULE = /^\/client\/([a-z-]+\.js)$/;
const JS = 'text/javascript; charset=utf-8';

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  // The live view of the mesh: the page is open (it holds no data), /mesh/state is not.
  '/mesh': { file: 'mesh.html', type: 'text/html; charset=utf-8' },
  '/mesh.js': { file: 'mesh.js', type: JS },
  '/mesh.css': { file: 'mesh.css', type: 'text/css; charset=utf-8' },
  // The agent inbox: the page is open too; its data comes from /api (a token with AUTH=jwt).
  '/agent': { file: 'agent.html', type: 'text/html; charset=utf-8' },
  '/agent.js': { file: 'agent.js', type: JS },
  '/agent-shared.js': { file: 'agent-shared.js', type: JS },
  '/agent-conversation.js': { file: 'agent-conversation.js', type: JS },
  '/agent.css': { file: 'agent.css', type: 'text/css; charset=utf-8' },
  '/client.js': { file: '', type: JS },
};
/** /client.js: the library's entry, at a path of its own. */
const CLIENT_ENTRY = Buffer.from("// chatmesh/client: see README, Client library.\nexport * from './client/index.js';\n");

export const PAGE_CSP = "default-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

const cache = new Map<string, Buffer>();

/** Whether the path is one of the page's (then `serveChatPage` answers it). */
export function isChatPagePath(path: string): boolean {
  return Object.hasOwn(ASSETS, path) || CLIENT_MODULE.test(path);
}

export async function serveChatPage(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const module = CLIENT_MODULE.exec(path)?.[1];
  const asset = module !== undefined && module !== 'node.js' ? { file: module, type: JS } : ASSETS[path];
  if (!asset) return reply(res, 404, 'text/plain; charset=utf-8', Buffer.from('not found\n'));
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return reply(res, 405, 'application/json; charset=utf-8', Buffer.from(GET_ONLY.body), GET_ONLY.headers);
  }
  const file = module === undefined ? PAGE_DIR + asset.file : CLIENT_DIR + asset.file;
  let body = path === '/client.js' ? CLIENT_ENTRY : cache.get(file);
  if (!body) {
    try {
      body = await readFile(file);
    } catch {
      if (module !== undefined) return reply(res, 404, 'text/plain; charset=utf-8', Buffer.from('not found\n'));
      return reply(res, 404, 'text/plain; charset=utf-8', Buffer.from(`the chat page is not installed (no ${asset.file} in ${PAGE_DIR})\n`));
    }
    cache.set(file, body);
  }
  // Public code: a page of another origin may import it (module scripts are fetched with CORS).
  reply(res, 200, asset.type, body, module !== undefined || path === '/client.js' ? { 'access-control-allow-origin': '*' } : {});
}

/** Every answer of the page carries these. */
const PAGE_HEADERS = {
  'cache-control': 'no-cache',
  'content-security-policy': PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function reply(res: ServerResponse, status: number, type: string, body: Buffer, headers: Record<string, string> = {}): void {
  send(res, status, type, body, { ...PAGE_HEADERS, ...headers });
}
