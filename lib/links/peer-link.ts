/**
 * One established link to a peer over a WebSocket: heartbeat, round-trip time, backpressure,
 * close. The mesh decides what to send; the link only moves frames and watches the peer's health.
 */
import { EventEmitter } from 'node:events';
import type { WebSocket, RawData } from 'ws';
import { CloseCode } from '../errors.js';
import type { Link, LinkEvents, LinkIdentity } from './link.js';

export interface PeerLinkOptions {
  heartbeatMs: number;
  timeoutMs: number;
  maxBufferedBytes: number;
}

export class PeerLink extends EventEmitter<LinkEvents> implements Link {
  readonly id: string;
  readonly incarnation: string;
  readonly address: string;
  readonly dialerId: string;
  readonly direction: 'in' | 'out';
  readonly desk: boolean;
  lastSeen = Date.now();
  rttMs: number | null = null;
  private lastTick = Date.now();
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ws: WebSocket,
    identity: LinkIdentity,
    private readonly options: PeerLinkOptions,
  ) {
    super();
    this.id = identity.id;
    this.incarnation = identity.incarnation;
    this.address = identity.address;
    this.dialerId = identity.dialerId;
    this.direction = identity.direction;
    this.desk = identity.desk === true;
    ws.on('message', this.onMessage);
    ws.on('pong', this.onPong);
    ws.on('close', this.onClose);
    ws.on('error', () => ws.terminate()); // 'close' follows and reports it
    this.timer = setInterval(this.tick, options.heartbeatMs);
    ws.ping(String(Date.now()));
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === this.ws.OPEN;
  }

  /** Sends one frame (text). Cuts the link instead of buffering without bound. */
  send(frame: Buffer): void {
    if (!this.isOpen) return;
    if (this.ws.bufferedAmount + frame.length > this.options.maxBufferedBytes) {
      this.close(CloseCode.SlowPeer, 'peer too slow: send buffer full');
      return;
    }
    this.ws.send(frame, { binary: false });
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.ws.close(code, reason);
    // A peer that does not answer the close handshake is cut a little later.
    setTimeout(() => this.ws.terminate(), 1000).unref();
    this.finish(code, reason);
  }

  private readonly tick = () => {
    const now = Date.now();
    // Timers that fire far too late mean this process was paused (SIGSTOP, a long GC): the
    // peer's frames are still unread in the socket, so do not blame the peer for our sleep.
    if (now - this.lastTick > this.options.heartbeatMs * 3) this.lastSeen = now;
    this.lastTick = now;
    if (now - this.lastSeen > this.options.timeoutMs) {
      this.ws.terminate();
      this.finish(CloseCode.HeartbeatTimeout, `no sign of life for ${now - this.lastSeen} ms`);
      return;
    }
    this.ws.ping(String(now));
  };

  private readonly onMessage = (data: RawData, isBinary: boolean) => {
    this.lastSeen = Date.now();
    // Frames still arriving on a link we are closing (a duplicate losing the tie) are delivered:
    // the peer sent them before it learned, and dedupe drops any copy.
    if (isBinary) return;
    this.emit('frame', data as Buffer);
  };

  private readonly onPong = (data: Buffer) => {
    const now = Date.now();
    this.lastSeen = now;
    const sent = Number(data.toString());
    if (Number.isFinite(sent) && sent <= now) this.rttMs = now - sent;
  };

  private readonly onClose = (code: number, reason: Buffer) => {
    this.finish(code, reason.toString());
  };

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.emit('close', code, reason);
  }
}
