/**
 * The client-facing WebSocket server: the client protocol, and four of the five methods that
 * are the public face of a chatmesh server (markAlive, handleMessage, cleanup, broadcast; the
 * fifth, healthCheck, is lib/http/health.ts).
 *
 * A client frame travels: socket → handleMessage (decode + validate) → room commands →
 * broadcast → local members, and the other nodes through cluster presence (joins, leaves) or
 * the replicator (messages). Events from peers arrive through those two and go to local
 * members only (the mesh forwards them further itself).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Identity, RevocationCheck, TokenVerifier } from '../auth/index.js';
import type { ChatmeshOptions } from '../config.js';
import { RoomRegistry } from '../core/room-registry.js';
import { ClientErrorCode, CloseCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { ConversationStore } from '../core/conversation-store.js';
import type { CreationLimiter } from '../core/creation-limiter.js';
import type { PresenceChange } from '../core/presence-table.js';
import { rejectUpgrade } from '../http/responses.js';
import type { PresenceMeta } from '../mesh/envelope.js';
import { aboutUndecoded, decodeClientFrame, errorFrame, type ErrorAbout, type RoomEvent } from '../protocol/client-frames.js';
import type { ClusterPresence } from '../replication/cluster-presence.js';
import type { Replicator } from '../replication/replicator.js';
import { ClientAuth } from './client-auth.js';
import { ClientConnection, type ConnectionLimits } from './client-connection.js';
import { PresenceBatcher } from './presence-batcher.js';
import { socketListeners, type SocketListeners } from './socket-listeners.js';
import { RoomCommands, type CommandGateway } from './room-commands.js';
import { encodeTextFrame } from './text-frame.js';
import { UNSENT_BUDGET_CHECK_MS, enforceUnsentBudget } from './unsent-budget.js';
import { WriteCoalescer } from './write-coalescer.js';

export type GatewayOptions = Pick<
  ChatmeshOptions,
  | 'maxPayloadBytes' | 'maxTextLength' | 'maxNameLength' | 'maxRoomsPerConnection' | 'pingIntervalMs' | 'historyOnJoin' | 'perMessageDeflate'
  | 'maxClientBufferBytes' | 'clientWriteDeadlineMs' | 'maxClientBufferHardBytes' | 'rateLimitPerSec' | 'rateLimitBurst' | 'rateLimitStrikes' | 'maxConnections' | 'allowedOrigins'
  | 'maxNewConversationsPerConnection' | 'maxReplyBytes' | 'maxUnsentBytes' | 'presenceMaxMembers'
>;

/** Counters read by /metrics. */
export interface GatewayCounters {
  connectionsOpened: number;
  connectionsClosed: number;
  /** Client frames received (valid or not). */
  framesIn: number;
  /** Chat messages accepted from clients. */
  messagesIn: number;
  /** Frames written to clients for room events (one per recipient). */
  deliveries: number;
  /** Client frames refused, by error code. */
  errors: Record<string, number>;
}

export class ChatGateway implements CommandGateway {
  readonly counters: GatewayCounters = { connectionsOpened: 0, connectionsClosed: 0, framesIn: 0, messagesIn: 0, deliveries: 0, errors: {} };
  /** Which local connections are in which room. */
  readonly rooms = new RoomRegistry<ClientConnection>();
  /** Open connections by socket (the shared socket listeners find theirs here). */
  private readonly connections = new Map<WebSocket, ClientConnection>();
  private readonly listeners: SocketListeners;
  private readonly wss: WebSocketServer;
  private heartbeat: NodeJS.Timeout | null = null;
  private budget: NodeJS.Timeout | null = null;
  private nextConnectionId = 1;
  private readonly limits: ConnectionLimits;
  private readonly commands: RoomCommands;
  /** Joins and leaves to local members: one frame per room per turn; counts only in big rooms. */
  private readonly presenceOut: PresenceBatcher;
  private closing = false;
  /** AUTH=jwt: token checks at the upgrade, expiry and refresh; null with AUTH=none. */
  private readonly auth: ClientAuth | null;
  /** Frame limits of a connection with a token (join's user optional, refresh allowed). */
  private readonly authLimits: GatewayOptions & { authenticated: true };

  constructor(
    private readonly options: GatewayOptions,
    private readonly replicator: Replicator,
    store: ConversationStore,
    private readonly presence: ClusterPresence,
    creations: CreationLimiter,
    private readonly log: Logger,
    verifier: TokenVerifier | null = null,
    clockToleranceSec = 0,
  ) {
    this.auth = verifier ? new ClientAuth(verifier, clockToleranceSec, this, log) : null;
    this.authLimits = { ...options, authenticated: true };
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: options.maxPayloadBytes,
      // Off by default: compressing costs CPU per recipient and memory per connection, and
      // opens the door to compression bombs. Opt in with PER_MESSAGE_DEFLATE=1.
      perMessageDeflate: options.perMessageDeflate,
    });
    this.limits = {
      maxBufferBytes: options.maxClientBufferBytes,
      writeDeadlineMs: options.clientWriteDeadlineMs,
      hardBufferBytes: options.maxClientBufferHardBytes,
      ratePerSec: options.rateLimitPerSec,
      burst: options.rateLimitBurst,
      coalescer: new WriteCoalescer(),
    };
    this.commands = new RoomCommands(options, this, store, replicator, presence, creations);
    this.listeners = socketListeners(this, log);
    this.presenceOut = new PresenceBatcher(this.rooms, presence.table, options.presenceMaxMembers, this.counters);
    replicator.on('deliver', this.deliverLocal);
    presence.on('change', this.onPresenceChange).on('deliver', this.deliverLocal);
  }

  start(): void {
    this.heartbeat = setInterval(() => this.markAlive(), this.options.pingIntervalMs);
    this.budget = setInterval(() => {
      const cut = enforceUnsentBudget(this.connections.values(), this.options.maxUnsentBytes);
      if (cut > 0) this.log.warn('clients cut: the server-wide send budget (MAX_UNSENT_BYTES) was full', { cut });
    }, UNSENT_BUDGET_CHECK_MS);
  }

  /**
   * Completes a WebSocket upgrade on the client path, unless the instance is full (503), the
   * browser origin is not allowed (403) or, with AUTH=jwt, the token is missing or bad (401).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.connections.size >= this.options.maxConnections) {
      this.counters.errors.connection_limit = (this.counters.errors.connection_limit ?? 0) + 1;
      rejectUpgrade(socket, 503);
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && this.options.allowedOrigins.length > 0 && !this.options.allowedOrigins.includes(origin)) {
      this.counters.errors.origin_not_allowed = (this.counters.errors.origin_not_allowed ?? 0) + 1;
      rejectUpgrade(socket, 403);
      return;
    }
    const proceed = (identity: Identity | null) => this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, socket, identity));
    if (this.auth) this.auth.admit(req, socket, proceed);
    else proceed(null);
  }

  /** Number of open client connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** True from the start of a shutdown: /health answers 503, new clients are refused. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** Number of rooms with at least one member on this instance. */
  get roomCount(): number {
    return this.rooms.size;
  }

  /**
   * The client heartbeat, run every pingIntervalMs: a client that has not answered the
   * previous ping is terminated (so a dead one goes within two intervals); every other
   * client is pinged again.
   */
  markAlive(): void {
    for (const conn of this.connections.values()) {
      if (!conn.isAlive) {
        this.log.debug('client missed its pong: dropping it', { conn: conn.id });
        conn.socket.terminate();
        continue;
      }
      conn.isAlive = false;
      conn.socket.ping();
    }
  }

  /**
   * Parses, validates and dispatches one client frame. Bad input gets an error frame with a
   * stable code and leaves the connection open; nothing a client sends can throw out of here.
   */
  handleMessage(conn: ClientConnection, data: RawData, isBinary: boolean): void {
    this.counters.framesIn++;
    // ws keeps delivering frames while a close is under way (up to its close timeout): a
    // connection we are closing (flooding, slow consumer, shutdown) is heard no more.
    if (conn.socket.readyState !== conn.socket.OPEN) return;
    if (!conn.takeToken()) {
      // Over the rate: the frame is refused (not queued). A client that keeps flooding is cut.
      if (++conn.strikes >= this.options.rateLimitStrikes) {
        conn.socket.close(CloseCode.PolicyViolation, 'rate limit exceeded');
        return;
      }
      this.sendError(conn, ClientErrorCode.RateLimited, `over ${this.options.rateLimitPerSec} frames per second`, isBinary ? undefined : aboutUndecoded(data));
      return;
    }
    conn.strikes = 0;
    if (isBinary) {
      this.sendError(conn, ClientErrorCode.BinaryNotSupported, 'frames must be JSON text');
      return;
    }
    const decoded = conn.identity ? decodeClientFrame(data.toString(), this.authLimits) : decodeClientFrame(data.toString(), this.options);
    if (!decoded.ok) this.sendError(conn, decoded.code, decoded.message);
    else if (decoded.frame.type === 'refresh') this.auth?.refresh(conn, decoded.frame.token);
    else this.commands.dispatch(conn, decoded.frame);
  }

  /** Releases everything a closed connection held: room memberships (with presence leave events), its inbox feed. */
  cleanup(conn: ClientConnection): void {
    if (!this.connections.delete(conn.socket)) return;
    this.counters.connectionsClosed++;
    this.auth?.unwatch(conn);
    this.commands.release(conn);
    conn.socket.removeAllListeners();
    // An 'error' after this point must still not crash the process.
    conn.socket.on('error', () => {});
  }

  /**
   * Delivers a room event to the room's members on this instance and, through the mesh, on
   * every other instance. Encoded once, whatever the number of recipients.
   * A message is a write to the replicated store (the conversation of the same name);
   * presence is live only. `except` is a local connection that must not receive the event
   * (the joiner of its own presence).
   */
  broadcast(room: string, event: RoomEvent, except?: ClientConnection, presence?: PresenceMeta): void {
    if (event.type === 'message') {
      this.replicator.commit(event, false);
      return;
    }
    // Local members hear presence at the end of the turn, batched (presence-batcher.ts); peers at once.
    this.presenceOut.add(room, event.event, event.user, except);
    this.presence.publish(room, Buffer.from(JSON.stringify(event)), presence);
  }

  /** Closes every client with 1001 and stops the heartbeat. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.budget) clearInterval(this.budget);
    this.heartbeat = this.budget = null;
    this.replicator.off('deliver', this.deliverLocal);
    this.presence.off('change', this.onPresenceChange).off('deliver', this.deliverLocal);
    this.presenceOut.close();
    this.commands.inbox.close();
    const closes: Promise<void>[] = [];
    for (const conn of this.connections.values()) {
      closes.push(new Promise((resolve) => conn.socket.once('close', () => resolve())));
      conn.socket.close(CloseCode.GoingAway, 'server shutting down');
    }
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
    await Promise.race([Promise.all(closes), deadline]);
    for (const conn of this.connections.values()) conn.socket.terminate();
    this.wss.close();
  }

  /** AUTH=jwt: closes (4403) every connection whose token the revocation table now matches. */
  closeRevoked(check: RevocationCheck): number {
    return this.auth?.closeRevoked(this.connections.values(), check) ?? 0;
  }

  /** Marks the gateway as shutting down (health turns 503) before anything is closed. */
  beginShutdown(): void {
    this.closing = true;
  }

  private onConnection(ws: WebSocket, raw: Duplex, identity: Identity | null): void {
    if (this.closing) {
      ws.on('error', () => {}); // it lives until the close completes
      ws.close(CloseCode.GoingAway, 'server shutting down');
      return;
    }
    const conn = new ClientConnection(this.nextConnectionId++, ws, raw, this.limits);
    conn.identity = identity;
    this.auth?.watch(conn);
    this.connections.set(ws, conn);
    this.counters.connectionsOpened++;
    for (const event of ['message', 'pong', 'close', 'error'] as const) ws.on(event, this.listeners[event]);
  }

  /** The open connection on this socket, if any (for the shared socket listeners). */
  connectionOf(socket: WebSocket): ClientConnection | undefined {
    return this.connections.get(socket);
  }

  /** A join or leave from a peer, or one this node worked out itself (a node became unreachable, or came back). */
  private readonly onPresenceChange = (change: PresenceChange): void => {
    this.presenceOut.add(change.room, change.event, change.user);
  };

  /** Answers a client frame with an error frame (the connection stays open). */
  sendError(conn: ClientConnection, code: string, message: string, about?: ErrorAbout): void {
    this.counters.errors[code] = (this.counters.errors[code] ?? 0) + 1;
    conn.send(Buffer.from(errorFrame(code, message, about)));
  }

  /** A room event for local members only (from a peer, or a write applied here): one frame for all. */
  private readonly deliverLocal = (room: string, payload: Buffer): void => {
    const members = this.rooms.members(room);
    if (members.size === 0) return;
    const frame = encodeTextFrame(payload);
    for (const member of members) member.sendFrame(frame, payload);
    this.counters.deliveries += members.size;
  };
}
