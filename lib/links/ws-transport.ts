/**
 * The real transport: peer links over WebSocket, accepted by the Listener and dialled here,
 * each opened by the handshake (handshake.ts) and then carried by a PeerLink.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import type { ChatmeshOptions } from '../config.js';
import { CloseCode } from '../errors.js';
import type { MeshTls } from '../tls-options.js';
import { HandshakeError, dialerHandshake, type HandshakeContext } from './handshake.js';
import { MESH_PATH, MESH_SUBPROTOCOL } from './handshake-frames.js';
import type { DialHandle, InboundHandler, LinkDone, Transport } from './link.js';
import { Listener } from './listener.js';
import { preAuthMaxPayload, setMaxPayload } from './payload-limit.js';
import type { NodeLoad } from './heartbeat.js';
import { PeerLink, type PeerLinkOptions } from './peer-link.js';

export type LinkOptions = Pick<
  ChatmeshOptions,
  'meshSecret' | 'peerHandshakeTimeoutMs' | 'peerHeartbeatMs' | 'peerTimeoutMs' | 'maxPeerPayloadBytes' | 'maxPeerBufferBytes' | 'maxMeshConnections'
> & {
  nodeId: string;
  incarnation: string;
  /** The port this node takes peer links on. */
  meshPort: number;
  /** This node's clients and rooms, told to peers in each heartbeat. */
  load?: () => NodeLoad;
  /** MESH_TLS_*: dial wss:// showing our certificate, and take only peers whose certificate is from the CA. */
  tls?: MeshTls;
};

/**
 * Errors of a TLS handshake that failed on a certificate (ours refused by the peer, or the
 * peer's not from our CA): a refusal, shown as rejected, not a network failure.
 */
function isTlsRefusal(err: NodeJS.ErrnoException): boolean {
  return /^ERR_SSL_|CERT|UNABLE_TO_|SELF_SIGNED|ERR_TLS_/.test(err.code ?? '') || /alert|certificate/i.test(err.message);
}

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
    this.link = { heartbeatMs: options.peerHeartbeatMs, timeoutMs: options.peerTimeoutMs, maxBufferedBytes: options.maxPeerBufferBytes, load: options.load };
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
    const tls = this.options.tls;
    // Throws on an address ws cannot even parse. With MESH_TLS every peer is dialled over wss://.
    const ws = new WebSocket((tls ? address.replace(/^wss?:/, 'wss:') : address) + MESH_PATH, MESH_SUBPROTOCOL, {
      perMessageDeflate: false,
      // A stranger until the handshake completes: a small limit, raised once it does.
      maxPayload: preAuthMaxPayload(this.options.maxPeerPayloadBytes),
      handshakeTimeout: this.options.peerHandshakeTimeoutMs,
      // Mutual TLS: the CA is the trust boundary (peers are dialled by address, so names are
      // not checked); the HMAC handshake still runs inside.
      ...(tls && { cert: tls.cert, key: tls.key, ca: tls.ca, rejectUnauthorized: true, checkServerIdentity: () => undefined }),
    } as ClientOptions & Pick<ConnectionOptions, 'checkServerIdentity'>);
    let transportError: NodeJS.ErrnoException | null = null;
    ws.once('error', (err) => (transportError = err));
    dialerHandshake(ws, this.handshake, (err, peer) => {
      if (this.closed) {
        if (!err) ws.close(CloseCode.GoingAway, 'node shutting down');
        return;
      }
      if (err && tls && transportError && isTlsRefusal(transportError)) {
        return done(new HandshakeError(CloseCode.Rejected, `TLS: ${transportError.message}`, false));
      }
      if (err) return done(err);
      setMaxPayload(ws, this.options.maxPeerPayloadBytes);
      done(null, new PeerLink(ws, { id: peer!.id, incarnation: peer!.incarnation, address, direction: 'out', dialerId: this.options.nodeId, desk: peer!.desk, batch: peer!.batch }, this.link));
    });
    return { cancel: () => ws.terminate() };
  }

  close(): void {
    this.closed = true;
    this.listener.close();
  }
}
