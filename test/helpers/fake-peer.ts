/**
 * A fake peer for hostile-peer tests: dials an instance's /_mesh, completes the handshake
 * (without MESH_SECRET, from loopback, or with a given secret; the current handshake, or the
 * previous one with `oldProtocol`), then sends whatever envelopes
 * a test wants, valid or not, and records what it receives.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import { proofFor } from '../../lib/links/auth.js';
import { BATCH_FEATURE, DESK_FEATURE, DIALER_FIRST, PEER_PROTOCOL_VERSION } from '../../lib/links/handshake-frames.js';
import type { Instance } from './instance.js';
import { poll, withTimeout } from './wait.js';

export interface FakePeerOptions {
  id?: string;
  incarnation?: string;
  /** The mesh port the fake claims as its own. */
  port?: number;
  secret?: string;
  version?: number;
  /** Speak the previous handshake (no `df`: the acceptor proves first), as a node not yet upgraded. */
  oldProtocol?: boolean;
  /** Announce DESK_FEATURE (a node that knows the support-desk frames); without it, a node of the version before them. */
  desk?: boolean;
  /** Announce BATCH_FEATURE (a node that takes several envelopes in one frame); without it, one envelope per frame. */
  batch?: boolean;
}

const open = new Set<FakePeer>();

export class FakePeer {
  readonly texts: string[] = [];
  closeCode: number | null = null;
  closeReason = '';
  readonly id: string;

  private constructor(
    readonly ws: WebSocket,
    id: string,
  ) {
    this.id = id;
    ws.on('message', (data: RawData) => this.texts.push(data.toString()));
    ws.on('close', (code: number, reason: Buffer) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
    ws.on('error', () => {});
  }

  /** Dials the instance and completes the handshake; throws if the instance refuses. */
  static async link(instance: Instance, options: FakePeerOptions = {}): Promise<FakePeer> {
    const id = options.id ?? `fake${randomBytes(4).toString('hex')}`;
    const ws = new WebSocket(`${instance.url}/_mesh`, 'chatmesh.v1', { perMessageDeflate: false });
    const peer = new FakePeer(ws, id);
    open.add(peer);
    await withTimeout(once(ws, 'open'), 3000, 'a WebSocket to /_mesh');
    const nonce = randomBytes(18).toString('base64url');
    const df = { ...(options.oldProtocol ? {} : { df: DIALER_FIRST }), ...(options.desk ? { desk: DESK_FEATURE } : {}), ...(options.batch ? { batch: BATCH_FEATURE } : {}) };
    ws.send(JSON.stringify({ t: 'hello', v: options.version ?? PEER_PROTOCOL_VERSION, id, inc: options.incarnation ?? `inc-${id}`, port: options.port ?? 1, nonce, ...df }));
    const welcome = await peer.frame(0);
    if (welcome.t !== 'welcome') throw new Error(`expected a welcome, got ${JSON.stringify(welcome)}`);
    ws.send(JSON.stringify({ t: 'auth', proof: proofFor(options.secret, 'dialer', String(welcome.nonce), id, String(welcome.id)) }));
    const ready = await peer.frame(1);
    if (ready.t !== 'ready') throw new Error(`expected ready, got ${JSON.stringify(ready)}`);
    return peer;
  }

  /** The `index`-th text frame received (parsed as JSON, or the envelope header). */
  async frame(index: number, timeoutMs = 3000): Promise<Record<string, unknown>> {
    await poll(() => this.texts.length > index || this.closeCode !== null, { timeoutMs, intervalMs: 5, what: `frame ${index} from the instance` });
    if (this.texts.length <= index) throw new Error(`closed with ${this.closeCode} (${this.closeReason}) before frame ${index}`);
    const text = this.texts[index];
    const nl = text.indexOf('\n');
    return JSON.parse(nl === -1 ? text : text.slice(0, nl)) as Record<string, unknown>;
  }

  /** Sends an envelope: a JSON header, a newline, the payload. */
  envelope(header: Record<string, unknown>, payload: unknown = ''): void {
    const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(header) + '\n' + body);
  }

  /** Announces a member of `room` on this fake node (a presence join), so the instance counts it among the room's nodes. */
  join(room: string, user: string, conn = 1): void {
    this.envelope({ t: 'room', id: `${this.id}-join-${conn}`, o: this.id, h: 1, r: room, p: { c: conn, v: Date.now() * 1000 } }, { type: 'presence', event: 'join', room, user });
  }

  /** The headers of the envelopes received so far (handshake frames excluded). */
  headers(): Record<string, unknown>[] {
    return this.texts.slice(2).map((text) => {
      const nl = text.indexOf('\n');
      return JSON.parse(nl === -1 ? text : text.slice(0, nl)) as Record<string, unknown>;
    });
  }

  /** Floods a store write as if this fake were its origin. */
  write(room: string, write: Record<string, unknown>, id = String(write.at ?? write.id)): void {
    this.envelope({ t: 'w', id, o: this.id, h: 1, r: room }, write);
  }

  raw(data: string | Buffer): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data);
  }

  waitClose(timeoutMs = 5000): Promise<number> {
    return poll(() => this.closeCode, { timeoutMs, what: 'the instance to close the fake peer' });
  }

  close(): void {
    this.ws.terminate();
    open.delete(this);
  }

  /** Terminates every fake peer still open (afterEach). */
  static closeAll(): void {
    for (const peer of open) peer.ws.terminate();
    open.clear();
  }
}
