/**
 * History paging (GET /api/conversations/:id?limit=&before=|after=): a page of a conversation's
 * history in (timestamp, id) order, with cursors that are message ids:
 *   prev: the first message of the page when older ones exist (ask `before=prev`), else null;
 *   next: the last message of the page when newer ones exist (ask `after=next`), else null.
 * Without before/after the page is the newest `limit` messages. A cursor is placed by its
 * (timestamp, id), so a message stored meanwhile in the middle (a back-dated one) never makes
 * a walk skip or repeat another; a cursor whose message was deleted still works while memory
 * holds its placeholder. Memory holds the newest messages; with DATA_DIR the older ones are
 * read from disk only when a page reaches past memory's window.
 */
import type { ConversationStore, StoredMessage } from './conversation-store.js';
import { compare } from './conversation.js';
import { parseTimestampId } from './hybrid-clock.js';

export const PAGE_LIMIT_DEFAULT = 100;
export const PAGE_LIMIT_MAX = 1000;

/** The history kept on disk (DATA_DIR, storage/disk-window.ts) that sorts before a message. */
export interface OlderHistory {
  historyBefore(room: string, before: Pick<StoredMessage, 'timestamp' | 'id'> | null): StoredMessage[];
}

export interface PageQuery {
  limit: number;
  before?: string;
  after?: string;
}

export interface HistoryPage {
  messages: StoredMessage[];
  prev: string | null;
  next: string | null;
}

/** Why no page: the cursor is no message id at all, or no message of this conversation. */
export type PageRefusal = 'invalid_cursor' | 'cursor_not_found';

type Place = Pick<StoredMessage, 'timestamp' | 'id'>;

/** A page of `room` (which must exist), or why not. */
export function readPage(store: ConversationStore, disk: OlderHistory | null, room: string, query: PageQuery): HistoryPage | PageRefusal {
  const cursor = query.before ?? query.after;
  if (cursor !== undefined && parseTimestampId(cursor) === null) return 'invalid_cursor';
  const recent = store.history(room) ?? [];
  const inMemory = placeOf(store, room, cursor, recent);
  if (cursor === undefined || inMemory !== null) {
    const page = pageAt(recent, query, inMemory);
    // Whole within memory, with older messages still in memory before it: the disk is not needed.
    if (disk === null || page.start > 0) return page.page;
  }
  if (disk === null) return 'cursor_not_found';
  const all = [...disk.historyBefore(room, recent[0] ?? null), ...recent];
  const place = inMemory ?? (cursor === undefined ? null : all.find((m) => m.id === cursor) ?? null);
  if (cursor !== undefined && place === null) return 'cursor_not_found';
  return pageAt(all, query, place).page;
}

/** Where the cursor sorts: a message in memory (deleted ones too, by their placeholder), or null. */
function placeOf(store: ConversationStore, room: string, cursor: string | undefined, recent: StoredMessage[]): Place | null {
  if (cursor === undefined) return null;
  const held = store.placeholderOf(room, cursor);
  if (held !== null && held.type === 'message') return { timestamp: held.ts, id: cursor };
  return recent.find((m) => m.id === cursor) ?? null;
}

function pageAt(ordered: StoredMessage[], query: PageQuery, place: Place | null): { page: HistoryPage; start: number } {
  let start: number;
  let end: number;
  if (query.after !== undefined && place !== null) {
    start = firstIndex(ordered, (m) => compare(m, place) > 0);
    end = Math.min(ordered.length, start + query.limit);
  } else {
    end = place === null ? ordered.length : firstIndex(ordered, (m) => compare(m, place) >= 0);
    start = Math.max(0, end - query.limit);
  }
  const messages = ordered.slice(start, end);
  const empty = messages.length === 0;
  return {
    start,
    page: {
      messages,
      prev: !empty && start > 0 ? messages[0].id : null,
      next: !empty && end < ordered.length ? messages[messages.length - 1].id : null,
    },
  };
}

/** The first index whose message satisfies `past` (which is false, then true, along the list). */
function firstIndex(ordered: StoredMessage[], past: (m: StoredMessage) => boolean): number {
  let lo = 0;
  let hi = ordered.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (past(ordered[mid])) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
