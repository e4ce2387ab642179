/**
 * The mesh: the set of peers, dialling and redialling them, one link per pair, and
 * forwarding room events with dedupe and a hop limit.
 *
 * A room event published here is sent to every linked peer. A peer that receives it hands
 * it to its gateway once (seen-cache) and forwards it to its other links while hops remain,
 * never back on the link it came from. In a full mesh one hop reaches everyone; in a partial
 * mesh (a line A–B–C) the hop limit decides how far an event travels.
 */
import { EventEmitter } from 'node:events';
import hyperid from 'hyperid';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { MAX_HOP_LIMIT } from '../config.js';
import { CloseCode } from '../errors.js';
import type { Logger } from '../log.js';
import { isLoopback } from './auth.js';
import { Backoff } from './backoff.js';
import { HandshakeError, acceptorHandshake, dialerHandshake, type HandshakeContext, type PeerIdentity } from './handshake.js';
import { PeerLink } from './peer-link.js';
import { MESH_PATH, MESH_SUBPROTOCOL, decodeEnvelope, encodeEnvelopeHeader, type EnvelopeHeader, type FloodHeader, type PresenceMeta } from './peer-protocol.js';
import { SeenCache } from './seen-cache.js';

export interface MeshOptions {
  nodeId: string;
  incarnation: string;
  meshPort: number;
  meshSecret: string | undefined;
  hopLimit: number;
  peerHeartbeatMs: number;
  peerTimeoutMs: number;
  peerHandshakeTimeoutMs: number;
  redialBaseMs: number;
  redialMaxMs: number;
  rejectedRetryMs: number;
  maxPeerPayloadBytes: number;
  maxPeerBufferBytes: number;
  seenTtlMs: number;
  seenMax: number;
}

export type PeerState = 'connecting' | 'up' | 'down' | 'rejected';

/** One row of /health's peer list. Times are epoch milliseconds. */
export interface PeerStatus {
  id: string | null;
  address: string;
  state: PeerState;
  since: number;
  lastSeen: number | null;
  rttMs: number | null;
  direction: 'in' | 'out' | null;
  reason?: string;
}

interface PeerEntry {
  address: string;
  id: string | null;
  state: PeerState;
  since: number;
  lastSeen: number | null;
  reason: string | undefined;
  link: PeerLink | null;
  /** Discovery sources that ask us to dial this address; empty for peers that dialled us. */
  sources: Set<string>;
  dialing: WebSocket | null;
  backoff: Backoff;
  timer: NodeJS.Timeout | null;
}

interface MeshEvents {
  /** A room event to deliver to local members, once per event id (with presence metadata, if any). */
  room: [room: string, payload: Buffer, origin: string, presence: PresenceMeta | undefined];
  /** A store write from a peer, once per write id; acknowledged after the handlers ran. */
  write: [room: string, payload: Buffer];
  /** A catch-up frame from one peer (link-local, never forwarded). */
  sync: [peerId: string, payload: Buffer];
  'peer-up': [id: string];
  'peer-down': [id: string];
  /** The set of reachable nodes may have changed (a link or a peer's advertisement changed). */
  topology: [];
}

/** How long a link that lost the duplicate tie stays open for reading (see retire). */
const DUPLICATE_GRACE_MS = 2000;

/** Peers that are neither dialled nor linked (refused or gone) are listed up to this many. */
const MAX_PASSIVE_ENTRIES = 64;

export class Mesh extends EventEmitter<MeshEvents> {
  private readonly entries = new Map<string, PeerEntry>();
  private readonly linksById = new Map<string, PeerLink>();
  private readonly seen: SeenCache;
  private readonly newId = hyperid({ urlSafe: true });
  private readonly handshake: HandshakeContext;
  private readonly wss: WebSocketServer;
  /** Writes born here, waiting for the acknowledgements of the peers linked when they were sent. */
  /** What each linked peer said it is linked to (its `links` advertisement). */
  private readonly peerLinks = new Map<string, Set<string>>();
  /** Counters for /health: room events and writes received, duplicates dropped, forwarded. */
  readonly counters = { received: 0, duplicates: 0, forwarded: 0, skippedForwards: 0 };
  /** Links that lost a duplicate tie, still read until they close (see retire). */
  private readonly retired = new Set<PeerLink>();
  private readonly pendingAcks = new Map<string, { waiting: Set<PeerLink>; done: () => void }>();
  private closed = false;

  constructor(
    private readonly options: MeshOptions,
    private readonly log: Logger,
  ) {
    super();
    this.seen = new SeenCache(options.seenTtlMs, options.seenMax);
    this.handshake = {
      nodeId: options.nodeId,
      incarnation: options.incarnation,
      meshPort: options.meshPort,
      secret: options.meshSecret,
      timeoutMs: options.peerHandshakeTimeoutMs,
    };
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: options.maxPeerPayloadBytes,
      handleProtocols: (protocols) => (protocols.has(MESH_SUBPROTOCOL) ? MESH_SUBPROTOCOL : false),
    });
  }

  /** Completes a WebSocket upgrade on the peer path (MESH_PATH) and starts the handshake. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket.remoteAddress));
  }

  /** A fresh, unique message id (hyperid). */
  nextId(): string {
    return this.newId();
  }

  /** Nodes this node can reach: its linked peers and the peers they say they are linked to. */
  reachableNodes(): Set<string> {
    const out = new Set<string>(this.linksById.keys());
    for (const [peer, links] of this.peerLinks) if (this.linksById.has(peer)) for (const id of links) out.add(id);
    out.delete(this.options.nodeId);
    return out;
  }

  /** Asks the mesh to keep a link to this address; `source` names who asked (static, mdns...). */
  addTarget(address: string, source: string): void {
    if (this.closed) return;
    const entry = this.entry(address);
    const isNew = !entry.sources.has(source);
    entry.sources.add(source);
    if (entry.link || entry.dialing) return;
    // A (re)announced peer is dialled at once: it is most likely up right now.
    if (isNew || entry.state !== 'rejected') {
      entry.backoff.reset();
      this.dialSoon(entry, 0);
    }
  }

  /** Withdraws a source's wish to link to this address (for example an mDNS goodbye). */
  removeTarget(address: string, source: string): void {
    const entry = this.entries.get(address);
    if (!entry || !entry.sources.delete(source) || entry.sources.size > 0) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    if (!entry.link && !entry.dialing) this.entries.delete(address);
  }

  /** Takes an inbound peer connection (already upgraded on MESH_PATH). */
  accept(ws: WebSocket, remoteAddress: string | undefined): void {
    if (this.closed) {
      ws.on('error', () => {}); // the socket still lives until the close completes
      ws.close(CloseCode.GoingAway, 'shutting down');
      return;
    }
    const allowed = this.options.meshSecret !== undefined || isLoopback(remoteAddress);
    const host = formatHost(remoteAddress ?? 'unknown');
    acceptorHandshake(ws, this.handshake, allowed, (err, peer) => {
      if (err) {
        this.onHandshakeFailed(err, host, null);
        return;
      }
      this.attach(ws, peer!, `ws://${host}:${peer!.port}`, 'in');
    });
  }

  /**
   * Sends a room event, born on this node, to every peer. `payload` is the frame exactly as
   * clients receive it; it is not parsed again anywhere in the mesh.
   */
  publish(room: string, id: string, payload: Buffer, presence?: PresenceMeta): void {
    this.flood('room', room, id, payload, false, presence);
  }

  /**
   * Sends a store write, born on this node, to every peer. With `ackTimeoutMs`, resolves
   * once every peer linked now has acknowledged it, or after that time, with how many did;
   * without, peers send no acknowledgement and it resolves at once. Never rejects.
   */
  publishWrite(room: string, id: string, payload: Buffer, ackTimeoutMs: number | null): Promise<{ acked: number; expected: number }> {
    const links = this.flood('w', room, id, payload, ackTimeoutMs !== null);
    const expected = links.length;
    if (expected === 0 || ackTimeoutMs === null) return Promise.resolve({ acked: 0, expected: 0 });
    return new Promise((resolve) => {
      const waiting = new Set(links);
      const done = () => {
        clearTimeout(timer);
        this.pendingAcks.delete(id);
        resolve({ acked: expected - waiting.size, expected });
      };
      const timer = setTimeout(done, ackTimeoutMs);
      this.pendingAcks.set(id, { waiting, done });
    });
  }

  /** Sends a catch-up frame to one peer. */
  sendSync(peerId: string, payload: Buffer): boolean {
    const link = this.linksById.get(peerId);
    if (!link) return false;
    link.send(Buffer.concat([encodeEnvelopeHeader({ t: 'sync' }), payload]));
    return true;
  }

  /** Sends an event born here on every link; returns the links it went on only when acks are awaited. */
  private flood(kind: 'room' | 'w', room: string, id: string, payload: Buffer, ack = false, presence?: PresenceMeta): PeerLink[] {
    this.seen.add(id);
    if (this.linksById.size === 0) return [];
    const header: FloodHeader = { t: kind, id, o: this.options.nodeId, h: this.options.hopLimit, r: room, ...(ack ? { a: 1 as const } : {}), ...(presence ? { p: presence } : {}) };
    const frame = Buffer.concat([encodeEnvelopeHeader(header), payload]);
    for (const link of this.linksById.values()) link.send(frame);
    return ack ? [...this.linksById.values()] : [];
  }

  /** The peer table for /health. */
  status(): PeerStatus[] {
    const rows: PeerStatus[] = [];
    for (const entry of this.entries.values()) {
      const link = entry.link;
      rows.push({
        id: entry.id,
        address: entry.address,
        state: entry.state,
        since: entry.since,
        lastSeen: link ? link.lastSeen : entry.lastSeen,
        rttMs: link ? link.rttMs : null,
        direction: link ? link.direction : null,
        ...(entry.reason ? { reason: entry.reason } : {}),
      });
    }
    return rows;
  }

  /** Closes every link (telling peers we are going away) and stops all dialling. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const waits: Promise<void>[] = [];
    for (const entry of this.entries.values()) {
      if (entry.timer) clearTimeout(entry.timer);
      entry.timer = null;
      entry.dialing?.terminate();
      entry.dialing = null;
    }
    for (const link of this.linksById.values()) {
      waits.push(new Promise((resolve) => link.once('close', () => resolve())));
      link.close(CloseCode.GoingAway, 'node shutting down');
    }
    for (const link of this.retired) link.close(CloseCode.GoingAway, 'node shutting down');
    this.linksById.clear();
    for (const pending of [...this.pendingAcks.values()]) pending.done();
    this.wss.close();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([Promise.all(waits).then(() => undefined), deadline]);
  }

  private entry(address: string): PeerEntry {
    let entry = this.entries.get(address);
    if (!entry) {
      entry = {
        address,
        id: null,
        state: 'connecting',
        since: Date.now(),
        lastSeen: null,
        reason: undefined,
        link: null,
        sources: new Set(),
        dialing: null,
        backoff: new Backoff(this.options.redialBaseMs, this.options.redialMaxMs),
        timer: null,
      };
      this.entries.set(address, entry);
      this.trimPassiveEntries();
    }
    return entry;
  }

  private dialSoon(entry: PeerEntry, delayMs: number): void {
    if (this.closed || entry.sources.size === 0) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      this.dial(entry);
    }, delayMs);
  }

  private dial(entry: PeerEntry): void {
    if (this.closed || entry.link || entry.dialing || entry.sources.size === 0) return;
    // Already linked to the node behind this address through another address: nothing to do.
    if (entry.id !== null && this.linksById.has(entry.id)) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(entry.address + MESH_PATH, MESH_SUBPROTOCOL, {
        perMessageDeflate: false,
        maxPayload: this.options.maxPeerPayloadBytes,
        handshakeTimeout: this.options.peerHandshakeTimeoutMs,
      });
    } catch (err) {
      // An address ws cannot even parse: show it, and never retry it in a loop.
      this.setState(entry, 'rejected', `bad peer address: ${(err as Error).message}`);
      this.log.warn('bad peer address', { address: entry.address, error: (err as Error).message });
      return;
    }
    entry.dialing = ws;
    dialerHandshake(ws, this.handshake, (err, peer) => {
      entry.dialing = null;
      if (err) {
        this.onHandshakeFailed(err, null, entry);
        return;
      }
      this.attach(ws, peer!, entry.address, 'out');
    });
  }

  private onHandshakeFailed(err: HandshakeError, host: string | null, entry: PeerEntry | null): void {
    if (this.closed) return;
    const refused = err.closeCode === CloseCode.Rejected || err.closeCode === CloseCode.VersionMismatch;
    if (entry === null) {
      // Inbound. Refusals are shown in /health and logged; other failures are only noise.
      if (!refused || host === null) {
        this.log.debug('inbound peer handshake failed', { from: host, code: err.closeCode, reason: err.message });
        return;
      }
      if (err.claimed?.port === undefined) {
        this.log.warn('peer rejected', { direction: 'in', from: host, by: err.byPeer ? 'peer' : 'us', code: err.closeCode, reason: err.message });
        return;
      }
      const address = `ws://${host}:${err.claimed.port}`;
      const e = this.entry(address);
      if (e.link) return;
      this.log.warn('peer rejected', { direction: 'in', address, peer: err.claimed.id, by: err.byPeer ? 'peer' : 'us', code: err.closeCode, reason: err.message });
      this.setState(e, 'rejected', err.message);
      e.id = err.claimed.id ?? e.id;
      return;
    }
    if (err.closeCode === CloseCode.Self) {
      this.log.info('ignoring a peer address that is this node itself', { address: entry.address });
      if (entry.timer) clearTimeout(entry.timer);
      this.entries.delete(entry.address);
      return;
    }
    if (err.closeCode === CloseCode.DuplicateLink) {
      // The peer dialled us at the same moment and its link won; it is linked.
      return;
    }
    if (entry.link) {
      // The peer's own dial reached us first while ours was still trying: it is linked, and
      // our failed attempt must not mark it down.
      this.log.debug('dial failed, but the peer is linked already', { address: entry.address, reason: err.message });
      return;
    }
    if (refused) {
      // Never a tight loop against a peer that refuses us: log it, show it, retry slowly.
      this.log.warn('peer rejected', {
        direction: 'out',
        address: entry.address,
        peer: err.claimed?.id,
        by: err.byPeer ? 'peer' : 'us',
        code: err.closeCode,
        reason: err.message,
        retryInMs: this.options.rejectedRetryMs,
      });
      entry.id = err.claimed?.id ?? entry.id;
      this.setState(entry, 'rejected', err.message);
      this.dialSoon(entry, this.options.rejectedRetryMs);
      return;
    }
    if (entry.state !== 'rejected') this.setState(entry, entry.id === null ? 'connecting' : 'down', err.message);
    const delay = entry.backoff.next();
    this.log.debug('dial failed', { address: entry.address, reason: err.message, retryInMs: delay });
    this.dialSoon(entry, delay);
  }

  /** A handshake succeeded: make it the link to that node, unless a better one exists. */
  private attach(ws: WebSocket, peer: PeerIdentity, address: string, direction: 'in' | 'out'): void {
    if (this.closed) {
      ws.close(CloseCode.GoingAway, 'node shutting down');
      return;
    }
    const link = new PeerLink(
      ws,
      { id: peer.id, incarnation: peer.incarnation, address, direction, dialerId: direction === 'out' ? this.options.nodeId : peer.id },
      { heartbeatMs: this.options.peerHeartbeatMs, timeoutMs: this.options.peerTimeoutMs, maxBufferedBytes: this.options.maxPeerBufferBytes },
    );
    link.on('frame', (data) => this.onFrame(link, data));
    link.on('close', (code, reason) => this.onLinkClosed(link, code, reason));

    const existing = this.linksById.get(peer.id);
    if (existing) {
      if (existing.incarnation !== link.incarnation && existing.address !== address && Date.now() - existing.lastSeen < this.options.peerTimeoutMs) {
        // Another process claims the id of a node that is linked and alive, from elsewhere:
        // an impostor or a misconfigured NODE_ID. The live link stays; the newcomer is refused.
        this.log.warn('peer rejected', { direction, address, peer: peer.id, by: 'us', reason: 'node id already linked from another address', linkedAt: existing.address });
        link.close(CloseCode.Rejected, 'node id already linked from another address');
        return;
      }
      if (existing.incarnation !== link.incarnation) {
        this.log.info('peer restarted with the same id: replacing its old link', { peer: peer.id });
        this.detach(existing);
        existing.close(CloseCode.Replaced, 'replaced by a newer incarnation');
      } else if (link.dialerId < existing.dialerId) {
        // Both sides dialled at once. Both keep the link dialled by the smaller node id, so
        // they agree without another round trip and exactly one link remains.
        this.retire(existing);
      } else {
        this.retire(link);
        const alias = this.entries.get(address);
        if (alias && alias !== this.entries.get(existing.address)) {
          alias.id = peer.id;
          this.setState(alias, 'up', `same node as ${existing.address}`);
        }
        return;
      }
    }

    const entry = this.entry(address);
    if (entry.link && entry.link !== link) {
      // Another node now answers at this address (a restart with a new id): it replaces the old.
      const old = entry.link;
      this.log.info('a new node took over a peer address', { address, old: old.id, peer: peer.id });
      this.detach(old);
      old.close(CloseCode.Replaced, 'another node took over this address');
    }
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    entry.id = peer.id;
    entry.link = link;
    entry.backoff.reset();
    this.setState(entry, 'up', undefined);
    this.linksById.set(peer.id, link);
    // A link that replaced a duplicate or an older incarnation is not news: the peer was up.
    if (existing) this.log.debug('peer link replaced', { peer: peer.id, address, direction });
    else this.log.info('peer up', { peer: peer.id, address, direction });
    // Every new active link is announced, replacements included: catch-up runs on each, so
    // nothing sent on a link that lost a tie or belonged to an old incarnation is missed.
    this.emit('peer-up', peer.id);
    this.advertiseLinks();
    this.emit('topology');
  }

  /**
   * Stops sending on a link that lost the duplicate tie, but keeps reading it for a while:
   * the peer may still be sending on it until it learns of the winner itself, and closing
   * at once would drop those frames. Dedupe absorbs any copy.
   */
  private retire(link: PeerLink): void {
    this.detach(link);
    this.retired.add(link);
    const timer = setTimeout(() => link.close(CloseCode.DuplicateLink, 'duplicate link'), DUPLICATE_GRACE_MS);
    link.once('close', () => {
      clearTimeout(timer);
      this.retired.delete(link);
    });
  }

  /** Forgets a link as the active one (its close, when it comes, then changes nothing). */
  private detach(link: PeerLink): void {
    if (this.linksById.get(link.id) === link) this.linksById.delete(link.id);
    const entry = this.entries.get(link.address);
    if (entry && entry.link === link) entry.link = null;
  }

  private onLinkClosed(link: PeerLink, code: number, reason: string): void {
    const wasActive = this.linksById.get(link.id) === link;
    const entry = this.entries.get(link.address);
    this.detach(link);
    // A peer that is gone will not acknowledge: stop waiting for it (catch-up repairs it later).
    for (const pending of [...this.pendingAcks.values()]) {
      if (pending.waiting.delete(link) && pending.waiting.size === 0) pending.done();
    }
    if (this.closed || !wasActive) return;
    this.peerLinks.delete(link.id);
    this.advertiseLinks();
    this.emit('topology');
    this.log.warn('peer down', { peer: link.id, address: link.address, code, reason });
    this.emit('peer-down', link.id);
    if (entry) {
      entry.lastSeen = link.lastSeen;
      this.setState(entry, code === CloseCode.Rejected ? 'rejected' : 'down', reason || `closed (${code})`);
      if (entry.sources.size > 0) this.dialSoon(entry, entry.backoff.next());
    }
    // Addresses that were aliases of this node now have to be dialled themselves.
    for (const other of this.entries.values()) {
      if (other !== entry && other.id === link.id && !other.link && other.sources.size > 0) {
        this.setState(other, 'down', 'linked address went down');
        this.dialSoon(other, other.backoff.next());
      }
    }
  }

  private onFrame(from: PeerLink, data: Buffer): void {
    const envelope = decodeEnvelope(data);
    if (!envelope) {
      this.log.warn('dropping a malformed peer frame', { peer: from.id, bytes: data.length });
      return;
    }
    const { header, payload } = envelope;
    switch (header.t) {
      case 'ack': {
        const pending = this.pendingAcks.get(header.id);
        if (pending && pending.waiting.delete(from) && pending.waiting.size === 0) pending.done();
        return;
      }
      case 'sync':
        this.emit('sync', from.id, payload);
        return;
      case 'links':
        this.onLinksAdvert(from, payload);
        return;
      case 'room':
      case 'w':
        this.onFlood(from, header, payload);
    }
  }

  private onFlood(from: PeerLink, header: FloodHeader, payload: Buffer): void {
    const fromOrigin = from.id === header.o && header.a === 1;
    if (header.o === this.options.nodeId) return;
    this.counters.received++;
    if (!this.seen.add(header.id)) {
      this.counters.duplicates++;
      // Already applied (it came another way first), but the origin still waits for our ack.
      if (header.t === 'w' && fromOrigin) this.sendAck(from, header.id);
      return;
    }
    if (header.t === 'w') {
      this.emit('write', header.r, payload);
      if (fromOrigin) this.sendAck(from, header.id);
    } else {
      this.emit('room', header.r, payload, header.o, header.p);
    }
    const hopsLeft = Math.min(header.h, MAX_HOP_LIMIT) - 1;
    if (hopsLeft <= 0 || this.linksById.size < 2) return;
    // The origin sent the event itself to every peer it is linked to: forwarding to those
    // would only make duplicates. (A peer we know nothing of, we forward to.)
    const originLinks = this.peerLinks.get(header.o);
    let frame: Buffer | null = null;
    for (const link of this.linksById.values()) {
      if (link === from || link.id === header.o) continue;
      if (originLinks?.has(link.id)) {
        this.counters.skippedForwards++;
        continue;
      }
      if (!frame) {
        const { a: _ack, ...forwarded } = header; // acknowledgements go to the origin only
        frame = Buffer.concat([encodeEnvelopeHeader({ ...forwarded, h: hopsLeft }), payload]);
      }
      this.counters.forwarded++;
      link.send(frame);
    }
  }

  /** Tells every peer which peers this node is linked to now. */
  private advertiseLinks(): void {
    if (this.closed) return;
    const frame = Buffer.concat([encodeEnvelopeHeader({ t: 'links' }), Buffer.from(JSON.stringify([...this.linksById.keys()]))]);
    for (const link of this.linksById.values()) link.send(frame);
  }

  private onLinksAdvert(from: PeerLink, payload: Buffer): void {
    let ids: unknown;
    try {
      ids = JSON.parse(payload.toString());
    } catch {
      ids = null;
    }
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) {
      this.log.warn('dropping a malformed links advertisement', { peer: from.id });
      return;
    }
    // Only the active link's advertisement counts (a retired duplicate may still be read).
    if (this.linksById.get(from.id) !== from) return;
    this.peerLinks.set(from.id, new Set(ids as string[]));
    this.emit('topology');
  }

  private sendAck(link: PeerLink, id: string): void {
    const header: EnvelopeHeader = { t: 'ack', id };
    link.send(encodeEnvelopeHeader(header));
  }

  private setState(entry: PeerEntry, state: PeerState, reason: string | undefined): void {
    if (entry.state !== state) entry.since = Date.now();
    entry.state = state;
    entry.reason = reason;
  }

  /** Keeps the number of refused or forgotten inbound peers shown in /health bounded. */
  private trimPassiveEntries(): void {
    const passive = [...this.entries.values()].filter((e) => e.sources.size === 0 && !e.link && !e.dialing);
    for (let i = 0; i < passive.length - MAX_PASSIVE_ENTRIES; i++) this.entries.delete(passive[i].address);
  }
}

/** An address as it goes in a URL: IPv4-mapped IPv6 unwrapped, IPv6 in brackets. */
export function formatHost(address: string): string {
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  return plain.includes(':') ? `[${plain}]` : plain;
}
