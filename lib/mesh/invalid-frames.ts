/**
 * Frames from peers that failed validation: the mesh (a malformed envelope or advertisement)
 * and the layers above (a write, a presence event, a catch-up frame) report them here. Each
 * is counted; the first of a peer in a window is logged as a warning, the rest at debug; and a
 * peer that sends too many within the window is cut (close code 4007). An authenticated peer
 * is trusted with the mesh, not with our memory or our clock: a bug or an attacker that keeps
 * sending garbage is cut rather than read forever, and redials like any peer that dropped.
 */
import type { Logger } from '../log.js';

/**
 * A peer that sends this many invalid frames within INVALID_WINDOW_MS is cut. A healthy peer
 * sends none; an older or newer version sends a few at most (one per frame kind it gets
 * wrong, at link-up); a peer in a loop sends thousands.
 */
export const MAX_INVALID_FRAMES = 50;
export const INVALID_WINDOW_MS = 10_000;

interface Window {
  start: number;
  count: number;
}

export class InvalidFrames {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Counts one invalid frame from a peer; `what` names what was wrong, for the log. Returns
   * true when the peer has now sent too many and its link should be cut.
   */
  report(peerId: string, what: string): boolean {
    const now = this.now();
    let window = this.windows.get(peerId);
    if (!window || now - window.start > INVALID_WINDOW_MS) {
      if (this.windows.size > 256) this.prune(now);
      window = { start: now, count: 0 };
      this.windows.set(peerId, window);
    }
    window.count++;
    if (window.count === 1) this.log.warn('dropping an invalid frame from a peer (more from it within the window are logged at debug)', { peer: peerId, what });
    else this.log.debug('dropping an invalid frame from a peer', { peer: peerId, what, count: window.count });
    if (window.count < MAX_INVALID_FRAMES) return false;
    this.windows.delete(peerId);
    this.log.warn('cutting a peer that sent too many invalid frames', { peer: peerId, frames: window.count, withinMs: now - window.start });
    return true;
  }

  private prune(now: number): void {
    for (const [peer, window] of this.windows) if (now - window.start > INVALID_WINDOW_MS) this.windows.delete(peer);
  }
}
