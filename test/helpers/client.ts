/**
 * A test chat client over a real WebSocket: records every frame it receives and lets a test
 * wait for the frame it expects (never a sleep).
 */
import { WebSocket } from 'ws';
import { withTimeout } from './wait.js';

export interface Frame {
  type: string;
  [key: string]: unknown;
}

type Waiter = { match: (f: Frame) => boolean; resolve: (f: Frame) => void; from: number };

export class TestClient {
  readonly frames: Frame[] = [];
  closeCode: number | null = null;
  closeReason = '';
  private waiters: Waiter[] = [];
  private readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve(code);
      });
    });
    ws.on('error', () => {});
    ws.on('message', (data) => {
      let frame: Frame;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        frame = { type: '__unparsable__', raw: data.toString() };
      }
      this.frames.push(frame);
      const index = this.frames.length - 1;
      this.waiters = this.waiters.filter((w) => {
        if (index >= w.from && w.match(frame)) {
          w.resolve(frame);
          return false;
        }
        return true;
      });
    });
  }

  static async connect(url: string, options: { timeoutMs?: number } = {}): Promise<TestClient> {
    return TestClient.wrap(new WebSocket(url, { perMessageDeflate: false }), options);
  }

  /** A client over a WebSocket opened by the caller (e.g. with headers), once it is open. */
  static async wrap(ws: WebSocket, options: { timeoutMs?: number } = {}): Promise<TestClient> {
    const url = ws.url;
    const client = new TestClient(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      options.timeoutMs ?? 5000,
      `connection to ${url}`,
    );
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Resolves with the first frame (already received or still to come) that matches. */
  waitFor(match: (f: Frame) => boolean, timeoutMs = 5000, what = 'a matching frame'): Promise<Frame> {
    const found = this.frames.find(match);
    if (found) return Promise.resolve(found);
    return this.nextFrom(this.frames.length, match, timeoutMs, what);
  }

  /** Resolves with the first matching frame received after this call. */
  next(match: (f: Frame) => boolean, timeoutMs = 5000, what = 'a matching frame'): Promise<Frame> {
    return this.nextFrom(this.frames.length, match, timeoutMs, what);
  }

  /** Sends a frame and waits for the first matching frame after it. */
  async request(frame: unknown, match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const reply = this.next(match, timeoutMs, `reply to ${JSON.stringify(frame).slice(0, 80)}`);
    this.send(frame);
    return reply;
  }

  /** Joins a room and waits for `joined`. */
  async join(room: string, user: string): Promise<Frame> {
    return this.request({ type: 'join', room, user }, (f) => f.type === 'joined' && f.room === room);
  }

  /** Sends a chat message and waits for its echo (the server's acknowledgement). */
  async say(room: string, text: string, user?: string): Promise<Frame> {
    return this.request({ type: 'message', room, text, ...(user ? { user } : {}) }, (f) => f.type === 'message' && f.text === text && f.room === room);
  }

  messages(room?: string): Frame[] {
    return this.frames.filter((f) => f.type === 'message' && (room === undefined || f.room === room));
  }

  /** Resolves with the close code when the server closes the connection. */
  waitClose(timeoutMs = 5000): Promise<number> {
    return withTimeout(this.closed, timeoutMs, 'the connection to close');
  }

  async close(): Promise<void> {
    if (this.closeCode !== null) return;
    this.ws.terminate();
    await this.closed;
  }

  private nextFrom(from: number, match: (f: Frame) => boolean, timeoutMs: number, what: string): Promise<Frame> {
    let waiter!: Waiter;
    const promise = new Promise<Frame>((resolve) => {
      waiter = { match, resolve, from };
      this.waiters.push(waiter);
    });
    return withTimeout(promise, timeoutMs, what).finally(() => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
    });
  }
}
