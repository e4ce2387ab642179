/**
 * The browser pages: GET (or HEAD) /, /app.js and /style.css (the chat), and /mesh, /mesh.js
 * and /mesh.css (the live view of the mesh, whose data is GET /mesh/state), served from
 * lib/http/page/ with their content types, `Cache-Control: no-cache` and a strict
 * Content-Security-Policy (the page has no inline script or style).
 *
 * The files are read from the source folder, not from dist/: tsc does not copy non-TS
 * files, and reading them where they are written needs no build step, works however the
 * TypeScript was compiled (`npm run build`, bare `tsc`) and can never serve a stale copy.
 * The compiled module is dist/lib/http/chat-page.js, so the folder is ../../../lib/http/page.
 * Each file is read once, on its first request, and then kept in memory.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { GET_ONLY, send } from './responses.js';

export const PAGE_DIR = fileURLToPath(new URL('../../../lib/http/page/', import.meta.url));

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  // The live view of the mesh: the page is open (it holds no data), /mesh/state is not.
  '/mesh': { file: 'mesh.html', type: 'text/html; charset=utf-8' },
  '/mesh.js': { file: 'mesh.js', type: 'text/javascript; charset=utf-8' },
  '/mesh.css': { file: 'mesh.css', type: 'text/css; charset=utf-8' },
};

export const PAGE_CSP = "default-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

const cache = new Map<string, Buffer>();

/** Whether the path is one of the page's (then `serveChatPage` answers it). */
export function isChatPagePath(path: string): boolean {
  return Object.hasOwn(ASSETS, path);
}

export async function serveChatPage(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const asset = ASSETS[path];
  if (!asset) return reply(res, 404, 'text/plain; charset=utf-8', Buffer.from('not found\n'));
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return reply(res, 405, 'application/json; charset=utf-8', Buffer.from(GET_ONLY.body), GET_ONLY.headers);
  }
  let body = cache.get(asset.file);
  if (!body) {
    try {
      body = await readFile(PAGE_DIR + asset.file);
    } catch {
      return reply(res, 404, 'text/plain; charset=utf-8', Buffer.from(`the chat page is not installed (no ${asset.file} in ${PAGE_DIR})\n`));
    }
    cache.set(asset.file, body);
  }
  reply(res, 200, asset.type, body);
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
