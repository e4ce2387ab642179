/**
 * One established link to a peer over a WebSocket: heartbeat, round-trip time, backpressure,
 * close. The mesh decides what to send; the link only moves frames and watches the peer's health.
 */
import { EventEmitter } from 'node:events';
import type { WebSocket, RawData } from 'ws';
import { CloseCode } from '../errors.js';
import { decodeHeartbeat, encodeHeartbeat, type NodeLoad } from './heartbeat.js';
import type { Link, LinkEvents, LinkIdentity } from './link.js';
import { batchFrames, decodeBatch, isBatch } from './frame-batch.js';

/** Clock samples kept: a few heartbeats' worth, so a changed clock shows within seconds. */
const CLOCK_SAMPLES = 8;

function keepLast(samples: number[], value: number): void {
  samples.push(value);
  if (samples.length > CLOCK_SAMPLES) samples.shift();
}

export interface PeerLinkOptions {
  heartbeatMs: number;
  timeoutMs: number;
  maxBufferedBytes: number;
  /** This node's load, sent in every heartbeat ping (heartbeat.ts); without it, the clock alone. */
  load?: () => NodeLoad;
}

export class PeerLink extends EventEmitter<LinkEvents> implements Link {
  readonly id: string;
  readonly incarnation: string;
  readonly address: string;
  readonly dialerId: string;
  readonly direction: 'in' | 'out';
  readonly desk: boolean;
  /** The peer takes batches (frame-batch.ts): the frames one task sends go out together at its end. */
  readonly batch: boolean;
  lastSeen = Date.now();
  rttMs: number | null = null;
  /** The peer's clock minus ours, ms, estimated from its pings and our round trips; null before both. */
  clockOffsetMs: number | null = null;
  /** What the peer's last ping said of its load; null if it does not say (an older node). */
  peerLoad: NodeLoad | null = null;
  /** The last few samples of the peer's clock minus ours at its pings' arrival, and of round trips (see onPing). */
  private readonly pingDelays: number[] = [];
  private readonly rtts: number[] = [];
  private lastTick = Date.now();
  private closed = false;
  /** Frames sent by the running task, not yet written (only to a peer that takes batches). */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
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
    this.batch = identity.batch === true;
    ws.on('message', this.onMessage);
    ws.on('pong', this.onPong);
    ws.on('ping', this.onPing);
    ws.on('close', this.onClose);
    ws.on('error', () => ws.terminate()); // 'close' follows and reports it
    this.timer = setInterval(this.tick, options.heartbeatMs);
    this.ping(Date.now());
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === this.ws.OPEN;
  }

  /**
   * Sends one frame (text). Cuts the link instead of buffering without bound. To a peer that
   * takes batches, the frames the running task sends (a socket read's messages, a PATCH's
   * writes) go out at its end, in one frame: a microtask, not the end of the event-loop turn,
   * so they never wait behind the rest of the turn's work (that doubled the other
   * instance's wake-ups and cost latency at a fixed load, measured).
   */
  send(frame: Buffer): void {
    if (!this.isOpen) return;
    if (this.ws.bufferedAmount + this.queuedBytes + frame.length > this.options.maxBufferedBytes) {
      this.close(CloseCode.SlowPeer, 'peer too slow: send buffer full');
      return;
    }
    if (!this.batch) {
      this.ws.send(frame, { binary: false });
      return;
    }
    if (this.queued.length === 0) queueMicrotask(this.flush);
    this.queued.push(frame);
    this.queuedBytes += frame.length;
  }

  private readonly flush = (): void => {
    const frames = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    if (frames.length === 0 || !this.isOpen) return;
    for (const frame of batchFrames(frames)) this.ws.send(frame, { binary: false });
  };

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.flush(); // what was sent before the close goes first
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
    this.ping(now);
  };

  private ping(now: number): void {
    this.ws.ping(encodeHeartbeat(now, this.options.load?.() ?? null));
  }

  private readonly onMessage = (data: RawData, isBinary: boolean) => {
    this.lastSeen = Date.now();
    // Frames still arriving on a link we are closing (a duplicate losing the tie) are delivered:
    // the peer sent them before it learned, and dedupe drops any copy.
    if (isBinary) return;
    const frame = data as Buffer;
    // A malformed batch goes up as it is: the mesh counts it invalid, like any bad frame.
    const frames = isBatch(frame) ? decodeBatch(frame) : null;
    if (frames === null) this.emit('frame', frame);
    else for (const one of frames) this.emit('frame', one);
  };

  private readonly onPong = (data: Buffer) => {
    const now = Date.now();
    this.lastSeen = now;
    const sent = decodeHeartbeat(data)?.sentAt;
    if (sent === undefined || sent > now) return;
    this.rttMs = now - sent;
    keepLast(this.rtts, this.rttMs);
    this.updateOffset();
  };

  /**
   * The peer's ping (ws answers it): its clock then, seen here half a round trip later, gives
   * the offset between the two clocks, the way NTP does with one timestamp fewer. A ping or a
   * pong held up (a busy event loop, a queue) only makes its sample worse, so the best of the
   * last few is kept: the ping that took least, plus half the shortest round trip.
   */
  private readonly onPing = (data: Buffer) => {
    const beat = decodeHeartbeat(data);
    if (!beat) return;
    keepLast(this.pingDelays, beat.sentAt - Date.now());
    this.peerLoad = beat.load;
    this.updateOffset();
  };

  private updateOffset(): void {
    if (this.pingDelays.length === 0 || this.rtts.length === 0) return;
    this.clockOffsetMs = Math.round(Math.max(...this.pingDelays) + Math.min(...this.rtts) / 2);
  }

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
