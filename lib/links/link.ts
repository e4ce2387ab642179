/**
 * What the layers above need from a link to a peer, and from the transport that makes them.
 * A link is authenticated and framed: it carries whole text frames (Buffers) to one peer
 * whose identity the handshake established. PeerLink (a WebSocket) is the real one; tests
 * use an in-memory pair (test/helpers/memory-transport.ts), so routing is tested without
 * sockets, as hashicorp/memberlist does with its Transport and MockTransport.
 */
import type { EventEmitter } from 'node:events';
import type { HandshakeError } from './handshake.js';
import type { NodeLoad } from './heartbeat.js';

export interface LinkEvents {
  frame: [data: Buffer];
  close: [code: number, reason: string];
}

export interface LinkIdentity {
  /** The peer's node id. */
  id: string;
  /** The peer's incarnation: a new one each time the peer process starts. */
  incarnation: string;
  /** Canonical address of the peer, ws://host:port. */
  address: string;
  /** Who dialled this link: decides which of two simultaneous links survives. */
  dialerId: string;
  direction: 'in' | 'out';
  /** The peer announced DESK_FEATURE in its hello or welcome (handshake-frames.ts). */
  desk?: boolean;
  /** The peer announced BATCH_FEATURE: it takes several frames in one (frame-batch.ts). */
  batch?: boolean;
}

export interface Link extends LinkIdentity, EventEmitter<LinkEvents> {
  /** When the peer last showed a sign of life, epoch ms. */
  readonly lastSeen: number;
  /** Last measured round-trip time, ms. */
  readonly rttMs: number | null;
  /** The peer's clock minus ours, ms (estimated from its heartbeats); absent or null: unknown. */
  readonly clockOffsetMs?: number | null;
  /** The peer's clients and rooms, as its heartbeats report them; absent or null: not reported. */
  readonly peerLoad?: NodeLoad | null;
  /** Sends one frame. A link that cannot keep up closes itself rather than buffer without bound. */
  send(frame: Buffer): void;
  /** Closes the link; 'close' is emitted once, at once or when the peer answers. */
  close(code: number, reason: string): void;
}

/** A handshake outcome: a link, or why there is none. Reported once. */
export type LinkDone = (err: HandshakeError | null, link?: Link) => void;

/** An inbound handshake's outcome; `host` is where the connection came from (formatted for a URL). */
export type InboundHandler = (err: HandshakeError | null, link: Link | undefined, host: string) => void;

/** A dial under way. */
export interface DialHandle {
  /** Gives up (the outcome then reports a failure, unless the transport is closed). */
  cancel(): void;
}

/** Turns addresses into links, and accepts links from peers. */
export interface Transport {
  /** Starts a dial. Throws when the address cannot be dialled at all (unparseable). */
  connect(address: string, done: LinkDone): DialHandle;
  /** Where inbound links (and inbound handshakes that failed) are reported. */
  onInbound(handler: InboundHandler): void;
  /** Stops accepting and reporting: later outcomes are dropped (sockets closed). */
  close(): void;
}
