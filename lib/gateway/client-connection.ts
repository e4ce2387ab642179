/**
 * What the server keeps for one client connection: its socket, the rooms it joined (and the
 * name it joined each with), and whether it answered the last ping. Kept small on purpose:
 * an idle connection should cost a few KiB.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

const TEXT = { binary: false } as const;

export class ClientConnection {
  /** room → the user name this connection joined it with. */
  readonly rooms = new Map<string, string>();
  /** Cleared on each heartbeat, set again by the pong. */
  isAlive = true;

  constructor(
    readonly id: number,
    readonly socket: WebSocket,
    /** The TCP socket under `socket` (the one the upgrade came on). */
    private readonly raw: Duplex,
  ) {}

  /** Sends a text message (a reply to this connection only). */
  send(payload: Buffer): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(payload, TEXT);
  }

  /**
   * Writes a complete text frame built once for all recipients (see text-frame.ts).
   * Safe beside ws's own writes: without per-message compression ws writes every frame to
   * the socket at once, in call order, so frames never interleave.
   */
  sendFrame(frame: Buffer, payload: Buffer): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    // A connection that negotiated compression needs ws to compress for it.
    if (this.compressed) this.socket.send(payload, TEXT);
    else this.raw.write(frame);
  }

  private get compressed(): boolean {
    return this.socket.extensions !== '';
  }
}
