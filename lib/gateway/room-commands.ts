/**
 * What each client frame does, once decoded and validated: join (with history or a resume),
 * leave, members, message. The rooms themselves and the delivery of events are the gateway's.
 */
import type { ChatmeshOptions } from '../config.js';
import type { ConversationStore, StoredMessage } from '../core/conversation-store.js';
import type { RoomRegistry } from '../core/room-registry.js';
import { ClientErrorCode } from '../errors.js';
import type { PresenceMeta } from '../mesh/envelope.js';
import type { ClientFrame, RoomEvent } from '../protocol/client-frames.js';
import type { ClusterPresence } from '../replication/cluster-presence.js';
import type { Replicator } from '../replication/replicator.js';
import type { ClientConnection } from './client-connection.js';

/** The gateway as the commands see it. */
export interface CommandGateway {
  readonly rooms: RoomRegistry<ClientConnection>;
  readonly counters: { messagesIn: number };
  broadcast(room: string, event: RoomEvent, except?: ClientConnection, presence?: PresenceMeta): void;
  sendError(conn: ClientConnection, code: string, message: string): void;
}

export class RoomCommands {
  constructor(
    private readonly options: Pick<ChatmeshOptions, 'maxRoomsPerConnection' | 'historyOnJoin'>,
    private readonly gateway: CommandGateway,
    private readonly store: ConversationStore,
    private readonly replicator: Replicator,
    private readonly presence: ClusterPresence,
  ) {}

  /** Carries out one decoded client frame. */
  dispatch(conn: ClientConnection, frame: ClientFrame): void {
    switch (frame.type) {
      case 'join': {
        const current = conn.rooms.get(frame.room);
        if (current !== undefined) {
          if (current !== frame.user) {
            this.gateway.sendError(conn, ClientErrorCode.AlreadyJoined, `already in ${frame.room} as ${current}`);
            return;
          }
          conn.send(this.joinedFrame(frame.room, current, frame.since));
          return;
        }
        if (conn.rooms.size >= this.options.maxRoomsPerConnection) {
          this.gateway.sendError(conn, ClientErrorCode.TooManyRooms, `at most ${this.options.maxRoomsPerConnection} rooms per connection`);
          return;
        }
        // Joining a room that does not exist creates it (it is also a conversation).
        if (!this.store.has(frame.room)) this.replicator.commit({ type: 'created', room: frame.room, id: this.store.nextId() });
        conn.rooms.set(frame.room, frame.user);
        this.gateway.rooms.join(frame.room, conn);
        const v = this.presence.table.localJoin(conn.id, frame.room, frame.user);
        conn.send(this.joinedFrame(frame.room, frame.user, frame.since));
        this.gateway.broadcast(frame.room, { type: 'presence', event: 'join', room: frame.room, user: frame.user }, conn, { c: conn.id, v });
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
        conn.send(Buffer.from(JSON.stringify({ type: 'members', room: frame.room, members: this.presence.table.members(frame.room) })));
        return;
      }
      case 'message': {
        const user = conn.rooms.get(frame.room);
        if (user === undefined) {
          this.gateway.sendError(conn, ClientErrorCode.NotJoined, `join ${frame.room} before sending to it`);
          return;
        }
        if (frame.user !== undefined && frame.user !== user) {
          this.gateway.sendError(conn, ClientErrorCode.UserMismatch, `you joined ${frame.room} as ${user}`);
          return;
        }
        this.gateway.counters.messagesIn++;
        // The id carries a hybrid logical clock: (ts, id) order keeps causality cluster-wide.
        const stamp = this.store.nextStamp();
        this.gateway.broadcast(frame.room, { type: 'message', id: stamp.id, room: frame.room, user, text: frame.text, ts: stamp.wall });
        return;
      }
    }
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
  private joinedFrame(room: string, user: string, since: string | undefined): Buffer {
    const wire = (m: StoredMessage) => ({ id: m.id, user: m.sender, text: m.content, ts: m.timestamp });
    if (since !== undefined) {
      const answer = this.store.resumeAfter(room, since);
      const members = this.presence.table.members(room);
      if (answer.complete) return Buffer.from(JSON.stringify({ type: 'joined', room, user, members, since, gap: false, history: answer.messages.map(wire) }));
      const history = this.store.recent(room, this.options.historyOnJoin).map(wire);
      return Buffer.from(JSON.stringify({ type: 'joined', room, user, members, since, gap: true, history }));
    }
    const history = this.store.recent(room, this.options.historyOnJoin).map(wire);
    return Buffer.from(JSON.stringify({ type: 'joined', room, user, members: this.presence.table.members(room), history }));
  }

  /** Ends a membership: the registry, the presence table, and a leave event to the room. */
  leaveRoom(conn: ClientConnection, room: string, user: string): void {
    conn.rooms.delete(room);
    this.gateway.rooms.leave(room, conn);
    const v = this.presence.table.localLeave(conn.id, room);
    this.gateway.broadcast(room, { type: 'presence', event: 'leave', room, user }, conn, { c: conn.id, v });
  }
}
