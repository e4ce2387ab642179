/** What the client keeps per room it is in: where it is in the room's order, and its waiters. */
import type { ChatMessage, MessageFrame } from './frames.js';

export interface JoinedInfo {
  room: string;
  user: string;
  members: string[];
  /** A big room (over PRESENCE_MAX_MEMBERS): how many are in it (`members` is then empty). */
  count?: number;
  /** The resume could not be answered whole: messages may have been missed. */
  gap: boolean;
}

export class RoomState {
  /** The newest message seen: a reconnect resumes after it (`since`). */
  lastId: string | undefined;
  private lastTs = -Infinity;
  /** The name the server joined us with. */
  user: string | undefined;
  members = new Set<string>();
  /** Set in a big room, where the server tells counts only. */
  count: number | undefined;
  /** The socket this room's (last) join completed on; null while (re)joining. */
  joinedOn: object | null = null;
  /** A paged resume is under way: live messages wait in `buffered` so they come after it. */
  resuming = false;
  buffered: MessageFrame[] = [];
  /** Whether a join ever completed (a failing re-join is not the app's join failing). */
  everJoined = false;
  /** A gap was reported during the current (re)join. */
  gap = false;
  waiters: Array<{ resolve(info: JoinedInfo): void; reject(error: Error): void }> = [];
  membersWaiters: Array<{ resolve(members: string[]): void; reject(error: Error): void }> = [];
  leaveWaiters: Array<() => void> = [];

  constructor(readonly name: string, since?: string) {
    this.lastId = since;
  }

  /** Moves the resume point forward when `m` sorts after it. */
  saw(m: Pick<ChatMessage, 'id' | 'ts'>): void {
    if (this.lastId === undefined || m.ts > this.lastTs || (m.ts === this.lastTs && m.id > this.lastId)) {
      this.lastId = m.id;
      this.lastTs = m.ts;
    }
  }

  /** Replaces the member list (`count`: a big room, over PRESENCE_MAX_MEMBERS, tells how many, not who); the `members` event. */
  setMembers(members: string[], count?: number): { room: string; members: string[]; count?: number } {
    this.members = new Set(members);
    this.count = count;
    return { room: this.name, members: [...this.members].sort(), ...(count !== undefined && { count }) };
  }

  info(): JoinedInfo {
    return { room: this.name, user: this.user ?? '', members: [...this.members].sort(), ...(this.count !== undefined && { count: this.count }), gap: this.gap };
  }

  /** The socket closed: the join must be done again, and a half-done paged resume starts over. */
  disconnected(error: Error): void {
    for (const w of this.membersWaiters.splice(0)) w.reject(error);
    for (const resolve of this.leaveWaiters.splice(0)) resolve();
    this.joinedOn = null;
    this.resuming = false;
    // Newer than the pages not received yet: delivering them now would skip those pages.
    this.buffered = [];
    this.gap = false;
  }
}
