/**
 * The real transport: peer links over WebSocket, accepted by the Listener and dialled here,
 * each opened by the handshake (handshake.ts) and then carried by a PeerLink.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import type { ChatmeshOptions } from '../config.js';
import { CloseCode } from '../errors.js';
import { dialerHandshake, type HandshakeContext } from './handshake.js';
import { MESH_PATH, MESH_SUBPROTOCOL } from './handshake-frames.js';
import type { DialHandle, InboundHandler, LinkDone, Transport } from './link.js';
import { Listener } from './listener.js';
import { preAuthMaxPayload, setMaxPayload } from './payload-limit.js';
import { PeerLink, type PeerLinkOptions } from './peer-link.js';

export type LinkOptions = Pick<
  ChatmeshOptions,
  'meshSecret' | 'peerHandshakeTimeoutMs' | 'peerHeartbeatMs' | 'peerTimeoutMs' | 'maxPeerPayloadBytes' | 'maxPeerBufferBytes' | 'maxMeshConnections'
> & {
  nodeId: string;
  incarnation: string;
  /** The port this node takes peer links on. */
  meshPort: number;
};

export class WsTransport implements Transport {
  private readonly handshake: HandshakeContext;
  private readonly link: PeerLinkOptions;
  private readonly listener: Listener;
  private closed = false;

  constructor(private readonly options: LinkOptions) {
    this.handshake = {
      nodeId: options.nodeId,
      incarnation: options.incarnation,
      meshPort: options.meshPort,
      secret: options.meshSecret,
      timeoutMs: options.peerHandshakeTimeoutMs,
      ownDials: new Map(),
    };
    this.link = { heartbeatMs: options.peerHeartbeatMs, timeoutMs: options.peerTimeoutMs, maxBufferedBytes: options.maxPeerBufferBytes };
    this.listener = new Listener(this.handshake, this.link, { maxPayloadBytes: options.maxPeerPayloadBytes, maxConnections: options.maxMeshConnections });
  }

  /** Completes a WebSocket upgrade on the peer path (MESH_PATH) and starts the handshake. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.listener.handleUpgrade(req, socket, head);
  }

  /** Takes an inbound peer connection (already upgraded on MESH_PATH). */
  accept(ws: WebSocket, remoteAddress: string | undefined): void {
    this.listener.accept(ws, remoteAddress);
  }

  onInbound(handler: InboundHandler): void {
    this.listener.onInbound(handler);
  }

  connect(address: string, done: LinkDone): DialHandle {
    // Throws on an address ws cannot even parse.
    const ws = new WebSocket(address + MESH_PATH, MESH_SUBPROTOCOL, {
      perMessageDeflate: false,
      // A stranger until the handshake completes: a small limit, raised once it does.
      maxPayload: preAuthMaxPayload(this.options.maxPeerPayloadBytes),
      handshakeTimeout: this.options.peerHandshakeTimeoutMs,
    });
    dialerHandshake(ws, this.handshake, (err, peer) => {
      if (this.closed) {
        if (!err) ws.close(CloseCode.GoingAway, 'node shutting down');
        return;
      }
      if (err) return done(err);
      setMaxPayload(ws, this.options.maxPeerPayloadBytes);
      done(null, new PeerLink(ws, { id: peer!.id, incarnation: peer!.incarnation, address, direction: 'out', dialerId: this.options.nodeId }, this.link));
    });
    return { cancel: () => ws.terminate() };
  }

  close(): void {
    this.closed = true;
    this.listener.close();
  }
}
