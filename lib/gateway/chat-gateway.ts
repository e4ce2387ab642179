/**
 * The client-facing WebSocket server: the client protocol and the five methods that are the
 * public face of a chatmesh server (healthCheck, markAlive, handleMessage, cleanup, broadcast).
 *
 * A client frame travels: socket → handleMessage (decode + validate) → room registry →
 * broadcast → local members and the mesh. A peer's room event arrives from the mesh and goes
 * to local members only (the mesh forwards it further itself).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { ChatmeshOptions } from '../config.js';
import { RoomRegistry } from '../core/room-registry.js';
import { ClientErrorCode, CloseCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { ConversationStore, StoredMessage } from '../core/conversation-store.js';
import type { Mesh, PeerStatus } from '../mesh/mesh.js';
import type { Replicator } from '../mesh/replicator.js';
import type { ClusterPresence } from '../mesh/cluster-presence.js';
import type { PresenceChange } from '../core/presence-table.js';
import { decodeClientFrame, errorFrame, type ClientFrame, type PresenceEvent, type RoomEvent } from '../protocol/client-frames.js';
import type { PresenceMeta } from '../mesh/envelope.js';
import { ClientConnection, type ConnectionLimits } from './client-connection.js';
import { encodeTextFrame } from './text-frame.js';
import { WriteCoalescer } from './write-coalescer.js';

export type GatewayOptions = Pick<
  ChatmeshOptions,
  | 'maxPayloadBytes' | 'maxTextLength' | 'maxNameLength' | 'maxRoomsPerConnection' | 'pingIntervalMs' | 'historyOnJoin' | 'perMessageDeflate'
  | 'maxClientBufferBytes' | 'clientWriteDeadlineMs' | 'maxClientBufferHardBytes' | 'rateLimitPerSec' | 'rateLimitBurst' | 'rateLimitStrikes' | 'maxConnections' | 'allowedOrigins'
>;

export interface NodeInfo {
  id: string;
  port: number;
  version: string;
  startedAt: number;
}

export interface HealthReport {
  status: 'ok' | 'shutting_down';
  node: { id: string; port: number; version: string };
  /** Seconds since start. */
  uptime: number;
  connections: number;
  rooms: number;
  /** The replicated store on this instance. */
  store: { conversations: number; messages: number; tombstones: number };
  /** This process's memory, bytes. */
  memory: { rssBytes: number; heapUsedBytes: number };
  /** Events from peers: received, duplicates dropped, forwarded, forwards skipped (the origin had sent them). */
  mesh: { received: number; duplicates: number; forwarded: number; skippedForwards: number };
  peers: Array<Omit<PeerStatus, 'since' | 'lastSeen'> & { since: string; lastSeen: string | null }>;
}

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

export class ChatGateway {
  readonly counters: GatewayCounters = { connectionsOpened: 0, connectionsClosed: 0, framesIn: 0, messagesIn: 0, deliveries: 0, errors: {} };
  private readonly rooms = new RoomRegistry<ClientConnection>();
  private readonly connections = new Set<ClientConnection>();
  private readonly wss: WebSocketServer;
  private heartbeat: NodeJS.Timeout | null = null;
  private nextConnectionId = 1;
  private readonly limits: ConnectionLimits;
  private closing = false;

  constructor(
    private readonly options: GatewayOptions,
    private readonly mesh: Mesh,
    private readonly replicator: Replicator,
    private readonly store: ConversationStore,
    private readonly presence: ClusterPresence,
    private readonly node: NodeInfo,
    private readonly log: Logger,
  ) {
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
    mesh.on('room', this.onPeerRoomEvent);
    replicator.on('deliver', this.deliverLocal);
    presence.on('change', this.onPresenceChange);
  }

  start(): void {
    this.heartbeat = setInterval(() => this.markAlive(), this.options.pingIntervalMs);
  }

  /**
   * Completes a WebSocket upgrade on the client path, unless the instance is full (503) or
   * the browser origin is not allowed (403).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.connections.size >= this.options.maxConnections) {
      this.counters.errors.connection_limit = (this.counters.errors.connection_limit ?? 0) + 1;
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && this.options.allowedOrigins.length > 0 && !this.options.allowedOrigins.includes(origin)) {
      this.counters.errors.origin_not_allowed = (this.counters.errors.origin_not_allowed ?? 0) + 1;
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, socket));
  }

  /** Number of open client connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Number of rooms with at least one member on this instance. */
  get roomCount(): number {
    return this.rooms.size;
  }

  /**
   * Answers /health: this node, its load and the state of every peer.
   * Returns 503 while the node shuts down, so load balancers stop sending it traffic.
   */
  healthCheck(): { statusCode: number; body: HealthReport } {
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const body: HealthReport = {
      status: this.closing ? 'shutting_down' : 'ok',
      node: { id: this.node.id, port: this.node.port, version: this.node.version },
      uptime: Math.round((Date.now() - this.node.startedAt) / 100) / 10,
      connections: this.connections.size,
      rooms: this.rooms.size,
      store: this.store.stats(),
      mesh: { ...this.mesh.counters },
      memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
      peers: this.mesh.status().map((p) => ({ ...p, since: iso(p.since)!, lastSeen: iso(p.lastSeen) })),
    };
    return { statusCode: this.closing ? 503 : 200, body };
  }

  /**
   * The client heartbeat, run every pingIntervalMs: a client that has not answered the
   * previous ping is terminated (so a dead one goes within two intervals); every other
   * client is pinged again.
   */
  markAlive(): void {
    for (const conn of this.connections) {
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
      this.sendError(conn, ClientErrorCode.RateLimited, `over ${this.options.rateLimitPerSec} frames per second`);
      return;
    }
    conn.strikes = 0;
    if (isBinary) {
      this.sendError(conn, ClientErrorCode.BinaryNotSupported, 'frames must be JSON text');
      return;
    }
    const decoded = decodeClientFrame(data.toString(), this.options);
    if (!decoded.ok) {
      this.sendError(conn, decoded.code, decoded.message);
      return;
    }
    this.dispatch(conn, decoded.frame);
  }

  /** Releases everything a closed connection held: room memberships (with presence leave events). */
  cleanup(conn: ClientConnection): void {
    if (!this.connections.delete(conn)) return;
    this.counters.connectionsClosed++;
    for (const [room, user] of conn.rooms) this.leaveRoom(conn, room, user);
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
    const payload = Buffer.from(JSON.stringify(event));
    const members = this.rooms.members(room);
    if (members.size > 0) {
      const frame = encodeTextFrame(payload);
      for (const member of members) if (member !== except) member.sendFrame(frame, payload);
      this.counters.deliveries += except && members.has(except) ? members.size - 1 : members.size;
    }
    this.mesh.publish(room, this.mesh.nextId(), payload, presence);
  }

  /** Closes every client with 1001 and stops the heartbeat. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.mesh.off('room', this.onPeerRoomEvent);
    this.replicator.off('deliver', this.deliverLocal);
    this.presence.off('change', this.onPresenceChange);
    const closes: Promise<void>[] = [];
    for (const conn of this.connections) {
      closes.push(new Promise((resolve) => conn.socket.once('close', () => resolve())));
      conn.socket.close(CloseCode.GoingAway, 'server shutting down');
    }
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
    await Promise.race([Promise.all(closes), deadline]);
    for (const conn of this.connections) conn.socket.terminate();
    this.wss.close();
  }

  /** Marks the gateway as shutting down (health turns 503) before anything is closed. */
  beginShutdown(): void {
    this.closing = true;
  }

  private onConnection(ws: WebSocket, raw: Duplex): void {
    if (this.closing) {
      ws.on('error', () => {}); // it lives until the close completes
      ws.close(CloseCode.GoingAway, 'server shutting down');
      return;
    }
    const conn = new ClientConnection(this.nextConnectionId++, ws, raw, this.limits);
    this.connections.add(conn);
    this.counters.connectionsOpened++;
    ws.on('message', (data, isBinary) => this.handleMessage(conn, data, isBinary));
    ws.on('pong', () => {
      conn.isAlive = true;
    });
    ws.on('close', () => this.cleanup(conn));
    // A reset socket or a protocol violation (ws closes with 1002/1007/1009 itself) costs this
    // connection only, never the process.
    ws.on('error', (err) => this.log.debug('client socket error', { conn: conn.id, error: err.message }));
  }

  private dispatch(conn: ClientConnection, frame: ClientFrame): void {
    switch (frame.type) {
      case 'join': {
        const current = conn.rooms.get(frame.room);
        if (current !== undefined) {
          if (current !== frame.user) {
            this.sendError(conn, ClientErrorCode.AlreadyJoined, `already in ${frame.room} as ${current}`);
            return;
          }
          conn.send(this.joinedFrame(frame.room, current, frame.since));
          return;
        }
        if (conn.rooms.size >= this.options.maxRoomsPerConnection) {
          this.sendError(conn, ClientErrorCode.TooManyRooms, `at most ${this.options.maxRoomsPerConnection} rooms per connection`);
          return;
        }
        // Joining a room that does not exist creates it (it is also a conversation).
        if (!this.store.has(frame.room)) this.replicator.commit({ type: 'created', room: frame.room, id: this.store.nextId() });
        conn.rooms.set(frame.room, frame.user);
        this.rooms.join(frame.room, conn);
        const v = this.presence.table.localJoin(conn.id, frame.room, frame.user);
        conn.send(this.joinedFrame(frame.room, frame.user, frame.since));
        this.broadcast(frame.room, { type: 'presence', event: 'join', room: frame.room, user: frame.user }, conn, { c: conn.id, v });
        return;
      }
      case 'leave': {
        const user = conn.rooms.get(frame.room);
        if (user === undefined) {
          this.sendError(conn, ClientErrorCode.NotJoined, `not in room ${frame.room}`);
          return;
        }
        this.leaveRoom(conn, frame.room, user);
        conn.send(Buffer.from(JSON.stringify({ type: 'left', room: frame.room })));
        return;
      }
      case 'members': {
        if (!conn.rooms.has(frame.room)) {
          this.sendError(conn, ClientErrorCode.NotJoined, `join ${frame.room} to see its members`);
          return;
        }
        conn.send(Buffer.from(JSON.stringify({ type: 'members', room: frame.room, members: this.presence.table.members(frame.room) })));
        return;
      }
      case 'message': {
        const user = conn.rooms.get(frame.room);
        if (user === undefined) {
          this.sendError(conn, ClientErrorCode.NotJoined, `join ${frame.room} before sending to it`);
          return;
        }
        if (frame.user !== undefined && frame.user !== user) {
          this.sendError(conn, ClientErrorCode.UserMismatch, `you joined ${frame.room} as ${user}`);
          return;
        }
        this.counters.messagesIn++;
        // The id carries a hybrid logical clock: (ts, id) order keeps causality cluster-wide.
        const stamp = this.store.nextStamp();
        this.broadcast(frame.room, { type: 'message', id: stamp.id, room: frame.room, user, text: frame.text, ts: stamp.wall });
        return;
      }
    }
  }

  /**
   * The `joined` reply. Without `since`: the room's recent history (oldest first). With
   * `since` (resume): every message after it, in order, or — when `since` is no longer in
   * the kept history — `gap: true` with the recent history, so the client knows it missed
   * more than it is given. The reply is sent in the same turn as the membership starts, so
   * no live message can fall between the replay and the live stream.
   */
  private joinedFrame(room: string, user: string, since: string | undefined): Buffer {
    const wire = (m: StoredMessage) => ({ id: m.id, user: m.sender, text: m.content, ts: m.timestamp });
    if (since !== undefined) {
      const after = this.store.messagesAfter(room, since);
      const members = this.presence.table.members(room);
      if (after.found) return Buffer.from(JSON.stringify({ type: 'joined', room, user, members, since, gap: false, history: after.messages.map(wire) }));
      const history = this.store.recent(room, this.options.historyOnJoin).map(wire);
      return Buffer.from(JSON.stringify({ type: 'joined', room, user, members, since, gap: true, history }));
    }
    const history = this.store.recent(room, this.options.historyOnJoin).map(wire);
    return Buffer.from(JSON.stringify({ type: 'joined', room, user, members: this.presence.table.members(room), history }));
  }

  private leaveRoom(conn: ClientConnection, room: string, user: string): void {
    conn.rooms.delete(room);
    this.rooms.leave(room, conn);
    const v = this.presence.table.localLeave(conn.id, room);
    this.broadcast(room, { type: 'presence', event: 'leave', room, user }, conn, { c: conn.id, v });
  }

  /** A room event from a peer (presence): update the table, then tell local members. */
  private readonly onPeerRoomEvent = (room: string, payload: Buffer, origin: string, meta: PresenceMeta | undefined): void => {
    if (meta) {
      let event: Partial<PresenceEvent>;
      try {
        event = JSON.parse(payload.toString());
      } catch {
        return;
      }
      if (typeof event.user !== 'string') return;
      const applied = this.presence.table.applyEvent(origin, meta.v, event.event === 'leave' ? 'leave' : 'join', { conn: meta.c, room, user: event.user });
      if (!applied) return; // stale: a snapshot already told us something newer
    }
    this.deliverLocal(room, payload);
  };

  /** A join or leave this node worked out itself (a node became unreachable, or came back). */
  private readonly onPresenceChange = (change: PresenceChange): void => {
    this.deliverLocal(change.room, Buffer.from(JSON.stringify({ type: 'presence', event: change.event, room: change.room, user: change.user })));
  };

  private sendError(conn: ClientConnection, code: string, message: string): void {
    this.counters.errors[code] = (this.counters.errors[code] ?? 0) + 1;
    conn.send(Buffer.from(errorFrame(code, message)));
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
