/**
 * Cluster-wide presence, as in Phoenix Presence: no single owner. Every node owns the
 * members connected to it and tells the others; each node keeps one table per origin node,
 * replaced only by a newer version of it. The member list of a room is the union of all
 * tables. When an origin becomes unreachable its table is dropped (its members leave), and
 * when it is reachable again its table comes back through a snapshot exchange.
 *
 * Knows nothing of sockets or the mesh.
 */
import { MAX_FORWARD_JUMP_MS } from './hybrid-clock.js';

/** One member: a connection of an origin node, in a room, under a name. */
export interface PresenceMember {
  conn: number;
  room: string;
  user: string;
}

/** A table as exchanged between nodes. */
export interface PresenceSnapshot {
  origin: string;
  version: number;
  members: PresenceMember[];
}

/** A change the local members of a room should hear about. */
export interface PresenceChange {
  event: 'join' | 'leave';
  room: string;
  user: string;
}

interface OriginTable {
  origin: string;
  version: number;
  /** `${conn}\0${room}` → member */
  members: Map<string, PresenceMember>;
}

const key = (conn: number, room: string) => `${conn}\u0000${room}`;

/**
 * Versions start at the clock in microseconds and grow by one per local join or leave, so a
 * real one is never far ahead of (now + MAX_FORWARD_JUMP_MS) × 1000 unless a node made more
 * than a thousand changes per millisecond for its whole life. A version further ahead is
 * forged or broken: taken, it would freeze that origin's table for good.
 */
export function isPlausibleVersion(version: number, now: number = Date.now()): boolean {
  return Number.isSafeInteger(version) && version >= 0 && version <= (now + MAX_FORWARD_JUMP_MS) * 1000;
}

export class PresenceTable {
  private readonly tables = new Map<string, OriginTable>();
  /** room → user → how many members (connections, any origin) are in the room under that name. */
  private readonly byRoom = new Map<string, Map<string, number>>();
  /** room → origin → how many members it has there: who to send a room's transient events to. */
  private readonly nodesByRoom = new Map<string, Map<string, number>>();
  /** Versions start at the clock so a restarted node (same id) is newer than its old self. */
  private version: number;

  constructor(
    readonly nodeId: string,
    now: () => number = Date.now,
  ) {
    this.version = now() * 1000;
    this.tables.set(nodeId, { origin: nodeId, version: this.version, members: new Map() });
  }

  /** A local connection joined a room; returns the new version of this node's table. */
  localJoin(conn: number, room: string, user: string): number {
    const own = this.tables.get(this.nodeId)!;
    this.put(own, { conn, room, user });
    own.version = ++this.version;
    return own.version;
  }

  /** A local connection left a room; returns the new version. */
  localLeave(conn: number, room: string): number {
    const own = this.tables.get(this.nodeId)!;
    this.remove(own, key(conn, room));
    own.version = ++this.version;
    return own.version;
  }

  /**
   * A join or leave event from another node. Applied only if newer than what we hold of that
   * origin (events and snapshots may cross); returns whether it changed anything.
   */
  applyEvent(origin: string, version: number, event: 'join' | 'leave', member: PresenceMember): boolean {
    if (origin === this.nodeId) return false;
    let table = this.tables.get(origin);
    if (!table) {
      table = { origin, version: 0, members: new Map() };
      this.tables.set(origin, table);
    }
    if (version <= table.version) return false;
    table.version = version;
    if (event === 'join') this.put(table, member);
    else this.remove(table, key(member.conn, member.room));
    return true;
  }

  /** Merges a snapshot of another node's table; returns the changes local members should hear. */
  applySnapshot(snapshot: PresenceSnapshot): PresenceChange[] {
    if (snapshot.origin === this.nodeId) return [];
    const current = this.tables.get(snapshot.origin);
    if (current && snapshot.version <= current.version) return [];
    const next: OriginTable = { origin: snapshot.origin, version: snapshot.version, members: new Map() };
    for (const m of snapshot.members) next.members.set(key(m.conn, m.room), m);
    const changes = this.diff(current?.members ?? new Map(), next.members);
    if (current) this.unindex(current);
    for (const m of next.members.values()) this.index(next.origin, m, 1);
    this.tables.set(snapshot.origin, next);
    return changes;
  }

  /** Drops an origin's table (it is unreachable); returns the leaves local members should hear. */
  dropOrigin(origin: string): PresenceChange[] {
    if (origin === this.nodeId) return [];
    const table = this.tables.get(origin);
    if (!table) return [];
    this.tables.delete(origin);
    this.unindex(table);
    return this.diff(table.members, new Map());
  }

  /** Origins we hold a table of, other than this node. */
  origins(): string[] {
    return [...this.tables.keys()].filter((o) => o !== this.nodeId);
  }

  /** Every table we hold, for a peer that just linked. */
  snapshots(): PresenceSnapshot[] {
    return [...this.tables].map(([origin, t]) => ({ origin, version: t.version, members: [...t.members.values()] }));
  }

  /** The names present in a room, cluster-wide, sorted and without repeats (from the per-room index). */
  members(room: string): string[] {
    const users = this.byRoom.get(room);
    return users ? [...users.keys()].sort() : [];
  }

  /** The nodes (this one included) with at least one member in the room (from the per-room index). */
  nodesIn(room: string): ReadonlySet<string> {
    return new Set(this.nodesByRoom.get(room)?.keys());
  }

  /** How many names are present in a room, cluster-wide (what `members` would list, without listing it). */
  count(room: string): number {
    return this.byRoom.get(room)?.size ?? 0;
  }

  /** Sets a member of a table, keeping the index. */
  private put(table: OriginTable, member: PresenceMember): void {
    const k = key(member.conn, member.room);
    const old = table.members.get(k);
    if (old) this.index(table.origin, old, -1);
    table.members.set(k, member);
    this.index(table.origin, member, 1);
  }

  /** Removes a member of a table, keeping the index. */
  private remove(table: OriginTable, k: string): void {
    const old = table.members.get(k);
    if (!old) return;
    table.members.delete(k);
    this.index(table.origin, old, -1);
  }

  private unindex(table: OriginTable): void {
    for (const m of table.members.values()) this.index(table.origin, m, -1);
  }

  private index(origin: string, member: PresenceMember, delta: 1 | -1): void {
    count(this.byRoom, member.room, member.user, delta);
    count(this.nodesByRoom, member.room, origin, delta);
  }

  private diff(before: Map<string, PresenceMember>, after: Map<string, PresenceMember>): PresenceChange[] {
    const changes: PresenceChange[] = [];
    for (const [k, m] of before) if (!after.has(k)) changes.push({ event: 'leave', room: m.room, user: m.user });
    for (const [k, m] of after) if (!before.has(k)) changes.push({ event: 'join', room: m.room, user: m.user });
    return changes;
  }
}

/** Adds delta to index[room][name], dropping what falls to zero. */
function count(index: Map<string, Map<string, number>>, room: string, name: string, delta: 1 | -1): void {
  let names = index.get(room);
  if (!names) {
    if (delta < 0) return;
    names = new Map();
    index.set(room, names);
  }
  const n = (names.get(name) ?? 0) + delta;
  if (n > 0) names.set(name, n);
  else names.delete(name);
  if (names.size === 0) index.delete(room);
}
