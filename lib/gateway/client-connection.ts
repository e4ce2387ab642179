/**
 * What the server keeps for one client connection: its socket, the rooms it joined (and the
 * name it joined each with), and whether it answered the last ping. Kept small on purpose:
 * an idle connection should cost a few KiB.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Identity } from '../auth/index.js';
import { CloseCode } from '../errors.js';
import type { WriteCoalescer } from './write-coalescer.js';

const TEXT = { binary: false } as const;

/** Limits and helpers shared by every connection of a gateway (one object, not one per connection). */
export interface ConnectionLimits {
  /** Soft limit: over it, the client is behind; behind for longer than writeDeadlineMs, it is cut. */
  maxBufferBytes: number;
  writeDeadlineMs: number;
  /** Hard limit: over it, the client is cut at once. */
  hardBufferBytes: number;
  ratePerSec: number;
  burst: number;
  coalescer: WriteCoalescer;
}

export class ClientConnection {
  /** room → the user name this connection joined it with. */
  readonly rooms = new Map<string, string>();
  /** AUTH=jwt: who the token (verified at the upgrade, or by a refresh) says the client is; null without auth. */
  identity: Identity | null = null;
  /** AUTH=jwt: closes the connection when its token expires (see client-auth.ts). */
  expiry: NodeJS.Timeout | null = null;
  /** Cleared on each heartbeat, set again by the pong. */
  isAlive = true;
  /** Token bucket (inline, to keep an idle connection small). */
  private tokens: number;
  private refilledAt = Date.now();
  /** Frames refused in a row by the rate limit. */
  strikes = 0;
  /** New conversations this connection created (MAX_NEW_CONVERSATIONS_PER_CONNECTION). */
  created = 0;
  private cut = false;
  /** When the client fell behind (over the soft limit); 0 while it keeps up. */
  private behindSince = 0;

  constructor(
    readonly id: number,
    readonly socket: WebSocket,
    /** The TCP socket under `socket` (the one the upgrade came on). */
    private readonly raw: Duplex,
    private readonly limits: ConnectionLimits,
  ) {
    this.tokens = limits.burst;
  }

  /** The client's address (for per-address limits): read when needed, not kept by every connection. */
  get address(): string {
    return (this.raw as Socket).remoteAddress ?? 'unknown';
  }

  /** Takes one token for an incoming frame; false when the connection is over its rate. */
  takeToken(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.limits.burst, this.tokens + ((now - this.refilledAt) * this.limits.ratePerSec) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Sends a text message (a reply to this connection only). */
  send(payload: Buffer): void {
    if (this.socket.readyState !== this.socket.OPEN || this.overBuffer()) return;
    this.socket.send(payload, TEXT);
    // A big reply (a resume, a member list) is checked at once, not at the next write.
    if (payload.length > this.limits.maxBufferBytes) this.overBuffer();
  }

  /**
   * Writes a complete text frame built once for all recipients (see text-frame.ts).
   * Safe beside ws's own writes: without per-message compression ws writes every frame to
   * the socket at once, in call order, so frames never interleave.
   */
  sendFrame(frame: Buffer, payload: Buffer): void {
    if (this.socket.readyState !== this.socket.OPEN || this.overBuffer()) return;
    // A connection that negotiated compression needs ws to compress for it.
    if (this.compressed) this.socket.send(payload, TEXT);
    else this.limits.coalescer.write(this.raw, frame);
  }

  /**
   * A client that does not read is cut instead of growing our memory, as NATS does with slow
   * consumers: over the soft limit it is behind, and if it stays behind past the write
   * deadline, or passes the hard limit, it is closed (1013) and nothing more is queued for it.
   * A reading client that only falls behind for a moment (a burst) is left alone.
   */
  private overBuffer(): boolean {
    if (this.cut) return true;
    // bufferedAmount counts what sits in the socket (and ws's own queue); the bytes this turn's
    // coalescing holds back are not a sign of a slow reader, so they do not count.
    const unsent = this.socket.bufferedAmount - this.limits.coalescer.heldBytes(this.raw);
    if (unsent <= this.limits.maxBufferBytes) {
      this.behindSince = 0;
      return false;
    }
    const now = Date.now();
    if (this.behindSince === 0) this.behindSince = now;
    if (unsent <= this.limits.hardBufferBytes && now - this.behindSince <= this.limits.writeDeadlineMs) return false;
    this.cutAsSlowConsumer('slow consumer: send buffer full');
    return true;
  }

  /** Bytes written to this client and not yet sent (the socket's and ws's queues). */
  get unsentBytes(): number {
    return this.socket.bufferedAmount;
  }

  /** Closes the connection with 1013 and queues nothing more for it. */
  cutAsSlowConsumer(reason: string): void {
    if (this.cut) return;
    this.cut = true;
    this.socket.close(CloseCode.TryAgainLater, reason);
    // It is not reading, so it will not answer the close handshake either.
    setTimeout(() => this.socket.terminate(), 1000).unref();
  }

  private get compressed(): boolean {
    return this.socket.extensions !== '';
  }
}
