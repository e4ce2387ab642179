/**
 * What the server keeps for one client connection: its socket, the rooms it joined (and the
 * name it joined each with), and whether it answered the last ping. Kept small on purpose:
 * an idle connection should cost a few KiB.
 */
import type { WebSocket } from 'ws';

export class ClientConnection {
  /** room → the user name this connection joined it with. */
  readonly rooms = new Map<string, string>();
  /** Cleared on each heartbeat, set again by the pong. */
  isAlive = true;

  constructor(
    readonly id: number,
    readonly socket: WebSocket,
  ) {}

  /** Sends a text frame that was encoded once for every recipient. */
  send(frame: Buffer): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame, { binary: false });
  }
}
