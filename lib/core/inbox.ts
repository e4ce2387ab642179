/**
 * The support desk's read side, from the store's conversations: a conversation's effective
 * status (a snooze ends by itself at `until`, without a write, so it ends once and the same
 * everywhere), its inbox item, a user's unread count, and the inbox itself: filtered, sorted
 * by updatedAt (newest first) then id, paged with an opaque cursor.
 */
import { parseTimestampId } from './hybrid-clock.js';
import type { Metadata, Status } from './desk-writes.js';
import { compare, type Conversation, type Entry } from './conversation.js';

/** Characters of the last message an inbox item previews. */
export const PREVIEW_CHARS = 200;
export const INBOX_LIMIT_DEFAULT = 50;
export const INBOX_LIMIT_MAX = 200;

/** What members get live, and the head of an inbox item. */
export interface ConversationState {
  id: string;
  status: Status;
  snoozedUntil?: number;
  assignee: string | null;
  metadata: Metadata;
  updatedAt: number;
}

export interface ConversationItem extends ConversationState {
  createdAt: number;
  lastMessage: { id: string; sender: string; content: string; timestamp: number } | null;
  /** The reader's unread messages (AUTH=jwt: the caller). */
  unread?: number;
}

/** The status as it reads at `now`: a snooze whose `until` has passed reads as open. */
export function effectiveStatus(conv: Readonly<Conversation>, now: number): { status: Status; snoozedUntil?: number } {
  const field = conv.fields.get('status');
  if (field === undefined) return { status: 'open' };
  if (field.v === 'snoozed') return field.until! > now ? { status: 'snoozed', snoozedUntil: field.until! } : { status: 'open' };
  return { status: field.v as Status };
}

export function conversationState(conv: Readonly<Conversation>, now: number): ConversationState {
  const assignee = (conv.fields.get('assignee')?.v ?? null) as string | null;
  const metadata = (conv.fields.get('metadata')?.v ?? {}) as Metadata;
  return { id: conv.id, ...effectiveStatus(conv, now), assignee, metadata, updatedAt: conv.updatedAt };
}

/** The inbox item; `reader` (token sub): with its unread count. */
export function conversationItem(conv: Readonly<Conversation>, now: number, reader?: string): ConversationItem {
  const item: ConversationItem = { ...conversationState(conv, now), createdAt: parseTimestampId(conv.createdId)?.wall ?? 0, lastMessage: preview(lastVisible(conv)) };
  if (reader !== undefined) item.unread = unreadCount(conv, reader);
  return item;
}

function lastVisible(conv: Readonly<Conversation>): Entry | null {
  for (let i = conv.messages.length - 1; i >= 0; i--) if (!conv.messages[i].deleted) return conv.messages[i];
  return null;
}

function preview(m: Entry | null): ConversationItem['lastMessage'] {
  if (m === null) return null;
  let content = m.content;
  if (content.length > PREVIEW_CHARS) {
    content = content.slice(0, PREVIEW_CHARS);
    if (!content.isWellFormed()) content = content.slice(0, -1); // never half a surrogate pair
  }
  return { id: m.id, sender: m.sender, content, timestamp: m.timestamp };
}

/** Visible messages after `user`'s read cursor that `user` did not write (author, else sender). */
export function unreadCount(conv: Readonly<Conversation>, user: string): number {
  const cursor = conv.reads.get(user);
  const read = cursor === undefined ? null : { timestamp: cursor.at, id: cursor.upTo };
  let n = 0;
  for (let i = conv.messages.length - 1; i >= 0; i--) {
    const m = conv.messages[i];
    if (read !== null && compare(m, read) <= 0) break;
    if (!m.deleted && (m.author ?? m.sender) !== user) n++;
  }
  return n;
}

export interface InboxQuery {
  limit: number;
  /** From a previous page's `next` (decodeCursor). */
  after?: InboxCursor;
  status?: Status;
  /** An agent id, or null: unassigned only. */
  assignee?: string | null;
  /** Only conversations with updatedAt ≥ this (ms). */
  updatedSince?: number;
  /** AUTH=jwt, a customer: only its own conversations. */
  owner?: string;
  /** AUTH=jwt: the caller, whose unread counts the items carry. */
  reader?: string;
}

/** Where a page ended: the last item's (updatedAt, id). */
export interface InboxCursor {
  u: number;
  id: string;
}

export function inbox(conversations: Iterable<Readonly<Conversation>>, query: InboxQuery, now: number): { items: ConversationItem[]; next: string | null } {
  const picked: Array<Readonly<Conversation>> = [];
  for (const conv of conversations) {
    if (query.owner !== undefined && conv.owner !== query.owner) continue;
    if (query.updatedSince !== undefined && conv.updatedAt < query.updatedSince) continue;
    if (query.after !== undefined && !sortsAfter(conv, query.after)) continue;
    if (query.status !== undefined && effectiveStatus(conv, now).status !== query.status) continue;
    if (query.assignee !== undefined && (conv.fields.get('assignee')?.v ?? null) !== query.assignee) continue;
    picked.push(conv);
  }
  picked.sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const page = picked.slice(0, query.limit);
  const last = page[page.length - 1];
  const next = picked.length > query.limit ? encodeCursor({ u: last.updatedAt, id: last.id }) : null;
  return { items: page.map((conv) => conversationItem(conv, now, query.reader)), next };
}

function sortsAfter(conv: Readonly<Conversation>, cursor: InboxCursor): boolean {
  return conv.updatedAt < cursor.u || (conv.updatedAt === cursor.u && conv.id > cursor.id);
}

export function encodeCursor(cursor: InboxCursor): string {
  return Buffer.from(JSON.stringify([cursor.u, cursor.id])).toString('base64url');
}

/** A cursor from `next`, or null when `text` is not one. */
export function decodeCursor(text: string): InboxCursor | null {
  if (text.length === 0 || text.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return null;
    const [u, id] = value as unknown[];
    if (typeof u !== 'number' || !Number.isSafeInteger(u) || u < 0 || typeof id !== 'string' || id.length === 0 || id.length > 1024) return null;
    return { u, id };
  } catch {
    return null;
  }
}
