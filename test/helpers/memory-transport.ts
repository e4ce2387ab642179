/**
 * An in-memory Transport for unit tests of the mesh (no sockets), in the spirit of
 * hashicorp/memberlist's MockTransport: nodes on one MemoryNetwork reach each other by
 * address (ws://127.0.0.1:<port>), a dial completes on the next turn (the acceptor first, as
 * with the real handshake), and frames arrive in order, one turn after they are sent.
 */
import { EventEmitter } from 'node:events';
import { CloseCode } from '../../lib/errors.js';
import { HandshakeError } from '../../lib/links/handshake.js';
import type { DialHandle, InboundHandler, Link, LinkDone, LinkEvents, LinkIdentity, Transport } from '../../lib/links/link.js';

export class MemoryLink extends EventEmitter<LinkEvents> implements Link {
  readonly id: string;
  readonly incarnation: string;
  readonly address: string;
  readonly dialerId: string;
  readonly direction: 'in' | 'out';
  lastSeen = Date.now();
  rttMs: number | null = null;
  /** Frames sent on this end, in order (for assertions). */
  readonly sent: Buffer[] = [];
  /** While true, frames arriving at this end are dropped (a peer that stopped reading). */
  deaf = false;
  closed = false;
  /** The peer announced `desk` (see handshake-frames.ts DESK_FEATURE). */
  desk: boolean;
  private other!: MemoryLink;

  constructor(identity: LinkIdentity) {
    super();
    this.id = identity.id;
    this.incarnation = identity.incarnation;
    this.address = identity.address;
    this.dialerId = identity.dialerId;
    this.direction = identity.direction;
    this.desk = identity.desk === true;
  }

  /** Two ends of one link: `a` is held by node `b.id`... see MemoryTransport.connect. */
  static pair(a: LinkIdentity, b: LinkIdentity): [MemoryLink, MemoryLink] {
    const x = new MemoryLink(a);
    const y = new MemoryLink(b);
    x.other = y;
    y.other = x;
    return [x, y];
  }

  send(frame: Buffer): void {
    if (this.closed) return;
    this.sent.push(frame);
    setImmediate(() => this.other.receive(frame));
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.finish(code, reason);
    setImmediate(() => this.other.finish(code, reason));
  }

  /** The link drops without a close handshake (the peer vanished): both ends see 1006. */
  cut(): void {
    this.finish(1006, '');
    this.other.finish(1006, '');
  }

  private receive(frame: Buffer): void {
    if (this.closed || this.deaf) return;
    this.lastSeen = Date.now();
    this.emit('frame', frame);
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', code, reason);
  }
}

export class MemoryNetwork {
  readonly nodes = new Map<string, MemoryTransport>();
  /** Connects made while held: they complete on releaseConnects(), in order (a test makes dials meet). */
  private held: Array<() => void> | null = null;

  /** From now on, connects wait for releaseConnects(). */
  holdConnects(): void {
    this.held ??= [];
  }

  /** Connects waiting for releaseConnects(). */
  get heldConnects(): number {
    return this.held?.length ?? 0;
  }

  /** Completes the connects held, and stops holding. */
  releaseConnects(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const complete of held) complete();
  }

  /** Runs a connect's completion in a later turn, or when released while held. */
  later(complete: () => void): void {
    if (this.held) this.held.push(complete);
    else setImmediate(complete);
  }

  /** A node's transport at ws://127.0.0.1:<port>. */
  transport(id: string, port: number, incarnation = `${id}-1`): MemoryTransport {
    const transport = new MemoryTransport(this, id, incarnation, `ws://127.0.0.1:${port}`);
    this.nodes.set(transport.address, transport);
    return transport;
  }
}

export class MemoryTransport implements Transport {
  /** This node's ends of every link it made or took. */
  readonly links: MemoryLink[] = [];
  private handler: InboundHandler = () => {};
  private closed = false;
  /** Whether this node announces `desk` in its handshakes; false plays a node of the previous version. */
  desk = true;

  constructor(
    private readonly network: MemoryNetwork,
    readonly id: string,
    readonly incarnation: string,
    readonly address: string,
  ) {}

  connect(address: string, done: LinkDone): DialHandle {
    let cancelled = false;
    this.network.later(() => {
      if (this.closed) return;
      const target = this.network.nodes.get(address);
      if (cancelled || !target || target.closed) return done(new HandshakeError(CloseCode.HandshakeFailed, 'connect ECONNREFUSED', false));
      if (target.id === this.id) return done(new HandshakeError(CloseCode.Self, 'this address is this node itself', false, { id: target.id }));
      const [out, inbound] = MemoryLink.pair(
        { id: target.id, incarnation: target.incarnation, address, direction: 'out', dialerId: this.id, desk: target.desk },
        { id: this.id, incarnation: this.incarnation, address: this.address, direction: 'in', dialerId: this.id, desk: this.desk },
      );
      this.links.push(out);
      target.links.push(inbound);
      target.handler(null, inbound, '127.0.0.1');
      done(null, out);
    });
    return { cancel: () => void (cancelled = true) };
  }

  onInbound(handler: InboundHandler): void {
    this.handler = handler;
  }

  /** This node's open ends of links to `peerId`. */
  linksTo(peerId: string): MemoryLink[] {
    return this.links.filter((l) => l.id === peerId && !l.closed);
  }

  /** The node vanishes: its links drop, and nobody can dial it any more. */
  vanish(): void {
    this.closed = true;
    for (const link of this.links) link.cut();
  }

  close(): void {
    this.closed = true;
  }
}

/**
 * Partitions on a MemoryNetwork: cuts the links between two nodes and refuses their dials
 * until healed (a network partition between two hosts, in memory).
 */
export class MemoryPartitions {
  private readonly cut = new Set<string>();

  constructor(private readonly network: MemoryNetwork) {
    for (const transport of network.nodes.values()) this.guard(transport);
  }

  split(a: MemoryTransport, b: MemoryTransport): void {
    this.cut.add(key(a.id, b.id));
    for (const link of a.links) if (link.id === b.id && !link.closed) link.cut();
  }

  heal(a: MemoryTransport, b: MemoryTransport): void {
    this.cut.delete(key(a.id, b.id));
  }

  healAll(): void {
    this.cut.clear();
  }

  private guard(transport: MemoryTransport): void {
    const connect = transport.connect.bind(transport);
    transport.connect = (address, done) => {
      const target = this.network.nodes.get(address);
      if (target && this.cut.has(key(transport.id, target.id))) {
        let cancelled = false;
        setImmediate(() => !cancelled && done(new HandshakeError(CloseCode.HandshakeFailed, 'partitioned', false)));
        return { cancel: () => void (cancelled = true) };
      }
      return connect(address, done);
    };
  }
}

const key = (a: string, b: string) => (a < b ? `${a}|${b}` : `${b}|${a}`);
