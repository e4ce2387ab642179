/**
 * One WebSocket at a time to one of the server URLs: connect, and when the socket closes,
 * reconnect to the next URL after a backoff delay with full jitter. With a token source the
 * token is fetched at each connect (a refused upgrade is retried with a fresh one); a close
 * with 4401 (token expired) reconnects at once with a fresh token, 4403 (revoked) stops.
 */
import { BACKOFF_DEFAULTS, backoffDelay, type BackoffOptions } from './backoff.js';
import { parseServerFrame, type ClientFrame, type ServerFrame } from './frames.js';
import { tokenFrom, withToken, type TokenSource } from './token.js';

/** What the client needs of a WebSocket: the browser's and `ws`'s both have it. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class (the browser's, or `ws`'s), or a function that loads one. */
export type WebSocketClass = new (url: string) => any;
export type WebSocketSource = WebSocketClass | (() => Promise<WebSocketClass>);

const OPEN = 1;
export const CLOSE_TOKEN_EXPIRED = 4401;
export const CLOSE_TOKEN_REVOKED = 4403;

export type ConnectionState =
  | { state: 'connecting'; url: string; attempt: number }
  | { state: 'open'; url: string }
  | { state: 'reconnecting'; delayMs: number; code: number; reason: string }
  | { state: 'closed'; code: number; reason: string };

export interface ConnectionHandlers {
  open(socket: object): void;
  frame(frame: ServerFrame): void;
  /** The socket closed (the connection reconnects by itself unless `final`). */
  close(code: number, reason: string, final: boolean): void;
  state(state: ConnectionState): void;
}

export interface ConnectionOptions {
  urls: string[];
  WebSocket: WebSocketSource;
  token?: TokenSource;
  backoff?: BackoffOptions;
}

export class Connection {
  private socket: SocketLike | null = null;
  private attempt = 0;
  private urlIndex = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private wsClass: WebSocketClass | null = null;
  private readonly backoff: Required<BackoffOptions>;
  /** The token the current socket was opened with (null without auth). */
  token: string | null = null;

  constructor(private readonly options: ConnectionOptions, private readonly handlers: ConnectionHandlers) {
    if (options.urls.length === 0) throw new Error('at least one server URL is needed');
    this.backoff = { ...BACKOFF_DEFAULTS, ...options.backoff };
  }

  get isOpen(): boolean {
    return this.socket !== null && this.socket.readyState === OPEN;
  }

  /** The current socket, as an identity (which socket a frame was written to). */
  get current(): object | null {
    return this.isOpen ? this.socket : null;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.connect();
  }

  /** Closes for good (no reconnect). */
  stop(code = 1000, reason = 'client closed'): void {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = socket.onmessage = socket.onopen = socket.onerror = null;
      socket.close(code, reason);
    }
    this.handlers.close(code, reason, true);
    this.handlers.state({ state: 'closed', code, reason });
  }

  send(frame: ClientFrame): boolean {
    if (!this.isOpen) return false;
    this.socket!.send(JSON.stringify(frame));
    return true;
  }

  /** Closes the current socket so that the connection moves on (as if the server had closed it). */
  drop(): void {
    this.socket?.close(4000, 'client reconnects');
  }

  private async connect(): Promise<void> {
    const url = this.options.urls[this.urlIndex % this.options.urls.length];
    this.handlers.state({ state: 'connecting', url, attempt: this.attempt });
    let socket: SocketLike;
    try {
      this.wsClass ??= await loadClass(this.options.WebSocket);
      this.token = this.options.token === undefined ? null : await tokenFrom(this.options.token);
      if (!this.running) return;
      socket = new this.wsClass(withToken(url, this.token)) as SocketLike;
    } catch (err) {
      // No WebSocket class, a bad URL, a token source that failed: try again later.
      this.retry(1006, err instanceof Error ? err.message : String(err));
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.handlers.state({ state: 'open', url });
      this.handlers.open(socket);
    };
    socket.onmessage = (event) => {
      // `ws` gives text frames as strings through onmessage, as browsers do.
      const frame = parseServerFrame(event.data);
      if (frame === null) return;
      this.attempt = 0; // the server answers: the next failure starts the backoff again
      this.handlers.frame(frame);
    };
    socket.onerror = () => {}; // a close follows; the close says what happened
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === CLOSE_TOKEN_REVOKED || (event.code === CLOSE_TOKEN_EXPIRED && typeof this.options.token !== 'function')) {
        this.running = false;
        this.handlers.close(event.code, event.reason, true);
        this.handlers.state({ state: 'closed', code: event.code, reason: event.reason });
        return;
      }
      this.handlers.close(event.code, event.reason, false);
      // Expired: a fresh token, at once, on the same instance.
      if (event.code === CLOSE_TOKEN_EXPIRED) return void this.connect();
      this.retry(event.code, event.reason);
    };
  }

  private retry(code: number, reason: string): void {
    if (!this.running) return;
    this.urlIndex = (this.urlIndex + 1) % this.options.urls.length;
    const delayMs = backoffDelay(this.attempt, this.backoff);
    this.attempt += 1;
    this.handlers.state({ state: 'reconnecting', delayMs, code, reason });
    this.timer = setTimeout(() => void this.connect(), delayMs);
  }
}

async function loadClass(source: WebSocketSource): Promise<WebSocketClass> {
  // A class has a prototype with a constructor; a loader is a plain (async) function.
  if (typeof source === 'function' && source.prototype !== undefined && 'send' in source.prototype) return source as WebSocketClass;
  return await (source as () => Promise<WebSocketClass>)();
}
