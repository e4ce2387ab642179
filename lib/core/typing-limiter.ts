/**
 * At most one typing indicator per (user, room) per interval. Clients send one per keystroke;
 * each forwarded one costs a frame per member of the room, cluster-wide. Nothing here is
 * kept longer than the interval: entries are in the order they were last taken, so the
 * expired ones are at the front and are dropped as the map is used.
 */

/** The least time between two typing indicators of one user in one room that are forwarded. */
export const TYPING_INTERVAL_MS = 2000;

export class TypingLimiter {
  /** `${user}\0${room}` → when its last indicator was forwarded (insertion order = time order). */
  private readonly last = new Map<string, number>();

  constructor(
    private readonly intervalMs = TYPING_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when this user's indicator in this room may go out now (and counts as the last one). */
  take(user: string, room: string): boolean {
    const now = this.now();
    this.sweep(now);
    const key = `${user}\u0000${room}`;
    if (this.last.has(key)) return false; // still within the interval (the sweep kept it)
    this.last.set(key, now);
    return true;
  }

  /** How many (user, room) pairs are within their interval now. */
  get size(): number {
    return this.last.size;
  }

  private sweep(now: number): void {
    for (const [key, at] of this.last) {
      if (now - at < this.intervalMs) return;
      this.last.delete(key);
    }
  }
}
