/**
 * Holds live deliveries while catch-up with a peer that just linked is under way, so the
 * members here never see a new message before an older one that catch-up is about to bring.
 *
 * Why: when a link comes back after a partition, a live message can cross it a few
 * milliseconds before catch-up delivers an older one (sorting before it) written on the other
 * side. A client that saw the new one and then lost its instance would resume elsewhere with
 * `since` = the new one and never be given the older one. Holding closes that window: from
 * the link-up until the peer's summary has arrived, every room is held; then only the rooms
 * whose digests differ, until the peer's `give` for them is complete. Writes brought by
 * catch-up itself are delivered at once (they are the older ones); what was held follows,
 * in arrival order. A peer that never completes (an older version without the end markers,
 * a slow link) releases its holds after CATCH_UP_HOLD_MS: a delay, never a loss.
 */

/** The longest a peer's catch-up may hold deliveries. */
export const CATCH_UP_HOLD_MS = 2000;

export class CatchUpHold {
  /** Peers whose summary has not fully arrived: every room is held for them. */
  private readonly everything = new Set<string>();
  /** Rooms waiting for a peer's `give`, by room. */
  private readonly rooms = new Map<string, Set<string>>();
  /** Deliveries held, by room, in arrival order, with the id of the write each carries. */
  private readonly queued = new Map<string, Array<{ id: string; payload: Buffer }>>();
  private readonly deadlines = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly deliver: (room: string, payload: Buffer) => void,
    private readonly holdMs = CATCH_UP_HOLD_MS,
  ) {}

  /** Delivers now, or queues while the room is held. `id`: the write's (see heldIds). */
  offer(room: string, payload: Buffer, id: string): void {
    if (!this.isHeld(room)) return this.deliver(room, payload);
    const queue = this.queued.get(room);
    if (queue) queue.push({ id, payload });
    else this.queued.set(room, [{ id, payload }]);
  }

  /**
   * Ids of the writes held for a room: already in the store, not yet delivered. A `joined`
   * reply leaves them out, since they reach the new member live (else it would get them twice).
   */
  heldIds(room: string): Set<string> | null {
    const queue = this.queued.get(room);
    return queue ? new Set(queue.map((q) => q.id)) : null;
  }

  /** A peer linked: hold everything until its summary is complete (or the deadline). */
  linked(peer: string): void {
    this.everything.add(peer);
    const previous = this.deadlines.get(peer);
    if (previous) clearTimeout(previous);
    const timer = setTimeout(() => this.release(peer), this.holdMs);
    timer.unref();
    this.deadlines.set(peer, timer);
  }

  /** The peer's summary differs for `room`: hold it until the peer's give for it is complete. */
  awaiting(peer: string, room: string): void {
    if (!this.deadlines.has(peer)) return; // no catch-up under way with this peer (or it expired)
    const peers = this.rooms.get(room);
    if (peers) peers.add(peer);
    else this.rooms.set(room, new Set([peer]));
  }

  /** The peer's summary is complete: only the rooms awaiting a give stay held. */
  summarised(peer: string): void {
    this.everything.delete(peer);
    if (!this.hasRooms(peer)) this.release(peer);
    else this.flush();
  }

  /** The peer's give for `room` is complete. */
  given(peer: string, room: string): void {
    const peers = this.rooms.get(room);
    if (!peers?.delete(peer)) return;
    if (peers.size === 0) this.rooms.delete(room);
    if (!this.everything.has(peer) && !this.hasRooms(peer)) this.release(peer);
    else this.flush();
  }

  /** Stops holding anything for this peer (its link went down, or its deadline passed). */
  release(peer: string): void {
    const timer = this.deadlines.get(peer);
    if (timer) clearTimeout(timer);
    this.deadlines.delete(peer);
    this.everything.delete(peer);
    for (const [room, peers] of this.rooms) if (peers.delete(peer) && peers.size === 0) this.rooms.delete(room);
    this.flush();
  }

  /** Releases every hold (shutdown). */
  close(): void {
    for (const peer of [...this.deadlines.keys()]) this.release(peer);
  }

  private isHeld(room: string): boolean {
    return this.everything.size > 0 || this.rooms.has(room);
  }

  private hasRooms(peer: string): boolean {
    for (const peers of this.rooms.values()) if (peers.has(peer)) return true;
    return false;
  }

  /** Delivers what is held in rooms no longer held, in the order it came. */
  private flush(): void {
    for (const [room, queue] of this.queued) {
      if (this.isHeld(room)) continue;
      this.queued.delete(room);
      for (const { payload } of queue) this.deliver(room, payload);
    }
  }
}
