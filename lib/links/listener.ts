/**
 * The accepting side of peer links: completes WebSocket upgrades on the peer path and runs
 * the acceptor's handshake. Only peers that know MESH_SECRET, or any peer on loopback when
 * no secret is set, become links. Before the upgrade, a request from a browser page (one
 * with an Origin header) is refused with 403, and one over MAX_MESH_CONNECTIONS with 503;
 * until the handshake completes a peer's frames are held to PRE_AUTH_MAX_PAYLOAD.
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
import { preAuthMaxPayload, setMaxPayload } from './payload-limit.js';
import { PeerLink, type PeerLinkOptions } from './peer-link.js';

export interface ListenerLimits {
  /** Largest frame on an authenticated link. */
  maxPayloadBytes: number;
  /** Inbound connections at once, handshakes under way and links. */
  maxConnections: number;
}

const REFUSALS = { 403: '403 Forbidden', 503: '503 Service Unavailable' } as const;

export class Listener {
  private readonly wss: WebSocketServer;
  private handler: InboundHandler = () => {};
  private closed = false;
  /** Inbound sockets on the peer path, from the upgrade request until the socket closes. */
  private connections = 0;

  constructor(
    private readonly handshake: HandshakeContext,
    private readonly link: PeerLinkOptions,
    private readonly limits: ListenerLimits,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: preAuthMaxPayload(limits.maxPayloadBytes),
      handleProtocols: (protocols) => (protocols.has(MESH_SUBPROTOCOL) ? MESH_SUBPROTOCOL : false),
    });
  }

  onInbound(handler: InboundHandler): void {
    this.handler = handler;
  }

  /** Inbound peer connections open now (handshakes under way and links). */
  get connectionCount(): number {
    return this.connections;
  }

  /** Completes a WebSocket upgrade on the peer path (MESH_PATH) and starts the handshake. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Peers are servers, never browsers: an Origin means a web page is trying to become a
    // peer (with no MESH_SECRET, any page open in a browser on this host could).
    if (req.headers.origin !== undefined) return refuse(socket, 403);
    if (this.connections >= this.limits.maxConnections) return refuse(socket, 503);
    this.connections++;
    socket.once('close', () => this.connections--);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket.remoteAddress));
  }

  /** Takes an inbound peer connection (already upgraded on MESH_PATH, with the pre-auth frame limit). */
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
      // Authenticated: from the next frame on, the link's own limit.
      setMaxPayload(ws, this.limits.maxPayloadBytes);
      const identity = { id: peer!.id, incarnation: peer!.incarnation, address: `ws://${host}:${peer!.port}`, direction: 'in' as const, dialerId: peer!.id, desk: peer!.desk, batch: peer!.batch };
      this.handler(null, new PeerLink(ws, identity, this.link), host);
    });
  }

  close(): void {
    this.closed = true;
    this.wss.close();
  }
}

/** Refuses an upgrade with an empty HTTP answer, before anything of WebSocket happens. */
function refuse(socket: Duplex, status: keyof typeof REFUSALS): void {
  socket.end(`HTTP/1.1 ${REFUSALS[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
