/**
 * The peer table: every peer address this node knows, its state (connecting, up, down,
 * rejected) and its link; exactly one active link per peer node (the duplicate-link
 * tie-break); redials through the Dialler; and the links advertisements, which tell each
 * peer which nodes this one is linked to (the router skips forwarding to those).
 */
import type { EventEmitter } from 'node:events';
import type { ChatmeshOptions } from '../config.js';
import { CloseCode } from '../errors.js';
import type { Logger } from '../log.js';
import { Dialler } from '../links/dialler.js';
import type { HandshakeError } from '../links/handshake.js';
import type { Link, Transport } from '../links/link.js';
import { Adverts } from './adverts.js';
import { onHandshakeFailed, type FailureTarget } from './handshake-failures.js';
import { PeerRows } from './peer-rows.js';
import { setState, statusRow, type PeerEntry, type PeerStatus } from './peer-status.js';
import { Retired, idInUse, tieBreak } from './tie-break.js';

export type { PeerState, PeerStatus } from './peer-status.js';

export type PeerTableOptions = Pick<ChatmeshOptions, 'peerTimeoutMs' | 'redialBaseMs' | 'redialMaxMs' | 'rejectedRetryMs'> & { nodeId: string };

export interface PeerTableEvents {
  'peer-up': [id: string];
  'peer-down': [id: string];
  /** The set of reachable nodes may have changed (a link or a peer's advertisement changed). */
  topology: [];
}

/** What the table tells its owner about links: every frame, and every link that closes. */
export interface LinkHooks {
  frame(from: Link, data: Buffer): void;
  closed(link: Link): void;
}

export class PeerTable implements FailureTarget {
  private readonly entries: PeerRows;
  private readonly linksById = new Map<string, Link>();
  private readonly adverts = new Adverts();
  private readonly retired = new Retired();
  private readonly dialler: Dialler;
  private closed = false;

  constructor(
    private readonly options: PeerTableOptions,
    private readonly transport: Transport,
    private readonly events: Pick<EventEmitter<PeerTableEvents>, 'emit'>,
    private readonly hooks: LinkHooks,
    readonly log: Logger,
  ) {
    this.dialler = new Dialler(transport, options.redialBaseMs, options.redialMaxMs);
    this.entries = new PeerRows(options.peerTimeoutMs, log, (address) => this.dialler.isDialling(address), (address) => this.forget(address));
    transport.onInbound((err, link, host) => (err ? this.onHandshakeFailed(err, host, null) : this.attach(link!)));
  }

  /** Number of linked peers. */
  get size(): number {
    return this.linksById.size;
  }

  /** The active link of every linked peer. */
  links(): IterableIterator<Link> {
    return this.linksById.values();
  }

  /** The active link to a node, if linked. */
  linkTo(id: string): Link | undefined {
    return this.linksById.get(id);
  }

  /** Whether a linked peer announced DESK_FEATURE (false for a peer of the previous version, or not linked). */
  supportsDesk(peerId: string): boolean {
    return this.linksById.get(peerId)?.desk === true;
  }

  /** The nodes a linked peer said it is linked to (undefined: it has not said). */
  linkedTo(id: string): ReadonlySet<string> | undefined {
    return this.adverts.of(id);
  }

  /** Nodes this node can reach: its linked peers and the peers they say they are linked to. */
  reachableNodes(): Set<string> {
    return this.adverts.reachable(this.linksById, this.options.nodeId);
  }

  /** Asks for a link to this address; `source` names who asked (static, mdns...). */
  addTarget(address: string, source: string): void {
    if (this.closed) return;
    const entry = this.entry(address);
    const isNew = !entry.sources.has(source);
    entry.sources.add(source);
    if (entry.link || this.dialler.isDialling(address)) return;
    // A (re)announced peer is dialled at once: it is most likely up right now.
    if (isNew || entry.state !== 'rejected') {
      this.dialler.resetBackoff(address);
      this.dialSoon(entry, 0);
    }
  }

  /** Withdraws a source's wish to link to this address (for example an mDNS goodbye). */
  removeTarget(address: string, source: string): void {
    const entry = this.entries.get(address);
    if (!entry || !entry.sources.delete(source) || entry.sources.size > 0) return;
    this.dialler.unschedule(address);
    if (!entry.link && !this.dialler.isDialling(address)) this.forget(address);
  }

  /** The table for /health. */
  status(): PeerStatus[] {
    return [...this.entries.values()].map(statusRow);
  }

  /** A peer's `links` advertisement (payload: a JSON array of node ids). */
  onAdvert(from: Link, payload: Buffer): void {
    const ids = Adverts.decode(payload);
    if (!ids) {
      this.log.warn('dropping a malformed links advertisement', { peer: from.id });
      return;
    }
    // Only the active link's advertisement counts (a retired duplicate may still be read).
    if (this.linksById.get(from.id) !== from) return;
    this.adverts.set(from.id, ids);
    this.events.emit('topology');
  }

  /** Closes every link (telling peers we are going away) and stops all dialling; resolves when the links closed. */
  close(): Promise<void>[] {
    if (this.closed) return [];
    this.closed = true;
    this.transport.close();
    this.dialler.close();
    const waits: Promise<void>[] = [];
    for (const link of this.linksById.values()) {
      waits.push(new Promise((resolve) => link.once('close', () => resolve())));
      link.close(CloseCode.GoingAway, 'node shutting down');
    }
    this.retired.closeAll(CloseCode.GoingAway, 'node shutting down');
    this.linksById.clear();
    return waits;
  }

  // entry, forget, dialSoon, nextDelay and rejectedRetryMs: for handshake-failures.ts only.

  get rejectedRetryMs(): number {
    return this.options.rejectedRetryMs;
  }

  nextDelay(address: string): number {
    return this.dialler.nextDelay(address);
  }

  entry(address: string): PeerEntry {
    return this.entries.entry(address);
  }

  forget(address: string): void {
    this.entries.delete(address);
    this.dialler.forget(address);
  }

  dialSoon(entry: PeerEntry, delayMs: number): void {
    if (this.closed || entry.sources.size === 0) return;
    this.dialler.schedule(entry.address, delayMs, () => this.dial(entry));
  }

  private dial(entry: PeerEntry): void {
    if (this.closed || entry.link || this.dialler.isDialling(entry.address) || entry.sources.size === 0) return;
    // Already linked to the node behind this address through another address: nothing to do.
    if (entry.id !== null && this.linksById.has(entry.id)) return;
    try {
      this.dialler.dial(entry.address, (err, link) => (err ? this.onHandshakeFailed(err, null, entry) : this.attach(link!)));
    } catch (err) {
      // An address that cannot even be parsed: show it, and never retry it in a loop.
      setState(entry, 'rejected', `bad peer address: ${(err as Error).message}`);
      this.log.warn('bad peer address', { address: entry.address, error: (err as Error).message });
    }
  }

  private onHandshakeFailed(err: HandshakeError, host: string | null, entry: PeerEntry | null): void {
    if (this.closed) return;
    onHandshakeFailed(this, err, host, entry);
  }

  /** A handshake succeeded: make it the link to that node, unless a better one exists. */
  private attach(link: Link): void {
    const { id, address, direction } = link;
    link.on('frame', (data) => this.hooks.frame(link, data));
    link.on('close', (code, reason) => this.onLinkClosed(link, code, reason));

    const existing = this.linksById.get(id);
    if (existing) {
      switch (tieBreak(existing, link, this.options.peerTimeoutMs)) {
        case 'refuse-new':
          // An impostor, a misconfigured NODE_ID, or a restart before the old link was seen to
          // go: the live link keeps the id, the newcomer is refused (and may retry).
          const reason = idInUse(existing.address, address);
          this.log.warn('peer rejected', { direction, address, peer: id, by: 'us', reason, linkedAt: existing.address });
          link.close(CloseCode.Rejected, reason);
          return;
        case 'replace-old':
          this.log.info('peer restarted with the same id: replacing its old link', { peer: id, silentForMs: Date.now() - existing.lastSeen });
          this.detach(existing);
          existing.close(CloseCode.Replaced, 'replaced by a newer incarnation');
          break;
        case 'retire-old':
          this.retire(existing);
          break;
        case 'retire-new': {
          this.retire(link);
          const alias = this.entries.get(address);
          if (alias && alias !== this.entries.get(existing.address)) {
            alias.id = id;
            setState(alias, 'up', `same node as ${existing.address}`);
          }
          return;
        }
      }
    }

    const entry = this.entries.place(link, (old) => {
      this.detach(old);
      old.close(CloseCode.Replaced, 'another node took over this address');
    });
    this.dialler.unschedule(address);
    entry.id = id;
    entry.link = link;
    this.dialler.resetBackoff(address);
    setState(entry, 'up', undefined);
    this.linksById.set(id, link);
    // A link that replaced a duplicate or an older incarnation is not news: the peer was up.
    if (existing) this.log.debug('peer link replaced', { peer: id, address, direction });
    else this.log.info('peer up', { peer: id, address, direction });
    // Every new active link is announced, replacements included: catch-up runs on each, so
    // nothing sent on a link that lost a tie or belonged to an old incarnation is missed.
    this.events.emit('peer-up', id);
    this.advertiseLinks();
    this.events.emit('topology');
  }

  /** A link that lost the duplicate tie: no longer sent on, still read for a while (see Retired). */
  private retire(link: Link): void {
    this.detach(link);
    this.retired.add(link);
  }

  /** Forgets a link as the active one (its close, when it comes, then changes nothing). */
  private detach(link: Link): void {
    if (this.linksById.get(link.id) === link) this.linksById.delete(link.id);
    const entry = this.entries.of(link);
    if (entry && entry.link === link) entry.link = null;
  }

  private onLinkClosed(link: Link, code: number, reason: string): void {
    const wasActive = this.linksById.get(link.id) === link;
    const entry = this.entries.of(link);
    this.detach(link);
    this.hooks.closed(link);
    if (this.closed || !wasActive) return;
    this.adverts.delete(link.id);
    this.advertiseLinks();
    this.events.emit('topology');
    this.log.warn('peer down', { peer: link.id, address: link.address, code, reason });
    this.events.emit('peer-down', link.id);
    if (entry) {
      entry.lastSeen = link.lastSeen;
      setState(entry, code === CloseCode.Rejected ? 'rejected' : 'down', reason || `closed (${code})`);
      if (entry.sources.size > 0) this.dialSoon(entry, this.dialler.nextDelay(entry.address));
    }
    // Addresses that were aliases of this node now have to be dialled themselves.
    for (const other of this.entries.values()) {
      if (other !== entry && other.id === link.id && !other.link && other.sources.size > 0) {
        setState(other, 'down', 'linked address went down');
        this.dialSoon(other, this.dialler.nextDelay(other.address));
      }
    }
  }

  /** Tells every peer which peers this node is linked to now. */
  private advertiseLinks(): void {
    if (this.closed) return;
    const frame = Adverts.frame(this.linksById.keys());
    for (const link of this.linksById.values()) link.send(frame);
  }
}
