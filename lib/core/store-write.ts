/**
 * A replicated write to the conversation store, and its validation. Writes from peers are
 * checked here like client frames are: nothing malformed reaches the store.
 *
 * A `message` write is also exactly the frame WebSocket clients receive, and a `deleted`
 * write the frame that tells them a message was removed: one encoding serves storage,
 * replication and live delivery. A `deleted` write carries the message's `ts`, so the
 * delete has a place in the order even where the message never arrived.
 */
export type StoreWrite =
  | { type: 'created'; room: string; id: string }
  | { type: 'message'; id: string; room: string; user: string; text: string; ts: number }
  | { type: 'deleted'; room: string; id: string; ts: number; at: string };

/** The id that dedupes this write across the mesh. */
export function writeId(write: StoreWrite): string {
  return write.type === 'deleted' ? write.at : write.id;
}

/** True for writes that clients in the room see live. */
export function isLiveWrite(write: StoreWrite): boolean {
  return write.type !== 'created';
}

const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** Validates a write (from a peer or catch-up); null if it is not one. */
export function decodeWrite(value: unknown): StoreWrite | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!str(v.room, 1024) || !str(v.id, 256)) return null;
  switch (v.type) {
    case 'created':
      return { type: 'created', room: v.room, id: v.id };
    case 'message':
      if (!str(v.user, 1024) || typeof v.text !== 'string' || v.text.length > 1_000_000) return null;
      if (typeof v.ts !== 'number' || !Number.isSafeInteger(v.ts)) return null;
      return { type: 'message', id: v.id, room: v.room, user: v.user, text: v.text, ts: v.ts };
    case 'deleted':
      if (!str(v.at, 256) || typeof v.ts !== 'number' || !Number.isSafeInteger(v.ts)) return null;
      return { type: 'deleted', room: v.room, id: v.id, ts: v.ts, at: v.at };
    default:
      return null;
  }
}
