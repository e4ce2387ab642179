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
  private corked = new Set<Duplex>();
  private scheduled = false;

  write(socket: Duplex, frame: Buffer): void {
    if (!this.corked.has(socket)) {
      socket.cork();
      this.corked.add(socket);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    }
    socket.write(frame);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const sockets = this.corked;
    this.corked = new Set();
    for (const socket of sockets) socket.uncork();
  };
}
