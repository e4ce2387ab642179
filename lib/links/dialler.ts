/**
 * Dialling peer addresses over a Transport: one attempt at a time per address, redials on a
 * timer, and a backoff (exponential, full jitter) per address. When to dial is the peer
 * table's decision; the dialler keeps the timers, the attempts under way and the backoffs.
 */
import { Backoff } from './backoff.js';
import type { DialHandle, LinkDone, Transport } from './link.js';

interface Attempt {
  handle: DialHandle | null;
}

interface Slot {
  backoff: Backoff | null;
  timer: NodeJS.Timeout | null;
  attempt: Attempt | null;
}

export class Dialler {
  private readonly slots = new Map<string, Slot>();
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly redialBaseMs: number,
    private readonly redialMaxMs: number,
  ) {}

  /** Runs `due` after `delayMs`, replacing any call already scheduled for this address. */
  schedule(address: string, delayMs: number, due: () => void): void {
    if (this.closed) return;
    const slot = this.slot(address);
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = setTimeout(() => {
      slot.timer = null;
      due();
    }, delayMs);
  }

  /** Cancels the scheduled call for this address, if any (an attempt under way goes on). */
  unschedule(address: string): void {
    const slot = this.slots.get(address);
    if (slot?.timer) clearTimeout(slot.timer);
    if (slot) slot.timer = null;
  }

  /** True while an attempt to this address is under way. */
  isDialling(address: string): boolean {
    return this.slots.get(address)?.attempt != null;
  }

  /** The next redial delay for this address (each call backs off further). */
  nextDelay(address: string): number {
    const slot = this.slot(address);
    slot.backoff ??= new Backoff(this.redialBaseMs, this.redialMaxMs);
    return slot.backoff.next();
  }

  /** Starts over with the shortest delays (the address answered, or was announced again). */
  resetBackoff(address: string): void {
    this.slots.get(address)?.backoff?.reset();
  }

  /** Starts an attempt; `done` is told once. Throws when the address cannot be dialled at all. */
  dial(address: string, done: LinkDone): void {
    const slot = this.slot(address);
    const attempt: Attempt = { handle: null };
    slot.attempt = attempt;
    try {
      attempt.handle = this.transport.connect(address, (err, link) => {
        if (slot.attempt === attempt) slot.attempt = null;
        done(err, link);
      });
    } catch (err) {
      slot.attempt = null;
      throw err;
    }
  }

  /** Forgets an address: its timer, its backoff (an attempt under way is left to finish). */
  forget(address: string): void {
    this.unschedule(address);
    const slot = this.slots.get(address);
    if (slot && !slot.attempt) this.slots.delete(address);
  }

  /** Cancels every timer and every attempt under way. */
  close(): void {
    this.closed = true;
    for (const slot of this.slots.values()) {
      if (slot.timer) clearTimeout(slot.timer);
      slot.timer = null;
      slot.attempt?.handle?.cancel();
      slot.attempt = null;
    }
  }

  private slot(address: string): Slot {
    let slot = this.slots.get(address);
    if (!slot) {
      slot = { backoff: null, timer: null, attempt: null };
      this.slots.set(address, slot);
    }
    return slot;
  }
}
