/**
 * The router: floods events born here to every linked peer, and forwards peers' events.
 *
 * A room event or store write published here is sent to every linked peer. A peer that
 * receives it hands it up once (seen-cache) and forwards it to its other links while hops
 * remain, never back on the link it came from, and not to peers the origin said it is
 * linked to (the origin sent it to those itself). In a full mesh one hop reaches everyone;
 * in a partial mesh (a line A–B–C) the hop limit decides how far an event travels. Writes
 * whose origin waits are acknowledged by the peers that got them straight from the origin.
 */
import type { EventEmitter } from 'node:events';
import { MAX_HOP_LIMIT, type ChatmeshOptions } from '../config.js';
import type { Link } from '../links/link.js';
import { encodeEnvelopeHeader, type EnvelopeHeader, type FloodHeader, type PresenceMeta } from './envelope.js';
import { SeenCache } from './seen-cache.js';

export type RouterOptions = Pick<ChatmeshOptions, 'hopLimit' | 'seenTtlMs' | 'seenMax'> & { nodeId: string };

/** The peers the router sends to: one active link per linked node, and their advertisements. */
export interface RouteTable {
  readonly size: number;
  links(): IterableIterator<Link>;
  linkTo(id: string): Link | undefined;
  /** The nodes a peer said it is linked to (undefined: it has not said). */
  linkedTo(id: string): ReadonlySet<string> | undefined;
}

export interface RouterEvents {
  /** A room event to deliver to local members, once per event id (with presence metadata, if any; `from`: the link it came on). */
  room: [room: string, payload: Buffer, origin: string, presence: PresenceMeta | undefined, from: string];
  /**
   * A store write from a peer (`from`: the link it came on; `origin`: the node that made it;
   * `id`: the envelope's id), once per write id; acknowledged after the handlers ran, unless
   * one of them rejected it.
   */
  write: [room: string, payload: Buffer, from: string, origin: string, id: string];
  /** A typing event from a peer, once per event id (`from`: the link it came on). */
  typing: [room: string, payload: Buffer, from: string];
  /** A catch-up frame from one peer (link-local, never forwarded). */
  sync: [peerId: string, payload: Buffer];
}

export interface WriteAcks {
  acked: number;
  expected: number;
}

export class Router {
  /** Counters for /health: room events and writes received, duplicates dropped, forwarded; frames that failed validation (counted by Mesh.reportInvalid). */
  readonly counters = { received: 0, duplicates: 0, forwarded: 0, skippedForwards: 0, invalid: 0 };
  private readonly seen: SeenCache;
  /** The id of the event whose handlers are running, and whether one of them rejected it. */
  private handling: string | null = null;
  private rejected = false;
  /** See Mesh.ackAfter. */
  ackAfter: (() => Promise<void> | null) | null = null;
  /** Writes born here, waiting for the acknowledgements of the peers linked when they were sent. */
  private readonly pendingAcks = new Map<string, { waiting: Set<Link>; done: () => void }>();

  constructor(
    private readonly options: RouterOptions,
    private readonly table: RouteTable,
    private readonly events: Pick<EventEmitter<RouterEvents>, 'emit'>,
  ) {
    this.seen = new SeenCache(options.seenTtlMs, options.seenMax);
  }

  /**
   * Sends a room event, born on this node, to every peer. `payload` is the frame exactly as
   * clients receive it; it is not parsed again anywhere in the mesh.
   */
  publish(room: string, id: string, payload: Buffer, presence?: PresenceMeta, deskOnly = false): void {
    this.flood('room', room, id, payload, false, presence, deskOnly);
  }

  /**
   * Sends a typing event, born on this node, towards `nodes` (those with members in the room):
   * straight to each when all are linked (one hop: nobody forwards it), else flooded with
   * hops. Only ever on links whose peer announced `desk` (a previous version cuts a link
   * that keeps sending it kinds it does not know).
   */
  publishTyping(room: string, id: string, payload: Buffer, nodes: ReadonlySet<string>): void {
    this.seen.add(id);
    if (nodes.size === 0 || this.table.size === 0) return;
    const linked = [...nodes].map((node) => this.table.linkTo(node));
    const direct = linked.every((link) => link !== undefined);
    const header: FloodHeader = { t: 'typing', id, o: this.options.nodeId, h: direct ? 1 : this.options.hopLimit, r: room };
    const frame = Buffer.concat([encodeEnvelopeHeader(header), payload]);
    for (const link of direct ? (linked as Link[]) : this.table.links()) if (link.desk === true) link.send(frame);
  }

  /**
   * Sends a store write, born on this node, to every peer. With `ackTimeoutMs`, resolves
   * once every peer linked now has acknowledged it, or after that time, with how many did;
   * without, peers send no acknowledgement and it resolves at once. Never rejects.
   */
  publishWrite(room: string, id: string, payload: Buffer, ackTimeoutMs: number | null, deskOnly = false): Promise<WriteAcks> {
    const links = this.flood('w', room, id, payload, ackTimeoutMs !== null, undefined, deskOnly);
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
    const link = this.table.linkTo(peerId);
    if (!link) return false;
    link.send(Buffer.concat([encodeEnvelopeHeader({ t: 'sync' }), payload]));
    return true;
  }

  /** An envelope from a peer (anything but a links advertisement). */
  onEnvelope(from: Link, header: EnvelopeHeader, payload: Buffer): void {
    switch (header.t) {
      case 'ack': {
        const pending = this.pendingAcks.get(header.id);
        if (pending && pending.waiting.delete(from) && pending.waiting.size === 0) pending.done();
        return;
      }
      case 'sync':
        this.events.emit('sync', from.id, payload);
        return;
      case 'room':
      case 'w':
      case 'typing':
        this.onFlood(from, header, payload);
    }
  }

  /** Called while a `room`, `typing` or `write` event's handlers run: the event is invalid (see onFlood). */
  reject(): void {
    if (this.handling !== null) this.rejected = true;
  }

  /** A link closed: a peer that is gone will not acknowledge, so stop waiting for it (catch-up repairs it later). */
  linkClosed(link: Link): void {
    for (const pending of [...this.pendingAcks.values()]) {
      if (pending.waiting.delete(link) && pending.waiting.size === 0) pending.done();
    }
  }

  /** Resolves every write still waiting for acknowledgements. */
  close(): void {
    for (const pending of [...this.pendingAcks.values()]) pending.done();
  }

  /** Sends an event born here on every link; returns the links it went on only when acks are awaited. */
  private flood(kind: 'room' | 'w', room: string, id: string, payload: Buffer, ack = false, presence?: PresenceMeta, deskOnly = false): Link[] {
    this.seen.add(id);
    if (this.table.size === 0) return [];
    const header: FloodHeader = { t: kind, id, o: this.options.nodeId, h: this.options.hopLimit, r: room, ...(ack ? { a: 1 as const } : {}), ...(presence ? { p: presence } : {}), ...(deskOnly ? { d: 1 as const } : {}) };
    const frame = Buffer.concat([encodeEnvelopeHeader(header), payload]);
    if (!deskOnly) {
      for (const link of this.table.links()) link.send(frame);
      return ack ? [...this.table.links()] : [];
    }
    const sent: Link[] = [];
    for (const link of this.table.links()) {
      if (link.desk !== true) continue; // a node of the previous protocol would count it invalid
      link.send(frame);
      sent.push(link);
    }
    return ack ? sent : [];
  }

  private onFlood(from: Link, header: FloodHeader, payload: Buffer): void {
    const fromOrigin = from.id === header.o && header.a === 1;
    if (header.o === this.options.nodeId) return;
    this.counters.received++;
    if (!this.seen.add(header.id)) {
      this.counters.duplicates++;
      // Already applied (it came another way first), but the origin still waits for our ack.
      if (header.t === 'w' && fromOrigin) this.sendAck(from, header.id);
      return;
    }
    // The handlers validate what they get and call reject() (through Mesh.reportInvalid) for
    // anything invalid: that is not acknowledged, not forwarded (a peer must not be blamed for
    // what another sent), and its id is forgotten, so a valid event with the same id still counts.
    this.handling = header.id;
    this.rejected = false;
    if (header.t === 'w') this.events.emit('write', header.r, payload, from.id, header.o, header.id);
    else if (header.t === 'typing') this.events.emit('typing', header.r, payload, from.id);
    else this.events.emit('room', header.r, payload, header.o, header.p, from.id);
    this.handling = null;
    if (this.rejected) {
      this.seen.delete(header.id);
      return;
    }
    if (header.t === 'w' && fromOrigin) this.sendAck(from, header.id);
    const hopsLeft = Math.min(header.h, MAX_HOP_LIMIT) - 1;
    if (hopsLeft <= 0 || this.table.size < 2) return;
    // The origin sent the event itself to every peer it is linked to: forwarding to those
    // would only make duplicates. (A peer we know nothing of, we forward to.)
    const originLinks = this.table.linkedTo(header.o);
    let frame: Buffer | null = null;
    for (const link of this.table.links()) {
      if (link === from || link.id === header.o) continue;
      // A desk write (d) or typing (see publishTyping) never goes to a node of the previous protocol.
      if ((header.d === 1 || header.t === 'typing') && link.desk !== true) continue;
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

  private sendAck(link: Link, id: string): void {
    const gate = this.ackAfter?.();
    if (gate) {
      gate.then(() => this.sendAckNow(link, id), () => {}); // not stored: no ack
      return;
    }
    this.sendAckNow(link, id);
  }

  private sendAckNow(link: Link, id: string): void {
    const header: EnvelopeHeader = { t: 'ack', id };
    link.send(encodeEnvelopeHeader(header));
  }
}
