/**
 * The mesh: the peer table (who we link to, one link per peer) and the router (flood,
 * forward, dedupe, acks) over links from a Transport, behind one object with one set of
 * events. It knows links and envelopes only: what a payload means is the layers above.
 */
import { EventEmitter } from 'node:events';
import hyperid from 'hyperid';
import type { Logger } from '../log.js';
import type { Link, Transport } from '../links/link.js';
import { CloseCode } from '../errors.js';
import { Adverts } from './adverts.js';
import { decodeEnvelope, type PresenceMeta } from './envelope.js';
import { InvalidFrames } from './invalid-frames.js';
import type { PeerView } from './peer-status.js';
import { PeerTable, type PeerStatus, type PeerTableEvents, type PeerTableOptions } from './peer-table.js';
import { Router, type RouterEvents, type RouterOptions, type WriteAcks } from './router.js';

export type { PeerState, PeerStatus } from './peer-table.js';
export type { NodeLoad, PeerView } from './peer-status.js';

export type MeshOptions = PeerTableOptions & RouterOptions;

export type MeshEvents = RouterEvents & PeerTableEvents;

export class Mesh extends EventEmitter<MeshEvents> {
  private readonly peers: PeerTable;
  private readonly router: Router;
  private readonly newId = hyperid({ urlSafe: true });
  private readonly invalid: InvalidFrames;
  private closed = false;

  constructor(
    options: MeshOptions,
    transport: Transport,
    log: Logger,
  ) {
    super();
    this.peers = new PeerTable(options, transport, this, { frame: (from, data) => this.onFrame(from, data), closed: (link) => this.router.linkClosed(link) }, log);
    this.router = new Router(options, this.peers, this);
    this.invalid = new InvalidFrames(log);
  }

  /**
   * Acks of peer writes wait for this promise, when it gives one (the instance's disk
   * commit of what it applied): a peer's ack means the write is stored here.
   */
  set ackAfter(gate: (() => Promise<void> | null) | null) {
    this.router.ackAfter = gate;
  }

  /** Counters for /health: room events and writes received, duplicates dropped, forwarded, invalid frames. */
  get counters(): Router['counters'] {
    return this.router.counters;
  }

  /** A fresh, unique message id (hyperid). */
  nextId(): string {
    return this.newId();
  }

  /** The ids of the peers linked now. */
  linkedPeers(): string[] {
    return [...this.peers.links()].map((link) => link.id);
  }

  /** Nodes this node can reach: its linked peers and the peers they say they are linked to. */
  reachableNodes(): Set<string> {
    return this.peers.reachableNodes();
  }

  /** Asks the mesh to keep a link to this address; `source` names who asked (static, mdns...). */
  addTarget(address: string, source: string): void {
    this.peers.addTarget(address, source);
  }

  /** Withdraws a source's wish to link to this address (for example an mDNS goodbye). */
  removeTarget(address: string, source: string): void {
    this.peers.removeTarget(address, source);
  }

  /** Sends a room event, born on this node, to every peer (see Router.publish); `deskOnly`: only to peers that announced `desk` (typing). */
  publish(room: string, id: string, payload: Buffer, presence?: PresenceMeta, deskOnly = false): void {
    this.router.publish(room, id, payload, presence, deskOnly);
  }

  /** Sends a typing event, born on this node, towards the nodes with members in its room (see Router.publishTyping). */
  publishTyping(room: string, id: string, payload: Buffer, nodes: ReadonlySet<string>): void {
    this.router.publishTyping(room, id, payload, nodes);
  }

  /** Sends a store write, born on this node, to every peer (see Router.publishWrite). */
  publishWrite(room: string, id: string, payload: Buffer, ackTimeoutMs: number | null, deskOnly = false): Promise<WriteAcks> {
    return this.router.publishWrite(room, id, payload, ackTimeoutMs, deskOnly);
  }

  /** True when the linked peer announced `desk` in the handshake (DESK_FEATURE): it takes the desk's writes and typing. */
  speaksDesk(peerId: string): boolean {
    return this.peers.supportsDesk(peerId);
  }

  /** Sends a catch-up frame to one peer. */
  sendSync(peerId: string, payload: Buffer): boolean {
    return this.router.sendSync(peerId, payload);
  }

  /**
   * A frame from this peer failed validation (`what` says how, for the log): it is counted
   * and dropped; a `room` or `write` event reported while its handlers run is neither
   * acknowledged nor forwarded. A peer that sends too many is cut with 4007 (invalid-frames.ts).
   */
  reportInvalid(peerId: string, what: string): void {
    this.invalidFrom(this.peers.linkTo(peerId) ?? null, peerId, what);
  }

  /** The peer table for /health. */
  status(): PeerStatus[] {
    return this.peers.status();
  }

  /** The peer table with each linked peer's clock offset, load and advertised links (for /mesh/state). */
  view(): PeerView[] {
    return this.peers.status().map((row) => {
      const link = row.state === 'up' && row.id !== null ? this.peers.linkTo(row.id) : undefined;
      const linked = link ? this.peers.linkedTo(link.id) : undefined;
      return { ...row, clockOffsetMs: link?.clockOffsetMs ?? null, load: link?.peerLoad ?? null, linkedTo: linked ? [...linked] : null };
    });
  }

  /** Closes every link (telling peers we are going away) and stops all dialling. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const waits = this.peers.close();
    this.router.close();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([Promise.all(waits).then(() => undefined), deadline]);
  }

  private onFrame(from: Link, data: Buffer): void {
    const envelope = decodeEnvelope(data);
    if (!envelope) return this.invalidFrom(from, from.id, `malformed envelope (${data.length} bytes)`);
    if (envelope.header.t !== 'links') return this.router.onEnvelope(from, envelope.header, envelope.payload);
    // Checked here too (the peer table only logs a bad one) so that it is counted.
    if (!Adverts.decode(envelope.payload)) return this.invalidFrom(from, from.id, 'links advertisement');
    this.peers.onAdvert(from, envelope.payload);
  }

  private invalidFrom(link: Link | null, peerId: string, what: string): void {
    this.router.counters.invalid++;
    this.router.reject();
    if (this.invalid.report(peerId, what)) link?.close(CloseCode.InvalidFrames, 'too many invalid frames');
  }
}
