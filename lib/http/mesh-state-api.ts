/**
 * GET /mesh/state: the live view of the mesh as JSON (mesh-state.ts), for the /mesh page and
 * for operators. Who may read it:
 *   AUTH=jwt          a `service` token (Authorization: Bearer); 401 without a valid one, 403 for another role
 *   METRICS_TOKEN set `Authorization: Bearer <METRICS_TOKEN>`; 401 otherwise
 *   neither           requests from loopback only; 403 from anywhere else
 * The topology and load of a mesh help an attacker: never open by default.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError, AuthErrorCode, tokenFromRequest, type TokenVerifier } from '../auth/index.js';
import { ApiErrorCode } from '../errors.js';
import type { MeshStateView } from './mesh-state.js';
import { GET_ONLY, bearerChallenge, sameSecret, send } from './responses.js';

export const MESH_STATE_PATH = '/mesh/state';

const JSON_TYPE = 'application/json; charset=utf-8';

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON_TYPE, JSON.stringify(body), headers);
}

interface Refusal {
  status: number;
  code: string;
  message: string;
  headers?: Record<string, string>;
}

export class MeshStateApi {
  constructor(
    private readonly view: MeshStateView,
    private readonly verifier: TokenVerifier | null,
    private readonly metricsToken: string | undefined,
  ) {}

  /** Never throws. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.route(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: ApiErrorCode.Internal, message: 'internal error' } });
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, JSON_TYPE, GET_ONLY.body, GET_ONLY.headers);
    const refusal = await this.refusal(req);
    if (refusal) return sendJson(res, refusal.status, { error: { code: refusal.code, message: refusal.message } }, refusal.headers);
    sendJson(res, 200, this.view.state(), { 'cache-control': 'no-store' });
  }

  /** Why this request may not read the state; null when it may. */
  async refusal(req: IncomingMessage): Promise<Refusal | null> {
    if (this.verifier) {
      let role: string;
      try {
        role = (await this.verifier.verify(tokenFromRequest(req))).role;
      } catch (err) {
        const e = err instanceof AuthError ? err : new AuthError(AuthErrorCode.TokenInvalid, 'token could not be verified');
        if (e.code === AuthErrorCode.AuthUnavailable) return { status: 503, code: e.code, message: e.message, headers: { 'retry-after': '5' } };
        return { status: 401, code: ApiErrorCode.Unauthorized, message: `${MESH_STATE_PATH} needs a service token: ${e.message}`, headers: { 'www-authenticate': bearerChallenge(e.code, e.message) } };
      }
      return role === 'service' ? null : { status: 403, code: ApiErrorCode.Forbidden, message: `${MESH_STATE_PATH} needs a service token (this one's role is ${role})` };
    }
    if (this.metricsToken !== undefined) {
      if (sameSecret(req.headers.authorization ?? '', `Bearer ${this.metricsToken}`)) return null;
      const code = req.headers.authorization ? 'token_invalid' : 'token_missing';
      const message = `${MESH_STATE_PATH} needs Authorization: Bearer <METRICS_TOKEN>`;
      return { status: 401, code: ApiErrorCode.Unauthorized, message, headers: { 'www-authenticate': bearerChallenge(code, 'METRICS_TOKEN required') } };
    }
    if (isLoopback(req.socket.remoteAddress)) return null;
    return { status: 403, code: ApiErrorCode.Forbidden, message: `${MESH_STATE_PATH} is served to loopback only: set METRICS_TOKEN (or AUTH=jwt) to read it from elsewhere` };
  }
}

/** 127.0.0.0/8 and ::1, IPv4-mapped or not. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}
