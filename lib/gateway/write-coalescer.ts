/**
 * Coalesces writes to client sockets within one turn of the event loop.
 *
 * A busy room sends a recipient several messages per turn (a publisher keeps a few in
 * flight, many publishers share a room). Written one by one, each costs the recipient a
 * syscall. Corking the socket at its first write in a turn and uncorking every corked socket
 * once at the end of the turn (setImmediate) turns those into one writev per recipient per
 * turn, at the cost of holding frames back until the current batch of I/O is handled (well
 * under a millisecond).
 */
import type { Duplex } from 'node:stream';

export class WriteCoalescer {
  /** Sockets corked in this turn, and how many bytes were written to each since. */
  private held = new Map<Duplex, number>();
  private scheduled = false;

  write(socket: Duplex, frame: Buffer): void {
    const before = this.held.get(socket);
    if (before === undefined) {
      socket.cork();
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    }
    this.held.set(socket, (before ?? 0) + frame.length);
    socket.write(frame);
  }

  /** Bytes written to this socket in the current turn and held back until its end. */
  heldBytes(socket: Duplex): number {
    return this.held.get(socket) ?? 0;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const sockets = this.held;
    this.held = new Map();
    for (const socket of sockets.keys()) socket.uncork();
  };
}
