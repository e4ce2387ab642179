/**
 * The one store for rooms and conversations: a conversation id is a room name.
 *
 * Every change is a write (created, message, deleted) that can be applied on any node, any
 * number of times, in any order, with the same result: messages are keyed by id, deletes
 * are tombstones that win over the message, and bounds (messages per conversation,
 * conversations, TTL) are decided from the data alone, so nodes holding the same writes
 * hold the same state. That is what lets the mesh replicate it without a leader.
 *
 * Knows nothing of sockets or the mesh.
 */
import { HybridClock, parseTimestampId, timestampId } from './hybrid-clock.js';
import { writeId, type StoreWrite } from './store-write.js';

export type { StoreWrite } from './store-write.js';

export interface StoredMessage {
  id: string;
  sender: string;
  content: string;
  /** Milliseconds since the epoch; the history is ordered by (timestamp, id). */
  timestamp: number;
}

export type ApplyResult = 'applied' | 'duplicate' | 'ignored';

export interface StoreOptions {
  /** A conversation with no write for this long is removed. */
  conversationTtlMs: number;
  /** Messages kept per conversation; the oldest (by timestamp, id) go first. */
  maxMessagesPerConversation: number;
  /** Conversations kept; the least recently active go first. */
  maxConversations: number;
}

/** One line of a catch-up summary: enough to tell whether two nodes hold the same conversation. */
export interface SummaryEntry {
  c: string;
  /** XOR of a hash of every message id and tombstone: equal sets give equal digests. */
  d: string;
  /** Last activity, ms. */
  a: number;
}

/**
 * A message, or the place of a deleted one. Deleted messages keep their place in the window
 * of the newest `maxMessagesPerConversation`, so which messages are kept does not depend on
 * whether a delete arrived before or after a newer message pushed an old one out.
 */
interface Entry extends StoredMessage {
  deleted: boolean;
  /** Local arrival order on this instance (a per-store counter), for resume. */
  seq: number;
  /** Local wall time of arrival, ms. */
  arrivedAt: number;
  /** Arrived here late: through catch-up, or long after it was written (see resumeAfter). */
  late: boolean;
}

/** How a write reached this store: live (made here, or flooded by a peer) or by catch-up. */
export type WritePath = 'live' | 'catch-up';

/** The answer to a resume (see resumeAfter). */
export type ResumeAnswer =
  | { complete: true; messages: StoredMessage[] }
  | { complete: false };

interface Conversation {
  id: string;
  createdId: string;
  lastActivity: number;
  /** Sorted by (timestamp, id), deleted placeholders included. */
  messages: Entry[];
  byId: Map<string, Entry>;
  /** Entries not deleted. */
  visible: number;
  /** message id → the deleted message's timestamp (its place in the order) and the delete's wall time. */
  tombstones: Map<string, { ts: number; at: number }>;
  /** Tombstones whose message has not arrived here (yet). */
  orphanTombstones: number;
  /** Set digest: XOR of a 64-bit hash of every entry and tombstone id, in two 32-bit lanes. */
  digestHi: number;
  digestLo: number;
}

export class ConversationStore {
  private readonly conversations = new Map<string, Conversation>();
  /** Arrival counter for entries (see Entry.seq). */
  private arrivals = 0;

  constructor(
    private readonly options: StoreOptions,
    private readonly nodeId: string,
    readonly clock: HybridClock = new HybridClock(),
    private readonly now: () => number = Date.now,
  ) {}

  /** A fresh id that sorts after everything this node has issued or seen. */
  nextId(): string {
    return timestampId(this.clock.tick(), this.nodeId);
  }

  /** A fresh id and the wall time inside it (a message's default timestamp). */
  nextStamp(): { id: string; wall: number } {
    const ts = this.clock.tick();
    return { id: timestampId(ts, this.nodeId), wall: ts.wall };
  }

  has(room: string): boolean {
    return this.live(room) !== null;
  }

  /** The history of a conversation in order, or null if there is no such conversation. */
  history(room: string): StoredMessage[] | null {
    const conv = this.live(room);
    return conv ? conv.messages.filter((m) => !m.deleted).map(publicMessage) : null;
  }

  /** The last `n` messages of a conversation (empty if none). */
  recent(room: string, n: number): StoredMessage[] {
    const conv = this.live(room);
    if (!conv) return [];
    const out: StoredMessage[] = [];
    for (let i = conv.messages.length - 1; i >= 0 && out.length < n; i--) {
      if (!conv.messages[i].deleted) out.push(publicMessage(conv.messages[i]));
    }
    return out.reverse();
  }

  /**
   * What a client that saw `sinceId` (on this instance or any other) may have missed, for a
   * resume. Sorting after `sinceId` is not enough: a message can sort before it and still
   * reach the client's old instance after the client left (a concurrent write from another
   * instance a few ms away, a backdated post, the other side of a healed partition). So the
   * answer also holds every message sorting before `sinceId` that arrived here after it, or
   * from another origin within `RESUME_WINDOW_MS` before it (the client dedupes those by id). When
   * `sinceId` is unknown, or itself arrived here late (by catch-up, or more than
   * `RESUME_WINDOW_MS` after it was written), this instance cannot tell what the client missed:
   * `complete: false`, and the caller says `gap`.
   */
  resumeAfter(room: string, sinceId: string): ResumeAnswer {
    const conv = this.live(room);
    const since = conv?.byId.get(sinceId);
    if (!conv || !since || since.late) return { complete: false };
    const origin = originOf(since.id);
    const windowStart = since.arrivedAt - RESUME_WINDOW_MS;
    const out: StoredMessage[] = [];
    let after = false;
    for (const m of conv.messages) {
      if (m === since) {
        after = true;
        continue;
      }
      if (m.deleted) continue;
      if (after || m.seq > since.seq || (m.arrivedAt >= windowStart && originOf(m.id) !== origin)) out.push(publicMessage(m));
    }
    return { complete: true, messages: out };
  }

  /** False when a message at `timestamp` would fall before every message of a full conversation. */
  acceptsMessageAt(room: string, timestamp: number, id: string): boolean {
    const conv = this.live(room);
    if (!conv || conv.messages.length < this.options.maxMessagesPerConversation) return true;
    return compare({ timestamp, id }, conv.messages[0]) > 0;
  }

  hasMessage(room: string, messageId: string): boolean {
    return this.messageTimestamp(room, messageId) !== null;
  }

  /** The timestamp of a (not deleted) message, or null. */
  messageTimestamp(room: string, messageId: string): number | null {
    const entry = this.live(room)?.byId.get(messageId);
    return entry !== undefined && !entry.deleted ? entry.timestamp : null;
  }

  /**
   * Applies a write, from this node or any other. Idempotent and order-independent.
   * `path` only records how it came (for resume), never changes what is stored.
   */
  apply(write: StoreWrite, path: WritePath = 'live'): ApplyResult {
    const id = writeId(write);
    const ts = parseTimestampId(id);
    if (!ts) return 'ignored';
    this.clock.observe(ts);
    let conv = this.live(write.room);
    if (!conv) {
      // A write older than the TTL for a conversation we do not hold: it expired (or would
      // at once). Never bring it back.
      if (this.now() - ts.wall > this.options.conversationTtlMs) return 'ignored';
      // At the bound, a conversation less recently active than every one we keep would be
      // the next to go: keep the set we have (the same on every node holding these writes).
      if (this.conversations.size >= this.options.maxConversations && !this.makeRoomFor(ts.wall, write.room)) return 'ignored';
      conv = { id: write.room, createdId: id, lastActivity: ts.wall, messages: [], byId: new Map(), visible: 0, tombstones: new Map(), orphanTombstones: 0, digestHi: 0, digestLo: 0 };
      this.conversations.set(write.room, conv);
      if (write.type === 'created') return 'applied';
    }
    let result: ApplyResult;
    switch (write.type) {
      case 'created':
        if (id >= conv.createdId) {
          result = 'duplicate';
        } else {
          conv.createdId = id;
          result = 'applied';
        }
        break;
      case 'message': {
        const arrivedAt = this.now();
        const late = path === 'catch-up' || arrivedAt - ts.wall > RESUME_WINDOW_MS;
        result = this.addMessage(conv, { id: write.id, sender: write.user, content: write.text, timestamp: write.ts, deleted: false, seq: ++this.arrivals, arrivedAt, late });
        break;
      }
        break;
      case 'deleted':
        result = this.addTombstone(conv, write.id, write.ts, ts.wall);
        break;
    }
    // Activity (the TTL and eviction clock) is the latest clock time of every write received
    // for the conversation, whatever it changed: a maximum over a set, so every node holding
    // the same writes agrees, whatever order they came in.
    if (ts.wall > conv.lastActivity) conv.lastActivity = ts.wall;
    return result;
  }

  /** Removes expired conversations; returns their ids. */
  sweep(): string[] {
    const removed: string[] = [];
    for (const conv of this.conversations.values()) {
      if (this.isExpired(conv)) {
        this.conversations.delete(conv.id);
        removed.push(conv.id);
      }
    }
    return removed;
  }

  /** One entry per live conversation, for catch-up. */
  summary(): SummaryEntry[] {
    const out: SummaryEntry[] = [];
    for (const conv of this.conversations.values()) {
      if (this.isExpired(conv)) continue;
      out.push({ c: conv.id, d: digestText(conv), a: conv.lastActivity });
    }
    return out;
  }

  /** Digest of one conversation ('' if we do not hold it). */
  digestOf(room: string): string {
    const conv = this.live(room);
    return conv ? digestText(conv) : '';
  }

  /** Ids of every message and tombstone (prefixed `t:`) we hold for a conversation. */
  idsOf(room: string): string[] {
    const conv = this.live(room);
    if (!conv) return [];
    return [...conv.byId.keys(), ...[...conv.tombstones.keys()].map((id) => 't:' + id)];
  }

  /** The writes a peer holding `theirIds` (as from idsOf) lacks for this conversation. */
  writesMissingFrom(room: string, theirIds: ReadonlySet<string>): StoreWrite[] {
    const conv = this.live(room);
    if (!conv) return [];
    const out: StoreWrite[] = [{ type: 'created', room, id: conv.createdId }];
    // Tombstones first: a deleted message's placeholder that arrives after its tombstone
    // takes its place as deleted, never as an empty visible message.
    for (const [id, t] of conv.tombstones) {
      if (!theirIds.has('t:' + id)) out.push({ type: 'deleted', room, id, ts: t.ts, at: timestampId({ wall: t.at, counter: 0 }, this.nodeId) });
    }
    // Deleted placeholders too: the peer needs their place in the window, not their text.
    for (const m of conv.messages) if (!theirIds.has(m.id)) out.push(messageWrite(room, m));
    return out;
  }

  stats(): { conversations: number; messages: number; tombstones: number } {
    let messages = 0;
    let tombstones = 0;
    for (const conv of this.conversations.values()) {
      messages += conv.visible;
      tombstones += conv.tombstones.size;
    }
    return { conversations: this.conversations.size, messages, tombstones };
  }

  private live(room: string): Conversation | null {
    const conv = this.conversations.get(room);
    return conv && !this.isExpired(conv) ? conv : null;
  }

  private isExpired(conv: Conversation): boolean {
    return this.now() - conv.lastActivity > this.options.conversationTtlMs;
  }

  private addMessage(conv: Conversation, message: Entry): ApplyResult {
    if (conv.byId.has(message.id)) return 'duplicate';
    const max = this.options.maxMessagesPerConversation;
    if (conv.messages.length >= max && compare(message, conv.messages[0]) < 0) return 'ignored';
    if (conv.tombstones.has(message.id)) {
      // Deleted before it arrived: it takes its place, as deleted.
      message.deleted = true;
      message.content = '';
      conv.orphanTombstones--;
    }
    conv.messages.splice(insertionIndex(conv.messages, message), 0, message);
    conv.byId.set(message.id, message);
    if (!message.deleted) conv.visible++;
    toggle(conv, message.id);
    if (conv.messages.length >= max) this.trim(conv, max);
    return 'applied';
  }

  /** Drops the oldest entries over the bound, with their tombstones and any older ones. */
  private trim(conv: Conversation, max: number): void {
    while (conv.messages.length > max) {
      const dropped = conv.messages.shift()!;
      conv.byId.delete(dropped.id);
      toggle(conv, dropped.id);
      if (dropped.deleted) this.dropTombstone(conv, dropped.id);
      else conv.visible--;
    }
    if (conv.orphanTombstones === 0) return;
    // Deletes of messages never seen here that sort before the window are moot too.
    const oldest = conv.messages[0];
    for (const [id, t] of conv.tombstones) {
      if (!conv.byId.has(id) && compare({ timestamp: t.ts, id }, oldest) < 0) {
        this.dropTombstone(conv, id);
        conv.orphanTombstones--;
      }
    }
  }

  private addTombstone(conv: Conversation, messageId: string, messageTs: number, wall: number): ApplyResult {
    if (conv.tombstones.has(messageId)) return 'duplicate';
    // A delete of a message older than everything a full conversation keeps changes nothing.
    const full = conv.messages.length >= this.options.maxMessagesPerConversation;
    if (full && !conv.byId.has(messageId) && compare({ timestamp: messageTs, id: messageId }, conv.messages[0]) < 0) return 'ignored';
    conv.tombstones.set(messageId, { ts: messageTs, at: wall });
    toggle(conv, 't:' + messageId);
    const entry = conv.byId.get(messageId);
    if (!entry) {
      conv.orphanTombstones++;
    } else if (!entry.deleted) {
      conv.visible--;
      entry.deleted = true;
      entry.content = '';
    }
    return 'applied';
  }

  private dropTombstone(conv: Conversation, id: string): void {
    if (conv.tombstones.delete(id)) toggle(conv, 't:' + id);
  }

  /**
   * Frees a place for a new conversation active at `wall` by evicting the least recently
   * active one, unless the new one is less recent still (then it is not kept).
   */
  private makeRoomFor(wall: number, room: string): boolean {
    let victim: Conversation | null = null;
    for (const conv of this.conversations.values()) {
      if (!victim || conv.lastActivity < victim.lastActivity || (conv.lastActivity === victim.lastActivity && conv.id < victim.id)) victim = conv;
    }
    if (!victim) return true;
    if (wall < victim.lastActivity || (wall === victim.lastActivity && room < victim.id)) return false;
    this.conversations.delete(victim.id);
    return true;
  }
}

export function messageWrite(room: string, m: StoredMessage): StoreWrite {
  return { type: 'message', id: m.id, room, user: m.sender, text: m.content, ts: m.timestamp };
}

/**
 * How far apart two instances may receive the same live message (flooding, a slow link up
 * to the peer timeout): a message arriving later than this after it was written is late,
 * and a resume replays messages from other origins that arrived this close before `since`.
 */
export const RESUME_WINDOW_MS = 5000;

/** The node that wrote an id (the part after the clock, see timestampId). */
function originOf(id: string): string {
  return id.slice(id.indexOf('-') + 1);
}

function publicMessage(e: Entry): StoredMessage {
  return { id: e.id, sender: e.sender, content: e.content, timestamp: e.timestamp };
}

function compare(a: Pick<StoredMessage, 'timestamp' | 'id'>, b: Pick<StoredMessage, 'timestamp' | 'id'>): number {
  if (a.timestamp !== b.timestamp) return a.timestamp - b.timestamp;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Where a message goes in a sorted history; new messages usually go last, so search from the end. */
function insertionIndex(list: StoredMessage[], message: StoredMessage): number {
  if (list.length === 0 || compare(list[list.length - 1], message) < 0) return list.length;
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(list[mid], message) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Adds or removes (XOR) an id's hash in the conversation's set digest. The hash is two
 * independent 32-bit FNV-1a-style lanes with a final mix: not cryptographic (peers are
 * trusted), only there to tell two sets apart, and cheap enough to run on every message.
 */
function toggle(conv: Conversation, text: string): void {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  b ^= b >>> 15;
  b = Math.imul(b, 0xc2b2ae35);
  b ^= b >>> 16;
  conv.digestHi = (conv.digestHi ^ a) >>> 0;
  conv.digestLo = (conv.digestLo ^ b) >>> 0;
}

function digestText(conv: Conversation): string {
  return conv.digestHi.toString(16).padStart(8, '0') + conv.digestLo.toString(16).padStart(8, '0');
}
