/**
 * The inbox feed: `{"type":"inbox"}` subscribes a connection (agents and services; without
 * auth anyone) to `{"type":"inbox","item"}`, the inbox item of each conversation a stored
 * write changed (made here, by a peer, or in catch-up), exactly as GET /api/conversations
 * gives it to that caller, and `{"type":"inbox","removed":id}` when one expired.
 *
 * Coalesced: changes are gathered and pushed at most every INBOX_FLUSH_MS, at most
 * INBOX_FLUSH_MAX_ROOMS conversations a flush (the rest wait for the next), so a storm of
 * messages costs one item per conversation per subscriber per flush, never one per message.
 * Each item is built once per reader (without auth: once for all) and written like room
 * events, through the connection's send-buffer limits (a subscriber that does not read is cut).
 */
import { conversationItem, unreadCount } from '../core/inbox.js';
import type { ConversationStore } from '../core/conversation-store.js';
import { ClientErrorCode } from '../errors.js';
import type { InboxFrame } from '../protocol/client-frames.js';
import type { Replicator } from '../replication/replicator.js';
import type { ClientConnection } from './client-connection.js';
import { encodeTextFrame } from './text-frame.js';

/** The most connections one instance feeds (more: too_many_subscribers; they poll instead). */
export const INBOX_SUBSCRIBERS_MAX = 1000;
/** The shortest time between two pushes of the same conversation to a subscriber. */
export const INBOX_FLUSH_MS = 250;
/** The most conversations pushed in one flush. */
export const INBOX_FLUSH_MAX_ROOMS = 500;
/** Read cursors of more users than this in one conversation in one flush: pushed to everyone. */
const READERS_MAX = 64;

const SUBSCRIBED = Buffer.from(JSON.stringify({ type: 'inbox', subscribed: true }));
const UNSUBSCRIBED = Buffer.from(JSON.stringify({ type: 'inbox', subscribed: false }));

export interface FeedGateway {
  sendError(conn: ClientConnection, code: string, message: string): void;
}

export class InboxFeed {
  private readonly subscribers = new Set<ClientConnection>();
  /** Conversations changed since the last flush → null: for every subscriber; a set: only these readers (their read cursor moved). */
  private readonly dirty = new Map<string, Set<string> | null>();
  private timer: NodeJS.Timeout | null = null;
  private lastFlush = 0;

  constructor(
    private readonly store: ConversationStore,
    private readonly replicator: Replicator,
    private readonly gateway: FeedGateway,
  ) {
    replicator.on('changed', this.onChanged);
  }

  /** Answers an inbox frame: subscribed true or false, or an error frame (the connection stays open). */
  command(conn: ClientConnection, frame: InboxFrame): void {
    if (!frame.subscribe) {
      this.subscribers.delete(conn);
      conn.send(UNSUBSCRIBED);
      return;
    }
    // The REST inbox shows a customer only its own conversations: the feed is for the desk.
    if (conn.identity?.role === 'customer') return this.gateway.sendError(conn, ClientErrorCode.Forbidden, 'only agents and services may follow the inbox');
    if (!this.subscribers.has(conn) && this.subscribers.size >= INBOX_SUBSCRIBERS_MAX) {
      return this.gateway.sendError(conn, ClientErrorCode.TooManySubscribers, `this instance feeds the inbox to at most ${INBOX_SUBSCRIBERS_MAX} connections: poll GET /api/conversations`);
    }
    this.subscribers.add(conn);
    conn.send(SUBSCRIBED);
  }

  /** A closed connection. */
  drop(conn: ClientConnection): void {
    this.subscribers.delete(conn);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  close(): void {
    this.replicator.off('changed', this.onChanged);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.subscribers.clear();
    this.dirty.clear();
  }

  private readonly onChanged = (room: string, reader?: string): void => {
    if (this.subscribers.size === 0) return;
    const readers = this.dirty.get(room);
    if (reader === undefined || (readers !== undefined && readers !== null && readers.size >= READERS_MAX)) this.dirty.set(room, null);
    else if (readers === undefined) this.dirty.set(room, new Set([reader]));
    else readers?.add(reader);
    this.schedule();
  };

  /** At once when the last flush is INBOX_FLUSH_MS old, else when it will be. */
  private schedule(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(this.flush, Math.max(0, this.lastFlush + INBOX_FLUSH_MS - Date.now()));
    this.timer.unref();
  }

  private readonly flush = (): void => {
    this.timer = null;
    const now = (this.lastFlush = Date.now());
    let n = 0;
    for (const [room, readers] of this.dirty) {
      if (n++ >= INBOX_FLUSH_MAX_ROOMS) break;
      this.dirty.delete(room);
      this.push(room, readers, now);
    }
    if (this.dirty.size > 0) this.schedule();
  };

  private push(room: string, readers: Set<string> | null, now: number): void {
    const conv = this.store.conversation(room);
    const base = conv === null ? null : conversationItem(conv, now);
    // One encoding per reader (the unread count is the reader's); without auth one for all.
    const encoded = new Map<string | undefined, { frame: Buffer; payload: Buffer }>();
    for (const conn of this.subscribers) {
      const reader = conn.identity?.sub;
      if (readers !== null && (reader === undefined || !readers.has(reader))) continue;
      let out = encoded.get(reader);
      if (out === undefined) {
        const item = base === null || reader === undefined ? base : { ...base, unread: unreadCount(conv!, reader) };
        const payload = Buffer.from(JSON.stringify(item === null ? { type: 'inbox', removed: room } : { type: 'inbox', item }));
        out = { frame: encodeTextFrame(payload), payload };
        encoded.set(reader, out);
      }
      conn.sendFrame(out.frame, out.payload);
    }
  }
}
