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
import { isLate, resumeAfter, type ResumeAnswer } from './resume.js';
import { addMessage, addTombstone, compare, digestText, newConversation, publicMessage, type ApplyResult, type Conversation, type StoredMessage } from './conversation.js';

export type { StoreWrite } from './store-write.js';
export type { ApplyResult, StoredMessage } from './conversation.js';
export type { ResumeAnswer } from './resume.js';

/** How a write reached this store: live (made here, or flooded by a peer) or by catch-up. */
export type WritePath = 'live' | 'catch-up';

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

export class ConversationStore {
  private readonly conversations = new Map<string, Conversation>();
  /** Arrival counter for messages (see Entry.seq). */
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

  /** What a client that saw `sinceId` anywhere may have missed (see resume.ts). */
  resumeAfter(room: string, sinceId: string): ResumeAnswer {
    return resumeAfter(this.live(room), sinceId);
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
      conv = newConversation(write.room, id, ts.wall);
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
        const entry = { id: write.id, sender: write.user, content: write.text, timestamp: write.ts, deleted: false, seq: ++this.arrivals, arrivedAt, late: isLate(path, arrivedAt, ts.wall) };
        result = addMessage(conv, entry, this.options.maxMessagesPerConversation);
        break;
      }
      case 'deleted':
        result = addTombstone(conv, write.id, write.ts, ts.wall, this.options.maxMessagesPerConversation);
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
