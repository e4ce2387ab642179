/**
 * With DATA_DIR, live delivery (the sender's echo among them) waits until the write is on
 * disk, in the order of the writes; a write that could not be written is not delivered (the
 * sender gets an error instead). One callback per commit, not per write.
 */
type Offer = (room: string, payload: Buffer, id: string) => void;

export class DurableDeliveries {
  /** Deliveries waiting for their commit, in the order of the writes. */
  private readonly pending: Array<{ room: string; payload: Buffer; id: string; durable: Promise<void> }> = [];

  constructor(private readonly offer: Offer) {}

  /** Delivers now (no disk), or once `durable` resolves. */
  add(room: string, payload: Buffer, id: string, durable: Promise<void> | null): void {
    if (!durable) return this.offer(room, payload, id);
    const last = this.pending[this.pending.length - 1];
    this.pending.push({ room, payload, id, durable });
    if (last?.durable === durable) return;
    durable.then(() => this.settle(durable, true), () => this.settle(durable, false));
  }

  /** Ids of a room's writes waiting for their commit. */
  idsIn(room: string): string[] {
    return this.pending.filter((p) => p.room === room).map((p) => p.id);
  }

  private settle(durable: Promise<void>, ok: boolean): void {
    let n = 0;
    while (n < this.pending.length && this.pending[n].durable === durable) n++;
    for (const entry of this.pending.splice(0, n)) if (ok) this.offer(entry.room, entry.payload, entry.id);
  }
}
