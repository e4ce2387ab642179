/**
 * The disk's window of a conversation (DATA_DIR): the newest MAX_DISK_MESSAGES_PER_CONVERSATION
 * messages by (timestamp, id), larger than memory's, and the history read back from it.
 * Records are keyed [room, 'm:' + id] (a message, or a deleted one's empty placeholder) and
 * [room, 't:' + id] (its delete): by id, so what is read is sorted here.
 */
import type { RootDatabase } from 'lmdb';
import { compare } from '../core/conversation.js';
import { parseTimestampId } from '../core/hybrid-clock.js';
import type { StoredMessage, StoreWrite } from '../core/conversation-store.js';

export type Key = [string, string];

/** Messages kept on disk per conversation when MAX_DISK_MESSAGES_PER_CONVERSATION is not set. */
export const DISK_MESSAGES_DEFAULT = 100_000;

/** A message or delete as kept, with its place in the order ((ts, id), as `timestamp`). */
type Placed = StoreWrite & { id: string; ts: number; timestamp: number };

function placed(value: Buffer): Placed {
  const w = JSON.parse(value.toString('utf8')) as Placed;
  w.timestamp = w.ts;
  return w;
}

/** The key ranges of a room's messages, of its edits and of its deletes. */
export const messages = (room: string) => ({ start: [room, 'm:'] as Key, end: [room, 'm:\uffff'] as Key });
export const edits = (room: string) => ({ start: [room, 'e:'] as Key, end: [room, 'e:\uffff'] as Key });
export const deletes = (room: string) => ({ start: [room, 't:'] as Key, end: [room, 't:\uffff'] as Key });

/** Keeps the newest `max` messages of a room, with their deletes (and no delete older than them); removes with `remove`. */
export function trimWindow(db: RootDatabase<Buffer, Key>, room: string, max: number, remove: (key: Key) => void): void {
  const over = db.getKeysCount(messages(room)) - max;
  if (over <= 0) return;
  const held = [...db.getRange(messages(room))].map(({ value }) => placed(value)).sort(compare);
  for (const m of held.slice(0, over)) {
    remove([room, 'm:' + m.id]);
    remove([room, 't:' + m.id]);
    remove([room, 'e:' + m.id]);
  }
  const oldest = held[over];
  for (const { key, value } of db.getRange(deletes(room))) {
    if (compare(placed(value), oldest) < 0) remove(key);
  }
}

/**
 * The messages of a room on disk that sort before `before` (all of them when null), deleted
 * ones left out, in (timestamp, id) order: the history older than memory's window.
 */
export function historyBefore(db: RootDatabase<Buffer, Key>, room: string, before: Pick<StoredMessage, 'timestamp' | 'id'> | null): StoredMessage[] {
  const deleted = new Set<string>();
  for (const key of db.getKeys(deletes(room))) deleted.add(key[1].slice(2));
  // An edited message's record holds its current text; the edit's record, when.
  const editedAt = new Map<string, number>();
  for (const { key, value } of db.getRange(edits(room))) editedAt.set(key[1].slice(2), parseTimestampId((JSON.parse(value.toString('utf8')) as { id: string }).id)?.wall ?? 0);
  const out: StoredMessage[] = [];
  for (const { value } of db.getRange(messages(room))) {
    const w = placed(value);
    if (w.type !== 'message' || w.text === '' || deleted.has(w.id) || (before !== null && compare(w, before) >= 0)) continue;
    const m: StoredMessage = { id: w.id, sender: w.user, content: w.text, timestamp: w.ts };
    if (w.by !== undefined) m.author = w.by;
    if (editedAt.has(w.id)) m.editedAt = editedAt.get(w.id);
    out.push(m);
  }
  return out.sort(compare);
}
