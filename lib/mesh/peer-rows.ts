/**
 * The rows of the peer table, one per peer address, found by address or by link. A link sits
 * in the row of its address, except an inbound link whose hello claims an address where a
 * live link of another node is: it gets a row of its own (`address#id`), so a claim never
 * evicts the node linked at that address, nor takes its row.
 */
import type { Logger } from '../log.js';
import type { Link } from '../links/link.js';
import { newEntry, type PeerEntry } from './peer-status.js';

/** Peers that are neither dialled nor linked (refused or gone) are listed up to this many. */
const MAX_PASSIVE_ENTRIES = 64;

export class PeerRows {
  private readonly rows = new Map<string, PeerEntry>();
  /** The key of the own row of each link listed under one. */
  private readonly ownRows = new WeakMap<Link, string>();

  constructor(
    private readonly peerTimeoutMs: number,
    private readonly log: Logger,
    /** Is an attempt to this address under way (then its row is not passive)? */
    private readonly isDialling: (address: string) => boolean,
    /** Forgets a row (the table also forgets its dial state). */
    private readonly forget: (address: string) => void,
  ) {}

  get(address: string): PeerEntry | undefined {
    return this.rows.get(address);
  }

  values(): IterableIterator<PeerEntry> {
    return this.rows.values();
  }

  /** The row of an address, made if there is none. */
  entry(address: string): PeerEntry {
    let entry = this.rows.get(address);
    if (!entry) {
      entry = newEntry(address);
      this.rows.set(address, entry);
      this.trimPassive();
    }
    return entry;
  }

  delete(address: string): void {
    this.rows.delete(address);
  }

  /** The row a link was put in (its address's, or its own). */
  of(link: Link): PeerEntry | undefined {
    return this.rows.get(this.ownRows.get(link) ?? link.address);
  }

  /**
   * Puts a new link in its row: its address's, normally. Another node linked there: a link we
   * dialled shows who answers at the address now and takes the row over (as does any link
   * when the old one is silent): `evict` is given the old link. But an inbound link only
   * claims the address (its hello names the port): while the node linked there is alive, the
   * newcomer is listed under a row of its own.
   */
  place(link: Link, evict: (old: Link) => void): PeerEntry {
    const entry = this.entry(link.address);
    const old = entry.link;
    if (old && old !== link) {
      if (link.direction === 'in' && Date.now() - old.lastSeen < this.peerTimeoutMs) {
        this.log.warn('an inbound peer claims the address of a linked node: listed apart', { address: link.address, linked: old.id, peer: link.id });
        const key = ownRowKey(link.address, link.id);
        this.ownRows.set(link, key);
        return this.entry(key);
      }
      this.log.info('a new node took over a peer address', { address: link.address, old: old.id, peer: link.id });
      evict(old);
    }
    // The node is at its address now: a row of its own it had there is not needed any more.
    const own = this.rows.get(ownRowKey(link.address, link.id));
    if (own && own.link === null) this.rows.delete(own.address);
    return entry;
  }

  /** Keeps the number of refused or forgotten inbound peers shown in /health bounded. */
  private trimPassive(): void {
    const passive = [...this.rows.values()].filter((e) => e.sources.size === 0 && !e.link && !this.isDialling(e.address));
    for (let i = 0; i < passive.length - MAX_PASSIVE_ENTRIES; i++) this.forget(passive[i].address);
  }
}

function ownRowKey(address: string, id: string): string {
  return `${address}#${id}`;
}
