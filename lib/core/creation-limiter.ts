/**
 * How many new conversations each client address may create: a token bucket per address
 * (`perMinute` tokens a minute, bursts up to `perMinute`), shared by REST creates and by
 * joins of a room that does not exist. Without it one client could fill MAX_CONVERSATIONS
 * with empty rooms in a second.
 *
 * The table of addresses is bounded: when it is full, the addresses whose bucket is full
 * again (idle ones) are forgotten first, then the oldest. Behind a reverse proxy every
 * client has the proxy's address: raise NEW_CONVERSATIONS_PER_MIN there.
 */
export class CreationLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly maxAddresses = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one creation for `address`: 0 when allowed, else the ms to wait before one is. */
  take(address: string): number {
    const now = this.now();
    let bucket = this.buckets.get(address);
    if (bucket) {
      bucket.tokens = Math.min(this.perMinute, bucket.tokens + ((now - bucket.at) * this.perMinute) / 60_000);
      bucket.at = now;
    } else {
      if (this.buckets.size >= this.maxAddresses) this.forgetSome(now);
      bucket = { tokens: this.perMinute, at: now };
      this.buckets.set(address, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) * 60_000) / this.perMinute);
  }

  private forgetSome(now: number): void {
    for (const [address, b] of this.buckets) {
      if (b.tokens + ((now - b.at) * this.perMinute) / 60_000 >= this.perMinute) this.buckets.delete(address);
    }
    // Still full: forget the oldest tenth (insertion order), never the whole table at once.
    if (this.buckets.size >= this.maxAddresses) {
      let n = Math.ceil(this.maxAddresses / 10);
      for (const address of this.buckets.keys()) {
        if (n-- <= 0) break;
        this.buckets.delete(address);
      }
    }
  }
}
