/**
 * Presence snapshots on the wire: how this node's tables are cut into sync frames well under
 * the largest peer frame, how a peer's are checked, and how the parts of a table too big for
 * one frame are put back together.
 *
 * Whole tables go as before, `{"k":"presence","tables":[…]}`, as many per frame as fit, so an
 * older node understands every table that fits in a frame. A table bigger than a frame alone
 * goes as a sequence of `presence-part` frames (same origin and version, parts numbered from 0,
 * the last one flagged); the receiver keeps the parts aside and applies the table once the
 * last arrived, as one snapshot: "a snapshot replaces the origin's table" holds, and no one
 * sees half a table. An older node drops `presence-part` as an unknown kind and keeps the link
 * (it misses that one big table until the origin's live events, which is what it had before,
 * minus the link dropping again and again).
 */
import { isValidName } from '../core/store-write.js';
import { isPlausibleVersion, type PresenceMember, type PresenceSnapshot } from '../core/presence-table.js';
import { ID_PATTERN } from '../mesh/envelope.js';
import type { PresencePart, SyncFrame } from './sync-codec.js';

/** Tables per `presence` frame at most (as for a links advertisement). */
export const MAX_TABLES_PER_FRAME = 1024;
/** Members of one table at most; more is not a table, it is a flood (a node has at most MAX_CONNECTIONS × MAX_ROOMS_PER_CONNECTION). */
export const MAX_SNAPSHOT_MEMBERS = 1_000_000;
/** Sequences of parts a peer may have under way at once (two links of one peer can cross for a moment). */
const MAX_SEQUENCES_PER_PEER = 2;

/** The frames that carry these tables, each with at most about `maxBytes` of members. */
export function snapshotFrames(snapshots: PresenceSnapshot[], maxBytes: number, nextSequence: () => number): SyncFrame[] {
  const frames: SyncFrame[] = [];
  let batch: PresenceSnapshot[] = [];
  let bytes = 0;
  const flush = () => {
    if (batch.length > 0) frames.push({ k: 'presence', tables: batch });
    batch = [];
    bytes = 0;
  };
  for (const snapshot of snapshots) {
    const sizes = snapshot.members.map((m) => Buffer.byteLength(JSON.stringify(m)) + 1);
    const size = sizes.reduce((a, b) => a + b, 100 + snapshot.origin.length);
    if (size <= maxBytes) {
      if (bytes + size > maxBytes || batch.length >= MAX_TABLES_PER_FRAME) flush();
      batch.push(snapshot);
      bytes += size;
      continue;
    }
    // Too big for a frame of its own: parts, each with at least one member.
    const id = nextSequence();
    let part: PresenceMember[] = [];
    let partBytes = 0;
    let n = 0;
    const head = { k: 'presence-part' as const, id, origin: snapshot.origin, version: snapshot.version };
    snapshot.members.forEach((m, i) => {
      if (part.length > 0 && partBytes + sizes[i] > maxBytes - 200) {
        frames.push({ ...head, n: n++, last: false, members: part });
        part = [];
        partBytes = 0;
      }
      part.push(m);
      partBytes += sizes[i];
    });
    frames.push({ ...head, n, last: true, members: part });
  }
  flush();
  return frames;
}

/** Members from a peer, checked like a client's join (names within MAX_NAME_LENGTH, connections whole numbers); null if any is not one. */
export function decodeMembers(values: unknown[], maxNameLength: number): PresenceMember[] | null {
  const members: PresenceMember[] = [];
  for (const value of values) {
    const m = value as Record<string, unknown> | null;
    if (typeof m !== 'object' || m === null) return null;
    if (typeof m.conn !== 'number' || !Number.isSafeInteger(m.conn) || m.conn < 0) return null;
    if (!isValidName(m.room, maxNameLength) || !isValidName(m.user, maxNameLength)) return null;
    members.push({ conn: m.conn, room: m.room, user: m.user });
  }
  return members;
}

/** An origin id and a version a peer may tell us about. */
export function validTableHead(origin: unknown, version: unknown, now: number = Date.now()): boolean {
  return typeof origin === 'string' && ID_PATTERN.test(origin) && typeof version === 'number' && isPlausibleVersion(version, now);
}

/** A whole table from a `presence` frame; null if anything in it is out of bounds. */
export function decodeSnapshot(value: unknown, maxNameLength: number): PresenceSnapshot | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!validTableHead(v.origin, v.version) || !Array.isArray(v.members) || v.members.length > MAX_SNAPSHOT_MEMBERS) return null;
  const members = decodeMembers(v.members, maxNameLength);
  return members ? { origin: v.origin as string, version: v.version as number, members } : null;
}

interface Sequence {
  peer: string;
  origin: string;
  version: number;
  next: number;
  members: PresenceMember[];
}

/** The parts of tables under way, per peer, until their last part. */
export class SnapshotParts {
  private readonly sequences = new Map<string, Sequence>();

  constructor(private readonly maxNameLength: number) {}

  /**
   * Adds a part. Returns the whole table when this was its last part, null while more are to
   * come, and 'invalid' for a part out of bounds or out of order (its sequence is dropped).
   */
  add(peer: string, part: PresencePart): PresenceSnapshot | null | 'invalid' {
    const key = `${peer}\u0000${part.id}`;
    const members = decodeMembers(part.members, this.maxNameLength);
    let sequence = this.sequences.get(key);
    if (part.n === 0) {
      sequence = { peer, origin: part.origin, version: part.version, next: 0, members: [] };
      if (!validTableHead(part.origin, part.version)) sequence = undefined;
    }
    const fits = sequence && members && part.n === sequence.next && part.origin === sequence.origin && part.version === sequence.version;
    if (!fits || sequence!.members.length + members!.length > MAX_SNAPSHOT_MEMBERS) {
      this.sequences.delete(key);
      return 'invalid';
    }
    const s = sequence!;
    for (const m of members!) s.members.push(m);
    s.next++;
    if (part.last) {
      this.sequences.delete(key);
      return { origin: s.origin, version: s.version, members: s.members };
    }
    if (part.n === 0) this.start(key, s);
    return null;
  }

  /** Drops what a peer had under way (its link went down). */
  forget(peer: string): void {
    for (const [key, s] of this.sequences) if (s.peer === peer) this.sequences.delete(key);
  }

  /** Under way now (for tests). */
  get size(): number {
    return this.sequences.size;
  }

  private start(key: string, sequence: Sequence): void {
    this.sequences.delete(key);
    const mine = [...this.sequences].filter(([, s]) => s.peer === sequence.peer);
    // The oldest of this peer's sequences gives way (a Map keeps insertion order).
    for (let i = 0; i <= mine.length - MAX_SEQUENCES_PER_PEER; i++) this.sequences.delete(mine[i][0]);
    this.sequences.set(key, sequence);
  }
}
