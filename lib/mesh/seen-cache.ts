/**
 * Remembers message ids for dedupe, bounded in time and in size.
 *
 * A Map keeps insertion order, and every entry lives for the same TTL, so the oldest
 * entries are always first: pruning walks from the front and stops at the first live
 * entry, which keeps it cheap (the idea of gossipsub's SimpleTimeCache).
 */
export class SeenCache {
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records the id; returns true if it was new, false if it was seen within the TTL. */
  add(id: string): boolean {
    const now = this.now();
    this.prune(now);
    if (this.expiries.has(id)) return false;
    this.expiries.set(id, now + this.ttlMs);
    if (this.expiries.size > this.maxEntries) {
      // Over the size bound: forget the oldest. Its duplicates, if any still come, are long overdue.
      const oldest = this.expiries.keys().next().value as string;
      this.expiries.delete(oldest);
    }
    return true;
  }

  /** Forgets an id (an event that turned out invalid: a valid one with the same id is new). */
  delete(id: string): void {
    this.expiries.delete(id);
  }

  has(id: string): boolean {
    const expiry = this.expiries.get(id);
    return expiry !== undefined && expiry > this.now();
  }

  get size(): number {
    return this.expiries.size;
  }

  private prune(now: number): void {
    for (const [id, expiry] of this.expiries) {
      if (expiry > now) break;
      this.expiries.delete(id);
    }
  }
}
