/**
 * A replicated write to the conversation store, and its validation. Writes from peers are
 * checked here like client frames are: nothing malformed reaches the store.
 *
 * A `message` write is also exactly the frame WebSocket clients receive, and a `deleted`
 * write the frame that tells them a message was removed: one encoding serves storage,
 * replication and live delivery. A `deleted` write carries the message's `ts`, so the
 * delete has a place in the order even where the message never arrived.
 */
import { clockOk, isClientId, isTs, isValidName, subjectOk, tsFitsId, type WriteLimits } from './write-checks.js';
import { decodeDeskWrite, type DeskWrite } from './desk-writes.js';

export { CLIENT_ID_MAX, MAX_SUBJECT_LENGTH, MESSAGE_TS_MAX_FUTURE_MS, MESSAGE_TS_MAX_PAST_MS, isClientId, isValidName, stampedBy, type WriteLimits } from './write-checks.js';
export type { DeskWrite, EditedWrite, FieldName, FieldWrite, ReadWrite } from './desk-writes.js';

export type StoreWrite =
  /** `owner`: the customer (token sub) the conversation belongs to, with AUTH=jwt. */
  | { type: 'created'; room: string; id: string; owner?: string }
  /** `by`: the author's token sub, with AUTH=jwt; `cid`: the client's id for the send (dedupe, see CLIENT_ID_MAX). */
  | { type: 'message'; id: string; room: string; user: string; text: string; ts: number; by?: string; cid?: string }
  | { type: 'deleted'; room: string; id: string; ts: number; at: string }
  /** The support desk's registers (desk-writes.ts): a conversation's fields, read cursors, edits. */
  | DeskWrite;

/** The id that dedupes this write across the mesh. */
export function writeId(write: StoreWrite): string {
  return write.type === 'deleted' ? write.at : write.id;
}

/** True for writes that clients in the room see live. */
export function isLiveWrite(write: StoreWrite): boolean {
  return write.type !== 'created';
}

/**
 * Validates a write from a peer (live or catch-up) with the bounds client frames get: names
 * and text within the node's limits and well-formed, ids that are clock stamps no more than
 * MAX_FORWARD_JUMP_MS ahead of `now`, a `ts` that fits its id. Null if it is not one.
 * (Text may be empty: a deleted message travels in catch-up as an empty placeholder.)
 */
export function decodeWrite(value: unknown, limits: WriteLimits, now: number = Date.now()): StoreWrite | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!isValidName(v.room, limits.maxNameLength) || typeof v.id !== 'string') return null;
  switch (v.type) {
    case 'created':
      if (!clockOk(v.id, now) || !subjectOk(v.owner)) return null;
      return v.owner === undefined ? { type: 'created', room: v.room, id: v.id } : { type: 'created', room: v.room, id: v.id, owner: v.owner as string };
    case 'message':
      if (!clockOk(v.id, now) || !isValidName(v.user, limits.maxNameLength)) return null;
      if (typeof v.text !== 'string' || v.text.length > limits.maxTextLength || !v.text.isWellFormed()) return null;
      if (!isTs(v.ts) || !tsFitsId(v.ts, v.id) || !subjectOk(v.by) || (v.cid !== undefined && !isClientId(v.cid))) return null;
      return { type: 'message', id: v.id, room: v.room, user: v.user, text: v.text, ts: v.ts, ...(v.by !== undefined && { by: v.by as string }), ...(v.cid !== undefined && { cid: v.cid as string }) };
    case 'deleted':
      // `at` is the delete's own stamp; `id` and `ts` are the deleted message's.
      if (!clockOk(v.at, now) || v.id.length > 256 || !isTs(v.ts) || !tsFitsId(v.ts, v.id)) return null;
      return { type: 'deleted', room: v.room, id: v.id, ts: v.ts, at: v.at as string };
    case 'field':
    case 'read':
    case 'edited':
      return decodeDeskWrite(v, limits, now);
    default:
      return null;
  }
}
