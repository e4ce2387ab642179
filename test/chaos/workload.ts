/**
 * The campaign's workload: WebSocket clients and REST writers, each driven by a seeded
 * stream of its own, recording everything they see into the history (history.ts).
 *
 * A client joins its rooms as one user, sends a message with a unique text every 100-300 ms
 * to one of them, pings its instance every 500 ms and drops a connection that stays silent
 * for 2.5 s (a paused or cut-off instance), and now and then (every 3-10 s) leaves on its
 * own. Whenever its connection is gone it reconnects to a seeded-random instance and joins
 * every room again with `since` = the newest message (by (ts, id)) it received in that room.
 *
 * A writer, every 150-400 ms, on a seeded-random instance: creates a conversation, posts to
 * one of its conversations or to a WebSocket room, or deletes a message it posted. A 201/204
 * is an acknowledgement; another status is a refusal; no answer within 3 s is unknown.
 */
import { WebSocket } from 'ws';
import { Rng } from './prng.js';
import { compareKeys, type HistoryEvent, type Key } from './history.js';
import { poll } from '../helpers/wait.js';

/** How the workload reaches an instance: its addresses and the incarnation running now. */
export interface Endpoints {
  readonly instances: number;
  wsUrl(slot: number): string;
  httpUrl(slot: number): string;
  incarnation(slot: number): number;
}

export interface WorkloadContext {
  seed: number;
  endpoints: Endpoints;
  record: (e: HistoryEvent) => void;
  now: () => number;
}

const PING_MS = 500;
const SILENT_MS = 2500;
const REQUEST_TIMEOUT_MS = 3000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class ChaosClient {
  readonly user: string;
  /** Connections opened so far (the current one's number). */
  private conn = 0;
  private ws: WebSocket | null = null;
  private slot = -1;
  private incarnation = -1;
  private lastHeard = 0;
  private readonly joined = new Set<string>();
  private readonly newest = new Map<string, Key>();
  private readonly sinceSent = new Map<string, Key | undefined>();
  /** Texts sent on the current connection: their echo on it is the acknowledgement. */
  private sentOnConn = new Set<string>();
  private seq = 0;
  private sending = false;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly connRng: Rng;
  private readonly sendRng: Rng;
  private readonly churnRng: Rng;
  /** Errors the server sent (error frames), by code: should stay empty. */
  readonly errors: Record<string, number> = {};

  constructor(
    readonly index: number,
    readonly rooms: readonly string[],
    private readonly ctx: WorkloadContext,
  ) {
    this.user = `c${index}`;
    this.connRng = Rng.fork(ctx.seed, `client-${index}-conn`);
    this.sendRng = Rng.fork(ctx.seed, `client-${index}-send`);
    this.churnRng = Rng.fork(ctx.seed, `client-${index}-churn`);
  }

  /** Connects (and keeps reconnecting until stop()). */
  start(): void {
    this.connect();
    const ping = setInterval(() => this.checkAlive(), PING_MS);
    this.timers.add(ping);
  }

  /** True once connected and joined to every room. */
  get ready(): boolean {
    return this.ws?.readyState === WebSocket.OPEN && this.rooms.every((r) => this.joined.has(r));
  }

  /** Starts sending messages and leaving now and then. */
  startTraffic(): void {
    this.sending = true;
    this.every(this.sendRng, 100, 300, () => {
      const room = this.sendRng.pick(this.rooms);
      if (!this.sending || this.ws?.readyState !== WebSocket.OPEN || !this.joined.has(room)) return;
      this.send(room, `${this.user}:${room}:${++this.seq}`);
    });
    this.every(this.churnRng, 3000, 10_000, () => {
      if (this.sending && this.ws?.readyState === WebSocket.OPEN) this.drop('churn');
    });
  }

  stopTraffic(): void {
    this.sending = false;
  }

  /**
   * The final barrier: one last message per room, sent once the instance it is connected to
   * has converged, and its echo awaited. Frames on a connection arrive in order, so when the
   * echo is in, so is everything the instance delivered before it. Resolves false when the
   * deadline passes first.
   */
  async barrier(deadline: number): Promise<boolean> {
    for (const room of this.rooms) {
      let attempt = 0;
      for (;;) {
        if (Date.now() > deadline) return false;
        const ok = await poll(() => this.ready, { timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 50, what: `client ${this.user} ready` }).catch(() => false);
        if (!ok) return false;
        const text = `${this.user}:${room}:final:${++attempt}`;
        const conn = this.conn;
        this.send(room, text);
        const echoed = await poll(() => this.echoes.has(`${conn}\u0000${text}`), { timeoutMs: 3000, intervalMs: 25, what: 'final echo' }).catch(() => false);
        if (echoed) break;
      }
    }
    return true;
  }

  /** Stops for good: no reconnect. */
  stop(): void {
    this.stopped = true;
    this.sending = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.ws) this.drop('end');
  }

  private readonly echoes = new Set<string>();

  private every(rng: Rng, lo: number, hi: number, fn: () => void): void {
    const tick = () => {
      if (this.stopped) return;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (this.stopped) return;
        fn();
        tick();
      }, rng.range(lo, hi));
      this.timers.add(timer);
    };
    tick();
  }

  private send(room: string, text: string): void {
    this.sentOnConn.add(text);
    this.ws!.send(JSON.stringify({ type: 'message', room, text }));
  }

  private connect(): void {
    if (this.stopped) return;
    const slot = this.connRng.int(this.ctx.endpoints.instances);
    const incarnation = this.ctx.endpoints.incarnation(slot);
    const ws = new WebSocket(this.ctx.endpoints.wsUrl(slot), { perMessageDeflate: false, handshakeTimeout: 2000 });
    this.ws = ws;
    let opened = false;
    ws.on('open', () => {
      if (this.ws !== ws) return;
      opened = true;
      this.conn++;
      this.slot = slot;
      this.incarnation = incarnation;
      this.lastHeard = Date.now();
      this.sentOnConn = new Set();
      this.joined.clear();
      this.ctx.record({ type: 'ws-open', t: this.ctx.now(), client: this.index, conn: this.conn, slot, incarnation });
      for (const room of this.rooms) {
        const since = this.newest.get(room);
        this.sinceSent.set(room, since);
        ws.send(JSON.stringify({ type: 'join', room, user: this.user, ...(since ? { since: since.id } : {}) }));
      }
    });
    ws.on('message', (data) => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      this.onFrame(data.toString());
    });
    ws.on('pong', () => {
      if (this.ws === ws) this.lastHeard = Date.now();
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.joined.clear();
      if (opened) this.ctx.record({ type: 'ws-close', t: this.ctx.now(), client: this.index, conn: this.conn, why: 'closed' });
      this.reconnectLater();
    });
  }

  private reconnectLater(): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.connect();
    }, this.connRng.range(100, 500));
    this.timers.add(timer);
  }

  /** Closes the connection from this side (and reconnects unless stopped). */
  private drop(why: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.joined.clear();
    if (ws.readyState === WebSocket.OPEN) this.ctx.record({ type: 'ws-close', t: this.ctx.now(), client: this.index, conn: this.conn, why });
    ws.terminate();
    this.reconnectLater();
  }

  private checkAlive(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > SILENT_MS) {
      this.drop('silent');
      return;
    }
    ws.ping();
  }

  private onFrame(raw: string): void {
    let f: Record<string, unknown>;
    try {
      f = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      this.errors.bad_frame = (this.errors.bad_frame ?? 0) + 1;
      return;
    }
    const at = { t: this.ctx.now(), client: this.index, conn: this.conn, slot: this.slot, incarnation: this.incarnation };
    switch (f.type) {
      case 'joined': {
        const room = f.room as string;
        const history = ((f.history as Array<{ id: string; ts: number }>) ?? []).map((m) => ({ ts: m.ts, id: m.id }));
        const since = this.sinceSent.get(room);
        this.ctx.record({ type: 'ws-joined', ...at, room, history, ...(since ? { since, gap: f.gap === true } : {}) });
        for (const k of history) this.noteNewest(room, k);
        this.joined.add(room);
        return;
      }
      case 'message': {
        const room = f.room as string;
        const key = { ts: f.ts as number, id: f.id as string };
        const echo = f.user === this.user && this.sentOnConn.has(f.text as string);
        if (echo) this.echoes.add(`${this.conn}\u0000${f.text as string}`);
        this.ctx.record({ type: 'ws-message', ...at, room, key, user: f.user as string, echo });
        this.noteNewest(room, key);
        return;
      }
      case 'deleted':
        this.ctx.record({ type: 'ws-deleted', ...at, room: f.room as string, id: f.id as string });
        return;
      case 'error':
        this.errors[f.code as string] = (this.errors[f.code as string] ?? 0) + 1;
        return;
      default:
        return; // presence, members
    }
  }

  private noteNewest(room: string, key: Key): void {
    const cur = this.newest.get(room);
    if (!cur || compareKeys(key, cur) > 0) this.newest.set(room, key);
  }
}

export class RestWriter {
  /** Conversations this writer created (acknowledged). */
  readonly conversations: string[] = [];
  private readonly posted: Array<{ conv: string; id: string }> = [];
  private readonly rng: Rng;
  private seq = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;

  constructor(
    readonly index: number,
    private readonly rooms: readonly string[],
    private readonly ctx: WorkloadContext,
  ) {
    this.rng = Rng.fork(ctx.seed, `writer-${index}`);
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.step();
        if (!this.stopped) await sleep(this.rng.range(150, 400));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async step(): Promise<void> {
    const slot = this.rng.int(this.ctx.endpoints.instances);
    const r = this.rng.next();
    const which = this.rng.next();
    const sender = this.rng.pick(['customer', 'agent']);
    if (this.conversations.length === 0 || r < 0.08) {
      await this.request(slot, 'create', 'POST', '/api/conversations', null, (status, body, at) => {
        if (status !== 201) return false;
        const conv = (body as { id: string }).id;
        this.conversations.push(conv);
        this.ctx.record({ type: 'rest-created', ...at, writer: this.index, conv });
        return true;
      });
    } else if (r < 0.18 && this.posted.length > 0) {
      const [victim] = this.posted.splice(Math.floor(which * this.posted.length), 1) as [{ conv: string; id: string }];
      const path = `/api/conversations/${encodeURIComponent(victim.conv)}/messages/${encodeURIComponent(victim.id)}`;
      await this.request(slot, 'delete', 'DELETE', path, null, (status, _body, at) => {
        if (status !== 204) return false;
        this.ctx.record({ type: 'rest-deleted', ...at, writer: this.index, conv: victim.conv, id: victim.id });
        return true;
      }, victim);
    } else {
      const pool = which < 0.5 ? this.conversations : this.rooms;
      const conv = pool[Math.floor(this.rng.next() * pool.length)]!;
      const content = `w${this.index}:${++this.seq}`;
      await this.request(slot, 'post', 'POST', `/api/conversations/${encodeURIComponent(conv)}/messages`, { sender, content }, (status, body, at) => {
        if (status !== 201) return false;
        const m = body as { id: string; timestamp: number };
        this.posted.push({ conv, id: m.id });
        this.ctx.record({ type: 'rest-posted', ...at, writer: this.index, conv, key: { ts: m.timestamp, id: m.id } });
        return true;
      }, { conv });
    }
  }

  private async request(
    slot: number,
    op: 'create' | 'post' | 'delete',
    method: string,
    path: string,
    body: unknown,
    onAnswer: (status: number, body: unknown, at: { t: number; slot: number; incarnation: number }) => boolean,
    about: { conv?: string; id?: string } = {},
  ): Promise<void> {
    const incarnation = this.ctx.endpoints.incarnation(slot);
    try {
      const res = await fetch(`${this.ctx.endpoints.httpUrl(slot)}${path}`, {
        method,
        headers: body === null ? {} : { 'content-type': 'application/json' },
        body: body === null ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      let parsed: unknown = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // not JSON: only a refusal can be
      }
      const at = { t: this.ctx.now(), slot, incarnation };
      if (!onAnswer(res.status, parsed, at)) this.ctx.record({ type: 'rest-rejected', ...at, writer: this.index, op, ...about, status: res.status });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      this.ctx.record({ type: 'rest-unknown', t: this.ctx.now(), slot, incarnation, writer: this.index, op, ...about, error: e.cause?.code ?? e.name ?? e.message });
    }
  }
}
