/**
 * A replicated write to the conversation store, and its validation. Writes from peers are
 * checked here like client frames are: nothing malformed reaches the store.
 *
 * A `message` write is also exactly the frame WebSocket clients receive, and a `deleted`
 * write the frame that tells them a message was removed: one encoding serves storage,
 * replication and live delivery. A `deleted` write carries the message's `ts`, so the
 * delete has a place in the order even where the message never arrived.
 */
import { MAX_COUNTER, MAX_FORWARD_JUMP_MS, parseTimestampId } from './hybrid-clock.js';

export type StoreWrite =
  /** `owner`: the customer (token sub) the conversation belongs to, with AUTH=jwt. */
  | { type: 'created'; room: string; id: string; owner?: string }
  /** `by`: the author's token sub, with AUTH=jwt; `cid`: the client's id for the send (dedupe, see CLIENT_ID_MAX). */
  | { type: 'message'; id: string; room: string; user: string; text: string; ts: number; by?: string; cid?: string }
  | { type: 'deleted'; room: string; id: string; ts: number; at: string };

/** The id that dedupes this write across the mesh. */
export function writeId(write: StoreWrite): string {
  return write.type === 'deleted' ? write.at : write.id;
}

/** True for writes that clients in the room see live. */
export function isLiveWrite(write: StoreWrite): boolean {
  return write.type !== 'created';
}

/**
 * How far a message's `ts` may be from the wall time in its id (when it was stamped), both
 * ways. The same rule holds for writes from peers and for timestamps given over REST, so a
 * message stored on one instance is accepted by every other.
 */
export const MESSAGE_TS_MAX_PAST_MS = 30 * 24 * 3600_000;
export const MESSAGE_TS_MAX_FUTURE_MS = 60_000;

/** The limits a write is checked against: the node's MAX_NAME_LENGTH and MAX_TEXT_LENGTH. */
export interface WriteLimits {
  maxNameLength: number;
  maxTextLength: number;
}

// C0 and C1 control characters and DEL have no place in a name (as for client frames).
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** A room or user name, by the rules client frames follow: non-blank, not too long, no control characters, well-formed. */
export function isValidName(value: unknown, maxLength: number): value is string {
  return typeof value === 'string' && value.length <= maxLength && value.trim() !== '' && !CONTROL_CHARS.test(value) && value.isWellFormed();
}

/** Longest token subject (lib/auth MAX_SUB_LENGTH): `owner` and `by` hold one. */
export const MAX_SUBJECT_LENGTH = 128;

/** An optional subject field: absent, or a well-formed string of 1–128 characters. */
function subjectOk(v: unknown): boolean {
  return v === undefined || (typeof v === 'string' && v.length > 0 && v.length <= MAX_SUBJECT_LENGTH && v.isWellFormed());
}

/** Longest client id of a send (a WebSocket `clientId`, a REST Idempotency-Key). */
export const CLIENT_ID_MAX = 64;

/** A client id: a well-formed string of 1–CLIENT_ID_MAX characters without control characters. */
export function isClientId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= CLIENT_ID_MAX && !CONTROL_CHARS.test(v) && v.isWellFormed();
}

/** The node that stamped an id made by timestampId (the part after the clock). */
export function stampedBy(id: string): string {
  return id.slice(id.indexOf('-') + 1);
}

const isTs = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** An id stamped by a clock no further ahead of ours than MAX_FORWARD_JUMP_MS, with a counter in range. */
function clockOk(id: unknown, now: number): boolean {
  if (typeof id !== 'string' || id.length > 256) return false;
  const ts = parseTimestampId(id);
  return ts !== null && ts.wall <= now + MAX_FORWARD_JUMP_MS && ts.counter >= 0 && ts.counter <= MAX_COUNTER;
}

/** A message's `ts` within [wall of its id − MESSAGE_TS_MAX_PAST_MS, wall + MESSAGE_TS_MAX_FUTURE_MS]. */
function tsFitsId(ts: number, id: string): boolean {
  const stamp = parseTimestampId(id);
  return stamp !== null && ts >= stamp.wall - MESSAGE_TS_MAX_PAST_MS && ts <= stamp.wall + MESSAGE_TS_MAX_FUTURE_MS;
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
    default:
      return null;
  }
}
