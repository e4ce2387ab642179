/**
 * The one store for rooms and conversations: a conversation id is a room name.
 *
 * Every change is a write (created, message, deleted; the desk's registers: desk-writes.ts) that can be applied on any node, any
 * number of times, in any order, with the same result: messages are keyed by id, deletes
 * are tombstones that win over the message, and bounds (messages per conversation,
 * conversations, TTL) are decided from the data alone, so nodes holding the same writes
 * hold the same state. That is what lets the mesh replicate it without a leader.
 *
 * Bounded twice, never by throwing away what someone wrote: at `maxConversations` a new
 * conversation may only take an empty one's place (eviction.ts); at `maxStoreBytes` new
 * messages and conversations get `store_full` (deletes, which free memory, are taken).
 * Knows nothing of sockets or the mesh.
 */
import { HybridClock, parseTimestampId, timestampId } from './hybrid-clock.js';
import { writeId, type StoreWrite } from './store-write.js';
import { chooseEviction } from './eviction.js';
import { idsOf, writesMissingFrom } from './catch-up-writes.js';
import { applyEdit, applyField, applyRead } from './desk-registers.js';
import { historyOf, recentOf, sentWithClientId } from './conversation-reads.js';
import { isLate, resumeAfter, type ResumeAnswer } from './resume.js';
import { addMessage, addTombstone, compare, digestText, entryBytes, mergeOwner, messageWrite, newConversation, type ApplyResult, type Conversation, type StoredMessage } from './conversation.js';

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
  /** Conversations kept; only empty ones are evicted to make room (see above). */
  maxConversations: number;
  /** Estimated bytes the store may hold; over it, new messages and conversations are refused. */
  maxStoreBytes: number;
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
  /** Sum of every conversation's estimated bytes. */
  private bytes = 0;
  /** Conversations last active at or before this (ms) were evicted (MAX_DISK_BYTES): gone like expired ones. */
  horizon = 0;

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
    return historyOf(this.live(room));
  }

  /** The last `n` messages of a conversation (empty if none). */
  recent(room: string, n: number): StoredMessage[] {
    return recentOf(this.live(room), n);
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

  /** A message as held now (text '' once deleted), as a write; null if not held. */
  placeholderOf(room: string, messageId: string): StoreWrite | null {
    const entry = this.live(room)?.byId.get(messageId);
    return entry ? messageWrite(room, entry) : null;
  }

  /** The message held for a send by `sender` (token sub, else name) with this client id, as a write; null if none. */
  sentWithClientId(room: string, sender: string, cid: string): StoreWrite | null {
    return sentWithClientId(this.live(room), sender, cid);
  }

  hasMessage(room: string, messageId: string): boolean {
    return this.messageTimestamp(room, messageId) !== null;
  }

  /** The customer a conversation belongs to (AUTH=jwt); undefined when none or not held. */
  ownerOf(room: string): string | undefined {
    return this.live(room)?.owner;
  }

  /** The author (token sub) of a (not deleted) message; undefined when none was recorded. */
  authorOf(room: string, messageId: string): string | undefined {
    const entry = this.live(room)?.byId.get(messageId);
    return entry !== undefined && !entry.deleted ? entry.author : undefined;
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
      if (this.now() - ts.wall > this.options.conversationTtlMs || ts.wall <= this.horizon) return 'ignored';
      const fresh = newConversation(write.room, id, ts.wall);
      if (this.bytes + fresh.bytes > this.options.maxStoreBytes) return 'store_full';
      if (this.conversations.size >= this.options.maxConversations) {
        const room = this.makeRoomFor(ts.wall, write.room, write.type !== 'created');
        if (room !== 'made') return room;
      }
      conv = fresh;
      this.conversations.set(write.room, conv);
      this.bytes += conv.bytes;
      if (write.type === 'created') {
        mergeOwner(conv, id, write.owner);
        return 'applied';
      }
    }
    const before = conv.bytes;
    let result: ApplyResult;
    switch (write.type) {
      case 'created':
        mergeOwner(conv, id, write.owner);
        if (id >= conv.createdId) {
          result = 'duplicate';
        } else {
          conv.createdId = id;
          result = 'applied';
        }
        break;
      case 'message': {
        // A message whose delete is here already takes no text: always room for its place.
        if (!conv.byId.has(write.id) && !conv.tombstones.has(write.id) && this.bytes + entryBytes({ id: write.id, sender: write.user, content: write.text, cid: write.cid }) > this.options.maxStoreBytes) {
          result = 'store_full';
          break;
        }
        const arrivedAt = this.now();
        const entry = { id: write.id, sender: write.user, content: write.text, timestamp: write.ts, deleted: false, seq: ++this.arrivals, arrivedAt, late: isLate(path, arrivedAt, ts.wall), ...(write.by !== undefined && { author: write.by }), ...(write.cid !== undefined && { cid: write.cid }) };
        result = addMessage(conv, entry, this.options.maxMessagesPerConversation);
        break;
      }
      case 'deleted':
        result = addTombstone(conv, write.id, write.ts, ts.wall, this.options.maxMessagesPerConversation);
        break;
      case 'field':
        result = applyField(conv, write);
        break;
      case 'read':
        result = applyRead(conv, write);
        break;
      case 'edited':
        result = applyEdit(conv, write, this.options.maxMessagesPerConversation);
        break;
    }
    // Activity (the TTL and eviction clock) is the latest clock time of every write received
    // for the conversation, whatever it changed: a maximum over a set, so every node holding
    // the same writes agrees, whatever order they came in.
    if (ts.wall > conv.lastActivity && result !== 'store_full') conv.lastActivity = ts.wall;
    if (ts.wall > conv.updatedAt && result !== 'store_full' && write.type !== 'read') conv.updatedAt = ts.wall;
    this.bytes += conv.bytes - before;
    return result;
  }

  /** Removes expired conversations; returns their ids. */
  sweep(): string[] {
    const removed: string[] = [];
    for (const conv of this.conversations.values()) {
      if (this.isExpired(conv)) {
        this.remove(conv);
        removed.push(conv.id);
      }
    }
    return removed;
  }

  /** One entry per live conversation, for catch-up; `desk` false: digests without the registers (a peer without the desk). */
  summary(desk = true): SummaryEntry[] {
    const out: SummaryEntry[] = [];
    for (const conv of this.liveConversations()) out.push({ c: conv.id, d: digestText(conv, desk), a: conv.lastActivity });
    return out;
  }

  /** Digest of one conversation ('' if we do not hold it); `desk` as for summary. */
  digestOf(room: string, desk = true): string {
    const conv = this.live(room);
    return conv ? digestText(conv, desk) : '';
  }

  /** Ids of every message and tombstone (prefixed `t:`) we hold for a conversation. */
  idsOf(room: string): string[] {
    const conv = this.live(room);
    return conv ? idsOf(conv) : [];
  }

  /** The writes a peer holding `theirIds` (as from idsOf) lacks for this conversation. */
  writesMissingFrom(room: string, theirIds: ReadonlySet<string>): StoreWrite[] {
    const conv = this.live(room);
    return conv ? writesMissingFrom(conv, theirIds, this.nodeId) : [];
  }

  stats(): { conversations: number; messages: number; tombstones: number } {
    const out = { conversations: this.conversations.size, messages: 0, tombstones: 0 };
    for (const conv of this.conversations.values()) {
      out.messages += conv.visible;
      out.tombstones += conv.tombstones.size;
    }
    return out;
  }

  /** Estimated memory held, and the budget (MAX_STORE_BYTES). */
  usage(): { bytes: number; maxBytes: number } {
    return { bytes: this.bytes, maxBytes: this.options.maxStoreBytes };
  }

  /** A live conversation as held (read only: for the queries of inbox.ts), or null. */
  conversation(room: string): Readonly<Conversation> | null {
    return this.live(room);
  }
  *liveConversations(): Iterable<Readonly<Conversation>> {
    for (const conv of this.conversations.values()) if (!this.isExpired(conv)) yield conv;
  }

  private live(room: string): Conversation | null {
    const conv = this.conversations.get(room);
    return conv && !this.isExpired(conv) ? conv : null;
  }

  private isExpired(conv: Conversation): boolean {
    return this.now() - conv.lastActivity > this.options.conversationTtlMs || conv.lastActivity <= this.horizon;
  }

  /** Removes the least recently active conversations (those tied with it too), as if expired (see horizon); their ids. */
  evictOldest(): string[] {
    let oldest: Conversation | null = null;
    for (const conv of this.conversations.values()) if (!oldest || conv.lastActivity < oldest.lastActivity) oldest = conv;
    if (!oldest) return [];
    this.horizon = Math.max(this.horizon, oldest.lastActivity);
    return this.sweep();
  }

  /** Frees a place for a new conversation (see eviction.ts for the rule). */
  private makeRoomFor(wall: number, room: string, withContent: boolean): 'made' | 'ignored' | 'store_full' {
    const choice = chooseEviction(this.conversations.values(), wall, room, withContent);
    if ('refuse' in choice) return choice.refuse;
    this.remove(choice.victim);
    return 'made';
  }

  private remove(conv: Conversation): void {
    if (this.conversations.delete(conv.id)) this.bytes -= conv.bytes;
  }
}
