/**
 * Presence to the local members of a room, batched per turn of the event loop, and counts
 * only in big rooms (as Ably and Centrifugo do for large channels).
 *
 * A join storm sent one frame per member per join: N joins into a room of N cost N² frames.
 * Joins and leaves (this node's, the peers', and those worked out from snapshots or lost
 * nodes) are gathered per room until the end of the turn (setImmediate), then each local
 * member gets one frame: the single-event frame as before when the turn had one event
 * (`{"type":"presence","event":"join","room","user"}`), else
 * `{"type":"presence","room","joined":[…],"left":[…]}` (each name once, as it ended the turn).
 *
 * Above `maxMembers` names (cluster-wide) a room tells counts only:
 * `{"type":"occupancy","room","count"}`, at most once per OCCUPANCY_INTERVAL_MS per room (the
 * last count always follows). Back at or under `maxMembers`, members get the whole list once
 * (`{"type":"members","room","members":[…]}`) and events again.
 */
import type { PresenceTable } from '../core/presence-table.js';
import type { RoomRegistry } from '../core/room-registry.js';
import type { ClientConnection } from './client-connection.js';
import { encodeTextFrame } from './text-frame.js';

/** Shortest time between two occupancy frames of one room. */
export const OCCUPANCY_INTERVAL_MS = 1000;

/** Who is in a room, as `joined` and `members` tell it: the names, or above the limit the count. */
export type MemberView = { members: string[] } | { count: number; truncated: true };

export function memberView(table: PresenceTable, room: string, maxMembers: number): MemberView {
  const count = table.count(room);
  return count > maxMembers ? { count, truncated: true } : { members: table.members(room) };
}

interface PendingRoom {
  /** Events this turn (0: only a re-check of the room's occupancy is due). */
  events: number;
  /** The turn's first event: sent as it is when it is the only one (the joiner does not hear its own join). */
  first: { event: 'join' | 'leave'; user: string; except: ClientConnection | undefined } | null;
  /** user → how the name ended the turn. */
  net: Map<string, 'join' | 'leave'>;
}

interface Occupancy {
  sentCount: number;
  sentAt: number;
  timer: NodeJS.Timeout | null;
}

export class PresenceBatcher {
  private pending = new Map<string, PendingRoom>();
  private scheduled = false;
  /** Rooms telling counts only, on this instance. */
  private readonly occupancy = new Map<string, Occupancy>();

  constructor(
    private readonly rooms: RoomRegistry<ClientConnection>,
    private readonly table: PresenceTable,
    private readonly maxMembers: number,
    private readonly counters: { deliveries: number },
  ) {}

  /** A join or leave the local members of `room` should hear of (`except`: the joiner itself). */
  add(room: string, event: 'join' | 'leave', user: string, except?: ClientConnection): void {
    const pending = this.pendingOf(room);
    if (pending.events++ === 0) pending.first = { event, user, except };
    pending.net.set(user, event);
  }

  /** Rooms in counts-only mode on this instance (for tests and metrics). */
  get occupancyRooms(): number {
    return this.occupancy.size;
  }

  close(): void {
    for (const state of this.occupancy.values()) if (state.timer) clearTimeout(state.timer);
    this.occupancy.clear();
    this.pending.clear();
  }

  private pendingOf(room: string): PendingRoom {
    let pending = this.pending.get(room);
    if (!pending) {
      pending = { events: 0, first: null, net: new Map() };
      this.pending.set(room, pending);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    }
    return pending;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const rooms = this.pending;
    this.pending = new Map();
    for (const [room, pending] of rooms) {
      const members = this.rooms.members(room);
      const state = this.occupancy.get(room);
      if (members.size === 0) {
        if (state) this.endOccupancy(room, state);
        continue;
      }
      const count = this.table.count(room);
      if (count > this.maxMembers) this.tellCount(room, count, state);
      else if (state) {
        // Back under the limit: the whole list stands for every event the members were not told.
        this.endOccupancy(room, state);
        this.send(members, { type: 'members', room, members: this.table.members(room) });
      } else if (pending.events === 1 && pending.first) {
        const { event, user, except } = pending.first;
        this.send(members, { type: 'presence', event, room, user }, except);
      } else if (pending.events > 1) {
        const joined: string[] = [];
        const left: string[] = [];
        for (const [user, event] of pending.net) (event === 'join' ? joined : left).push(user);
        this.send(members, { type: 'presence', room, joined, left });
      }
    }
  };

  /** Counts-only: the count now if the last one went out long enough ago, else once the interval is over. */
  private tellCount(room: string, count: number, state: Occupancy | undefined): void {
    if (!state) {
      state = { sentCount: -1, sentAt: 0, timer: null };
      this.occupancy.set(room, state);
    }
    if (count === state.sentCount || state.timer) return;
    const wait = state.sentAt + OCCUPANCY_INTERVAL_MS - Date.now();
    if (wait > 0) {
      state.timer = setTimeout(() => {
        state.timer = null;
        this.pendingOf(room); // a re-check at the end of this turn, with the count as it is then
      }, wait);
      return;
    }
    state.sentCount = count;
    state.sentAt = Date.now();
    this.send(this.rooms.members(room), { type: 'occupancy', room, count });
  }

  private endOccupancy(room: string, state: Occupancy): void {
    if (state.timer) clearTimeout(state.timer);
    this.occupancy.delete(room);
  }

  /** One encoding for every recipient. */
  private send(members: ReadonlySet<ClientConnection>, frame: object, except?: ClientConnection): void {
    const payload = Buffer.from(JSON.stringify(frame));
    const wire = encodeTextFrame(payload);
    let sent = 0;
    for (const member of members) {
      if (member === except) continue;
      member.sendFrame(wire, payload);
      sent++;
    }
    this.counters.deliveries += sent;
  }
}
