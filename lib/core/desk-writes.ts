/**
 * The support desk's writes (issue 13), replicated like messages. Each is a register: the
 * winner is decided from the writes alone, so every node holding the same writes agrees.
 *   field  one per (room, f): status, assignee or metadata; the larger id wins.
 *   read   one per (room, user): a read cursor; the larger (at, upTo) wins, then the larger id.
 *   edited one per (room, msg): a message's text; the larger id wins, a delete beats any edit.
 * The value checks here serve writes from peers and requests (REST, WebSocket) alike.
 */
import { CONTROL_CHARS, MAX_SUBJECT_LENGTH, clockOk, isTs, isValidName, subjectOk, tsFitsId, type WriteLimits } from './write-checks.js';
import { parseTimestampId } from './hybrid-clock.js';

export type FieldName = 'status' | 'assignee' | 'metadata';
export type Status = 'open' | 'pending' | 'snoozed' | 'resolved';
export type MetadataValue = string | number | boolean | null;
export type Metadata = Record<string, MetadataValue>;

/** `until`: when a snooze ends (ms), with status snoozed only. `by`: the token sub that made it. */
export interface FieldWrite { type: 'field'; room: string; id: string; f: FieldName; v: Status | string | null | Metadata; until?: number; by?: string }
/** `user`: whose cursor (token sub, else the name); `upTo`: the last message read; `at`: its timestamp. */
export interface ReadWrite { type: 'read'; room: string; id: string; user: string; upTo: string; at: number }
/** `msg`: the edited message; `ts`: its timestamp (its place in the order, as for a delete). */
export interface EditedWrite { type: 'edited'; room: string; id: string; msg: string; text: string; ts: number; by?: string }
export type DeskWrite = FieldWrite | ReadWrite | EditedWrite;

/** A desk write (only for peers that announced `desk`), not a message, delete or creation. */
export function isDeskWrite(write: { type: string }): write is DeskWrite {
  return write.type === 'field' || write.type === 'read' || write.type === 'edited';
}

export const STATUSES: readonly Status[] = ['open', 'pending', 'snoozed', 'resolved'];
export const METADATA_MAX_KEYS = 16;
export const METADATA_KEY_MAX = 64;
export const METADATA_STRING_MAX = 256;
export const METADATA_MAX_BYTES = 2048;
/** The longest snooze a request may ask for. */
export const SNOOZE_MAX_MS = 366 * 24 * 3600_000;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Why `v` is not a metadata object (null when it is one). */
export function metadataProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'metadata must be a JSON object';
  const entries = Object.entries(v);
  if (entries.length > METADATA_MAX_KEYS) return `metadata holds at most ${METADATA_MAX_KEYS} keys`;
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > METADATA_KEY_MAX || CONTROL_CHARS.test(key) || !key.isWellFormed() || FORBIDDEN_KEYS.has(key)) {
      return `metadata keys are 1 to ${METADATA_KEY_MAX} characters, without control characters`;
    }
    const ok = value === null || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))
      || (typeof value === 'string' && value.length <= METADATA_STRING_MAX && value.isWellFormed());
    if (!ok) return `metadata values are strings (at most ${METADATA_STRING_MAX} characters), numbers, booleans or null`;
  }
  if (Buffer.byteLength(JSON.stringify(v)) > METADATA_MAX_BYTES) return `metadata must be at most ${METADATA_MAX_BYTES} bytes as JSON`;
  return null;
}

/** An agent id for `assignee`: a well-formed string of 1–128 characters without control characters. */
export function isAgentId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_SUBJECT_LENGTH && !CONTROL_CHARS.test(v) && v.isWellFormed();
}

export function isStatus(v: unknown): v is Status {
  return typeof v === 'string' && (STATUSES as readonly string[]).includes(v);
}

/** Whose read cursor: a name (MAX_NAME_LENGTH) or a token sub (128), whichever is longer. */
function isReader(v: unknown, limits: WriteLimits): v is string {
  return isValidName(v, Math.max(limits.maxNameLength, MAX_SUBJECT_LENGTH));
}

const isMessageId = (v: unknown): v is string => typeof v === 'string' && v.length <= 256 && parseTimestampId(v) !== null;

/** Validates a desk write from a peer (see store-write.ts decodeWrite); null if it is not one. */
export function decodeDeskWrite(v: Record<string, unknown>, limits: WriteLimits, now: number): DeskWrite | null {
  const room = v.room as string;
  const id = v.id as string;
  if (!clockOk(id, now)) return null;
  switch (v.type) {
    case 'field': {
      if (!subjectOk(v.by)) return null;
      const by = v.by === undefined ? {} : { by: v.by as string };
      if (v.f === 'status') {
        if (!isStatus(v.v)) return null;
        if (v.v === 'snoozed' ? !isTs(v.until) : v.until !== undefined) return null;
        return { type: 'field', room, id, f: 'status', v: v.v, ...(v.v === 'snoozed' && { until: v.until as number }), ...by };
      }
      if (v.until !== undefined) return null;
      if (v.f === 'assignee') return v.v === null || isAgentId(v.v) ? { type: 'field', room, id, f: 'assignee', v: v.v, ...by } : null;
      if (v.f === 'metadata') return metadataProblem(v.v) === null ? { type: 'field', room, id, f: 'metadata', v: { ...(v.v as Metadata) }, ...by } : null;
      return null;
    }
    case 'read':
      if (!isReader(v.user, limits) || !isMessageId(v.upTo) || !isTs(v.at) || !tsFitsId(v.at, v.upTo)) return null;
      return { type: 'read', room, id, user: v.user, upTo: v.upTo, at: v.at };
    case 'edited': {
      if (!isMessageId(v.msg) || !isTs(v.ts) || !tsFitsId(v.ts, v.msg) || !subjectOk(v.by)) return null;
      if (typeof v.text !== 'string' || v.text.trim() === '' || v.text.length > limits.maxTextLength || !v.text.isWellFormed()) return null;
      return { type: 'edited', room, id, msg: v.msg, text: v.text, ts: v.ts, ...(v.by !== undefined && { by: v.by as string }) };
    }
    default:
      return null;
  }
}
