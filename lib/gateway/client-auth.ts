/**
 * Client authentication on the WebSocket (AUTH=jwt): the token is verified once, at the
 * upgrade (a missing or bad one is refused with HTTP 401, never a 101 and a close); the
 * Identity stays on the connection; a connection is closed with 4401 when its token expires,
 * unless the client sent a refresh (a new token for the same sub) before.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AuthError, AuthErrorCode, tokenFromUpgrade, type Identity, type RevocationCheck, type TokenVerifier } from '../auth/index.js';
import { ClientErrorCode, CloseCode } from '../errors.js';
import type { Logger } from '../log.js';
import { bearerChallenge, rejectUpgrade } from '../http/responses.js';
import type { ClientConnection } from './client-connection.js';

/** setTimeout's longest delay; a later expiry is checked again then. */
const MAX_TIMER_MS = 2_147_483_647;

export interface AuthGateway {
  readonly counters: { errors: Record<string, number> };
  sendError(conn: ClientConnection, code: string, message: string): void;
}

export class ClientAuth {
  constructor(
    private readonly verifier: TokenVerifier,
    /** The verifier's clock tolerance: a token is honoured as long as the verifier would take it. */
    private readonly clockToleranceSec: number,
    private readonly gateway: AuthGateway,
    private readonly log: Logger,
  ) {}

  /**
   * Verifies the upgrade's token (Authorization: Bearer, or ?token=) and calls `proceed` with
   * the Identity; refuses the upgrade with 401 (503 when the signing keys cannot be fetched).
   */
  admit(req: IncomingMessage, socket: Duplex, proceed: (identity: Identity) => void): void {
    let token: string;
    try {
      token = tokenFromUpgrade(req);
    } catch (err) {
      this.refuse(socket, err);
      return;
    }
    this.verifier.verify(token).then(
      (identity) => {
        if (socket.destroyed) return;
        proceed(identity);
      },
      (err: unknown) => this.refuse(socket, err),
    );
  }

  /** Arms the expiry of the connection's current token: 4401 at exp (plus the clock tolerance). */
  watch(conn: ClientConnection): void {
    this.unwatch(conn);
    const identity = conn.identity;
    if (identity === null) return;
    const delay = (identity.exp + this.clockToleranceSec) * 1000 - Date.now();
    conn.expiry = setTimeout(() => {
      conn.expiry = null;
      if (delay > MAX_TIMER_MS) return this.watch(conn);
      conn.socket.close(CloseCode.TokenExpired, 'token expired');
      // A client that does not answer the close is not kept past its token.
      setTimeout(() => conn.socket.terminate(), 1000).unref();
    }, Math.max(0, Math.min(delay, MAX_TIMER_MS)));
    conn.expiry.unref();
  }

  unwatch(conn: ClientConnection): void {
    if (conn.expiry !== null) clearTimeout(conn.expiry);
    conn.expiry = null;
  }

  /**
   * `{"type":"refresh","token"}`: a new token for the same sub replaces the connection's (its
   * role and rooms apply to later joins); answered `{"type":"refreshed","exp"}` or an error frame.
   */
  refresh(conn: ClientConnection, token: string): void {
    this.verifier.verify(token).then(
      (identity) => {
        if (conn.socket.readyState !== conn.socket.OPEN || conn.identity === null) return;
        if (identity.sub !== conn.identity.sub) {
          this.gateway.sendError(conn, ClientErrorCode.UserMismatch, 'the new token is for another user');
          return;
        }
        conn.identity = identity;
        this.watch(conn);
        conn.send(Buffer.from(JSON.stringify({ type: 'refreshed', exp: identity.exp })));
      },
      (err: unknown) => {
        if (conn.socket.readyState !== conn.socket.OPEN) return;
        const e = asAuthError(err);
        this.gateway.sendError(conn, e.code, e.message);
      },
    );
  }

  /** Closes (4403) every connection whose token `check` now revokes; returns how many. */
  closeRevoked(connections: Iterable<ClientConnection>, check: RevocationCheck): number {
    let closed = 0;
    for (const conn of connections) {
      if (conn.identity === null || !check.isRevoked(conn.identity)) continue;
      this.unwatch(conn);
      conn.socket.close(CloseCode.Revoked, 'token revoked');
      setTimeout(() => conn.socket.terminate(), 1000).unref();
      closed++;
    }
    if (closed > 0) this.log.info('connections closed: token revoked', { closed });
    return closed;
  }

  private refuse(socket: Duplex, err: unknown): void {
    const e = asAuthError(err);
    if (e.code === AuthErrorCode.AuthUnavailable) {
      this.log.warn('client refused: signing keys unavailable', { reason: e.message });
      this.count('auth_unavailable');
      rejectUpgrade(socket, 503);
      return;
    }
    this.count(e.code);
    this.log.debug('client refused: no valid token', { code: e.code, reason: e.message });
    rejectUpgrade(socket, 401, { 'WWW-Authenticate': bearerChallenge(e.code, e.message) });
  }

  private count(code: string): void {
    this.gateway.counters.errors[code] = (this.gateway.counters.errors[code] ?? 0) + 1;
  }
}

function asAuthError(err: unknown): AuthError {
  return err instanceof AuthError ? err : new AuthError(AuthErrorCode.TokenInvalid, 'token could not be verified');
}
