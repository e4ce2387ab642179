/**
 * The checks every write from a peer goes through (store-write.ts, desk-writes.ts): names,
 * subjects, client ids, clock stamps and timestamps within the bounds client frames get.
 */
import { MAX_COUNTER, MAX_FORWARD_JUMP_MS, parseTimestampId } from './hybrid-clock.js';

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
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** A room or user name, by the rules client frames follow: non-blank, not too long, no control characters, well-formed. */
export function isValidName(value: unknown, maxLength: number): value is string {
  return typeof value === 'string' && value.length <= maxLength && value.trim() !== '' && !CONTROL_CHARS.test(value) && value.isWellFormed();
}

/** Longest token subject (lib/auth MAX_SUB_LENGTH): `owner` and `by` hold one. */
export const MAX_SUBJECT_LENGTH = 128;

/** An optional subject field: absent, or a well-formed string of 1–128 characters. */
export function subjectOk(v: unknown): boolean {
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

export const isTs = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** An id stamped by a clock no further ahead of ours than MAX_FORWARD_JUMP_MS, with a counter in range. */
export function clockOk(id: unknown, now: number): boolean {
  if (typeof id !== 'string' || id.length > 256) return false;
  const ts = parseTimestampId(id);
  return ts !== null && ts.wall <= now + MAX_FORWARD_JUMP_MS && ts.counter >= 0 && ts.counter <= MAX_COUNTER;
}

/** A message's `ts` within [wall of its id − MESSAGE_TS_MAX_PAST_MS, wall + MESSAGE_TS_MAX_FUTURE_MS]. */
export function tsFitsId(ts: number, id: string): boolean {
  const stamp = parseTimestampId(id);
  return stamp !== null && ts >= stamp.wall - MESSAGE_TS_MAX_PAST_MS && ts <= stamp.wall + MESSAGE_TS_MAX_FUTURE_MS;
}
