/**
 * Sync frames sent to a peer at a bounded pace: the disk's catch-up may have megabytes to
 * give at once (a conversation of 100,000 messages written while the peer was down), and a
 * link whose send buffer passes MAX_PEER_BUFFER_BYTES is cut as too slow, after which the
 * catch-up would start over. So each peer's frames go out in order, at most `bytesPerTick`
 * per tick of `tickMs`, one peer's queue independent of another's. A peer that is no longer
 * linked loses its queue (the next link-up starts a catch-up of its own).
 */
import type { SyncFrame } from './sync-codec.js';

export interface PacedSendsOptions {
  bytesPerTick: number;
  tickMs: number;
}

export class PacedSends {
  private readonly queues = new Map<string, { frames: Array<{ frame: SyncFrame; bytes: number }>; timer: NodeJS.Timeout | null }>();

  constructor(
    /** Sends one frame; false when the peer is not linked. */
    private readonly send: (peerId: string, frame: SyncFrame) => boolean,
    private readonly options: PacedSendsOptions,
  ) {}

  /** Queues a frame (`bytes`: its size, about) for a peer: it goes out from the next turn on, within the pace. */
  enqueue(peerId: string, frame: SyncFrame, bytes: number): void {
    let queue = this.queues.get(peerId);
    if (!queue) this.queues.set(peerId, (queue = { frames: [], timer: null }));
    queue.frames.push({ frame, bytes });
    if (queue.timer === null) queue.timer = this.later(peerId, 0);
  }

  /** Frames waiting, over every peer (for tests and health). */
  get waiting(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.frames.length;
    return n;
  }

  close(): void {
    for (const q of this.queues.values()) if (q.timer) clearTimeout(q.timer);
    this.queues.clear();
  }

  private pump(peerId: string): void {
    const queue = this.queues.get(peerId);
    if (!queue) return;
    queue.timer = null;
    let budget = this.options.bytesPerTick;
    // The first frame goes whatever its size; then as many as the budget allows.
    while (queue.frames.length > 0 && (budget > 0 || budget === this.options.bytesPerTick)) {
      const { frame, bytes } = queue.frames.shift()!;
      if (!this.send(peerId, frame)) {
        this.queues.delete(peerId);
        return;
      }
      budget -= bytes;
    }
    if (queue.frames.length === 0) {
      this.queues.delete(peerId);
      return;
    }
    queue.timer = this.later(peerId, this.options.tickMs);
  }

  private later(peerId: string, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.pump(peerId), ms);
    timer.unref();
    return timer;
  }
}
