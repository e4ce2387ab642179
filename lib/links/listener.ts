/**
 * The accepting side of peer links: completes WebSocket upgrades on the peer path and runs
 * the acceptor's handshake. Only peers that know MESH_SECRET, or any peer on loopback when
 * no secret is set, become links.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CloseCode } from '../errors.js';
import { formatHost } from './address.js';
import { isLoopback } from './auth.js';
import { acceptorHandshake, type HandshakeContext } from './handshake.js';
import { MESH_SUBPROTOCOL } from './handshake-frames.js';
import type { InboundHandler } from './link.js';
import { PeerLink, type PeerLinkOptions } from './peer-link.js';

export class Listener {
  private readonly wss: WebSocketServer;
  private handler: InboundHandler = () => {};
  private closed = false;

  constructor(
    private readonly handshake: HandshakeContext,
    private readonly link: PeerLinkOptions,
    maxPayloadBytes: number,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: maxPayloadBytes,
      handleProtocols: (protocols) => (protocols.has(MESH_SUBPROTOCOL) ? MESH_SUBPROTOCOL : false),
    });
  }

  onInbound(handler: InboundHandler): void {
    this.handler = handler;
  }

  /** Completes a WebSocket upgrade on the peer path (MESH_PATH) and starts the handshake. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket.remoteAddress));
  }

  /** Takes an inbound peer connection (already upgraded on MESH_PATH). */
  accept(ws: WebSocket, remoteAddress: string | undefined): void {
    if (this.closed) {
      ws.on('error', () => {}); // the socket still lives until the close completes
      ws.close(CloseCode.GoingAway, 'shutting down');
      return;
    }
    const allowed = this.handshake.secret !== undefined || isLoopback(remoteAddress);
    const host = formatHost(remoteAddress ?? 'unknown');
    acceptorHandshake(ws, this.handshake, allowed, (err, peer) => {
      if (this.closed) {
        if (!err) ws.close(CloseCode.GoingAway, 'node shutting down');
        return;
      }
      if (err) return this.handler(err, undefined, host);
      const identity = { id: peer!.id, incarnation: peer!.incarnation, address: `ws://${host}:${peer!.port}`, direction: 'in' as const, dialerId: peer!.id };
      this.handler(null, new PeerLink(ws, identity, this.link), host);
    });
  }

  close(): void {
    this.closed = true;
    this.wss.close();
  }
}
