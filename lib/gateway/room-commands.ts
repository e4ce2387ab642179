/**
 * What each client frame does, once decoded and validated: join (with history or a resume),
 * leave, members, message, inbox (inbox-feed.ts). The rooms themselves and the delivery of
 * events are the gateway's.
 */
import { mayJoin } from '../auth/index.js';
import type { ChatmeshOptions } from '../config.js';
import type { ApplyResult, ConversationStore, StoredMessage } from '../core/conversation-store.js';
import type { CreationLimiter } from '../core/creation-limiter.js';
import type { RoomRegistry } from '../core/room-registry.js';
import { ClientErrorCode } from '../errors.js';
import type { PresenceMeta } from '../mesh/envelope.js';
import type { ClientFrame, ErrorAbout, JoinFrame, RoomEvent } from '../protocol/client-frames.js';
import type { ClusterPresence } from '../replication/cluster-presence.js';
import type { Replicator } from '../replication/replicator.js';
import { reopenOnCustomerMessage } from '../replication/reopen.js';
import type { ClientConnection } from './client-connection.js';
import { InboxFeed } from './inbox-feed.js';
import { encodeTextFrame } from './text-frame.js';
import { memberView } from './presence-batcher.js';

/** The gateway as the commands see it. */
export interface CommandGateway {
  readonly rooms: RoomRegistry<ClientConnection>;
  readonly counters: { messagesIn: number; deliveries: number };
  broadcast(room: string, event: RoomEvent, except?: ClientConnection, presence?: PresenceMeta): void;
  sendError(conn: ClientConnection, code: string, message: string, about?: ErrorAbout): void;
}

export class RoomCommands {
  /** Connections following the inbox. */
  readonly inbox: InboxFeed;

  constructor(
    private readonly options: Pick<ChatmeshOptions, 'maxRoomsPerConnection' | 'historyOnJoin' | 'maxNewConversationsPerConnection' | 'maxReplyBytes' | 'presenceMaxMembers'>,
    private readonly gateway: CommandGateway,
    private readonly store: ConversationStore,
    private readonly replicator: Replicator,
    private readonly presence: ClusterPresence,
    private readonly creations: CreationLimiter,
  ) {
    this.inbox = new InboxFeed(store, replicator, gateway);
  }

  /** Carries out one decoded client frame. */
  dispatch(conn: ClientConnection, frame: ClientFrame): void {
    switch (frame.type) {
      case 'join': {
        const user = this.joinAs(conn, frame);
        if (user === null) return;
        const current = conn.rooms.get(frame.room);
        if (current !== undefined) {
          if (current !== user) {
            this.gateway.sendError(conn, ClientErrorCode.AlreadyJoined, `already in ${frame.room} as ${current}`);
            return;
          }
          conn.send(this.joinedFrame(frame.room, current, frame.since, frame.after));
          return;
        }
        if (conn.rooms.size >= this.options.maxRoomsPerConnection) {
          this.gateway.sendError(conn, ClientErrorCode.TooManyRooms, `at most ${this.options.maxRoomsPerConnection} rooms per connection`);
          return;
        }
        // Joining a room that does not exist creates it (it is also a conversation).
        if (!this.store.has(frame.room) && !this.create(conn, frame.room)) return;
        conn.rooms.set(frame.room, user);
        this.gateway.rooms.join(frame.room, conn);
        const v = this.presence.table.localJoin(conn.id, frame.room, user);
        conn.send(this.joinedFrame(frame.room, user, frame.since, frame.after));
        this.gateway.broadcast(frame.room, { type: 'presence', event: 'join', room: frame.room, user }, conn, { c: conn.id, v });
        return;
      }
      case 'leave': {
        const user = conn.rooms.get(frame.room);
        if (user === undefined) {
          this.gateway.sendError(conn, ClientErrorCode.NotJoined, `not in room ${frame.room}`);
          return;
        }
        this.leaveRoom(conn, frame.room, user);
        conn.send(Buffer.from(JSON.stringify({ type: 'left', room: frame.room })));
        return;
      }
      case 'members': {
        if (!conn.rooms.has(frame.room)) {
          this.gateway.sendError(conn, ClientErrorCode.NotJoined, `join ${frame.room} to see its members`);
          return;
        }
        conn.send(Buffer.from(JSON.stringify({ type: 'members', room: frame.room, ...memberView(this.presence.table, frame.room, this.options.presenceMaxMembers) })));
        return;
      }
      case 'typing': {
        const user = conn.rooms.get(frame.room);
        if (user === undefined) {
          this.gateway.sendError(conn, ClientErrorCode.NotJoined, `join ${frame.room} before typing in it`);
          return;
        }
        // Over the rate: dropped silently (counted), as a client sends one per keystroke.
        const payload = this.presence.typing.publish(frame.room, user);
        if (payload) this.deliverToOthers(frame.room, conn, payload);
        return;
      }
      case 'message': {
        const user = conn.rooms.get(frame.room);
        // Errors name the send they answer (its clientId), so a client knows which failed.
        const about = frame.clientId === undefined ? { room: frame.room } : { room: frame.room, clientId: frame.clientId };
        if (user === undefined) return this.gateway.sendError(conn, ClientErrorCode.NotJoined, `join ${frame.room} before sending to it`, about);
        if (frame.user !== undefined && frame.user !== user) return this.gateway.sendError(conn, ClientErrorCode.UserMismatch, `you joined ${frame.room} as ${user}`, about);
        // A resend of a send already held (on any instance: the dedupe is replicated with the
        // message): nothing stored, the original echo again, to this sender only.
        if (frame.clientId !== undefined) {
          const held = this.store.sentWithClientId(frame.room, conn.identity?.sub ?? user, frame.clientId);
          if (held !== null) return conn.send(Buffer.from(JSON.stringify(held)));
        }
        this.gateway.counters.messagesIn++;
        // The id carries a hybrid logical clock: (ts, id) order keeps causality cluster-wide.
        const stamp = this.store.nextStamp();
        const by = conn.identity === null ? {} : { by: conn.identity.sub };
        const cid = frame.clientId === undefined ? {} : { cid: frame.clientId };
        const { result, durable } = this.replicator.commit({ type: 'message', id: stamp.id, room: frame.room, user, text: frame.text, ts: stamp.wall, ...by, ...cid }, false);
        // The echo is the acknowledgement: a message not stored gets an error instead, never silence.
        if (result !== 'applied') return this.notStored(conn, result, 'message', about);
        durable.catch(() => this.notStored(conn, 'storage_unavailable', 'message', about));
        // Without auth every WebSocket sender counts as the customer (agents work over REST).
        if (conn.identity === null || conn.identity.role === 'customer') reopenOnCustomerMessage(this.replicator, frame.room);
        return;
      }
      case 'read': {
        const user = conn.rooms.get(frame.room);
        if (user === undefined) return this.gateway.sendError(conn, ClientErrorCode.NotJoined, `join ${frame.room} to mark it read`);
        const at = this.store.messageTimestamp(frame.room, frame.upTo);
        if (at === null) return this.gateway.sendError(conn, ClientErrorCode.UnknownMessage, `${frame.room} holds no message ${JSON.stringify(frame.upTo.slice(0, 64))}`);
        // A cursor that would move back changes nothing (duplicate): no receipt.
        const { result } = this.replicator.commit({ type: 'read', room: frame.room, id: this.store.nextId(), user: conn.identity?.sub ?? user, upTo: frame.upTo, at }, false);
        if (result !== 'applied' && result !== 'duplicate') this.notStored(conn, result, 'read cursor');
        return;
      }
      case 'inbox':
        return this.inbox.command(conn, frame);
    }
  }

  /**
   * The name a join takes: the frame's user without auth; with a token its sub (a different
   * user is user_mismatch), in a room the token allows (else forbidden). Null: refused (error sent).
   * Without a `rooms` claim a customer may join its own conversations, and create one (it owns it).
   */
  private joinAs(conn: ClientConnection, frame: JoinFrame): string | null {
    const identity = conn.identity;
    if (identity === null) return frame.user ?? null;
    if (frame.user !== undefined && frame.user !== identity.sub) {
      this.gateway.sendError(conn, ClientErrorCode.UserMismatch, 'user must be the token\'s subject (or left out)');
      return null;
    }
    const own = this.store.has(frame.room) ? this.store.ownerOf(frame.room) === identity.sub : identity.role === 'customer';
    if (!mayJoin(identity, frame.room, own)) {
      this.gateway.sendError(conn, ClientErrorCode.Forbidden, `your token does not allow room ${frame.room}`);
      return null;
    }
    return identity.sub;
  }

  /** Creates a room for a join, within the creation limits; false (and an error sent) if not. */
  private create(conn: ClientConnection, room: string): boolean {
    if (conn.created >= this.options.maxNewConversationsPerConnection) {
      this.gateway.sendError(conn, ClientErrorCode.RateLimited, `at most ${this.options.maxNewConversationsPerConnection} new rooms per connection`);
      return false;
    }
    const waitMs = this.creations.take(conn.address);
    if (waitMs > 0) {
      this.gateway.sendError(conn, ClientErrorCode.RateLimited, `too many new rooms from this address: try again in ${Math.ceil(waitMs / 1000)} s`);
      return false;
    }
    // A customer's new conversation is its own (replicated with the `created` write).
    const owner = conn.identity?.role === 'customer' ? { owner: conn.identity.sub } : {};
    const { result } = this.replicator.commit({ type: 'created', room, id: this.store.nextId(), ...owner });
    if (result !== 'applied' && result !== 'duplicate') {
      this.notStored(conn, result, 'room');
      return false;
    }
    conn.created++;
    return true;
  }

  private notStored(conn: ClientConnection, result: ApplyResult | 'storage_unavailable', what: string, about?: ErrorAbout): void {
    if (result === 'storage_unavailable') this.gateway.sendError(conn, ClientErrorCode.StorageUnavailable, `DATA_DIR cannot take writes now (disk full?): this ${what} was not stored`, about);
    else if (result === 'store_full') this.gateway.sendError(conn, ClientErrorCode.StoreFull, `the store is full: this ${what} was not stored`, about);
    else this.gateway.sendError(conn, ClientErrorCode.NotStored, `this ${what} was not stored (${result})`, about);
  }

  /**
   * The `joined` reply. Without `since`: the room's recent history (oldest first). With
   * `since` (resume): everything the client may have missed since it saw that message
   * anywhere in the mesh (see core/resume.ts: what sorts after it, plus a few that sort
   * before it but may not have reached the client's old instance in time; the client dedupes
   * by id), or, when this instance cannot tell, `gap: true` with the recent history. The
   * reply is sent in the same turn as the membership starts, so no live message can fall
   * between the replay and the live stream.
   */
  private joinedFrame(room: string, user: string, since: string | undefined, after?: string): Buffer {
    // Above PRESENCE_MAX_MEMBERS: `count` and `truncated` instead of `members`.
    const members = memberView(this.presence.table, room, this.options.presenceMaxMembers);
    // Messages stored but held from live delivery (catch-up under way) reach this member live:
    // the reply leaves them out, so none comes twice on this connection.
    const held = this.replicator.heldIds(room);
    const notHeld = (list: StoredMessage[]) => (held ? list.filter((m) => !held.has(m.id)) : list);
    if (since !== undefined) {
      const inMemory = this.store.resumeAfter(room, since);
      // A `since` older than memory's window may still be on disk (DATA_DIR).
      const answer = inMemory.complete ? inMemory : (this.replicator.history?.resumeFromDisk(room, since) ?? inMemory);
      if (answer.complete) {
        // A later page of the same answer: what follows `after` in it.
        const start = after === undefined ? 0 : answer.messages.findIndex((m) => m.id === after) + 1;
        if (start > 0 || after === undefined) return this.pagedReply({ type: 'joined', room, user, ...members, since, gap: false }, notHeld(answer.messages.slice(start)), 'oldest');
      }
      return this.pagedReply({ type: 'joined', room, user, ...members, since, gap: true }, notHeld(this.store.recent(room, this.options.historyOnJoin)), 'newest');
    }
    return this.pagedReply({ type: 'joined', room, user, ...members }, notHeld(this.store.recent(room, this.options.historyOnJoin)), 'newest');
  }

  /**
   * The reply with as much of `messages` as fits in MAX_REPLY_BYTES: a resume keeps the
   * oldest and says `"more": true` with `"next"` (the client asks again with the same `since`
   * and `after` = that `next`); a plain history keeps the newest.
   */
  private pagedReply(head: Record<string, unknown>, messages: StoredMessage[], keep: 'oldest' | 'newest'): Buffer {
    const wire = messages.map((m) => JSON.stringify({ id: m.id, user: m.sender, text: m.content, ts: m.timestamp }));
    const headText = JSON.stringify(head);
    let budget = this.options.maxReplyBytes - Buffer.byteLength(headText) - 32;
    let n = 0;
    const order = keep === 'oldest' ? wire : [...wire].reverse();
    for (const item of order) {
      const size = Buffer.byteLength(item) + 1;
      if (size > budget) break;
      budget -= size;
      n++;
    }
    const kept = keep === 'oldest' ? wire.slice(0, n) : wire.slice(wire.length - n);
    const more = keep === 'oldest' && n < wire.length && n > 0 ? `,"more":true,"next":${JSON.stringify(messages[n - 1].id)}` : '';
    return Buffer.from(`${headText.slice(0, -1)},"history":[${kept.join(',')}]${more}}`);
  }


  /** A transient event to the room's local members but its sender (other instances: through the mesh). */
  private deliverToOthers(room: string, sender: ClientConnection, payload: Buffer): void {
    const frame = encodeTextFrame(payload);
    for (const member of this.gateway.rooms.members(room)) {
      if (member === sender) continue;
      member.sendFrame(frame, payload);
      this.gateway.counters.deliveries++;
    }
  }

  /** A closed connection: every membership ends, and its inbox feed. */
  release(conn: ClientConnection): void {
    for (const [room, user] of conn.rooms) this.leaveRoom(conn, room, user);
    this.inbox.drop(conn);
  }

  /** Ends a membership: the registry, the presence table, and a leave event to the room. */
  leaveRoom(conn: ClientConnection, room: string, user: string): void {
    conn.rooms.delete(room);
    this.gateway.rooms.leave(room, conn);
    const v = this.presence.table.localLeave(conn.id, room);
    this.gateway.broadcast(room, { type: 'presence', event: 'leave', room, user }, conn, { c: conn.id, v });
  }
}
