/**
 * One conversation of the store: its messages in (timestamp, id) order within a window of
 * the newest `max`, deletes as tombstones that keep their place, and a set digest of every
 * id it holds. Every operation gives the same result whatever order the writes come in.
 */
import { parseTimestampId } from './hybrid-clock.js';
import type { EditedWrite, FieldName, FieldWrite, ReadWrite } from './desk-writes.js';
import type { StoreWrite } from './store-write.js';

export interface StoredMessage {
  id: string;
  sender: string;
  content: string;
  /** Milliseconds since the epoch; the history is ordered by (timestamp, id). */
  timestamp: number;
  /** The author's token sub (AUTH=jwt); absent without auth. */
  author?: string;
  /** Wall time (ms) of the edit whose text the message shows; absent if never edited. */
  editedAt?: number;
}

/**
 * What a write did: `applied`; `duplicate` (already held); `ignored` (moot: expired, or
 * older than everything a full conversation keeps); `store_full` (not stored: no room, see
 * ConversationStore). Only `applied` and `duplicate` mean the write is held here.
 */
export type ApplyResult = 'applied' | 'duplicate' | 'ignored' | 'store_full';

/**
 * A message, or the place of a deleted one. Deleted messages keep their place in the window
 * of the newest `maxMessagesPerConversation`, so which messages are kept does not depend on
 * whether a delete arrived before or after a newer message pushed an old one out.
 */
export interface Entry extends StoredMessage {
  deleted: boolean;
  /** The client's id for the send (store-write.ts `cid`), when it gave one. */
  cid?: string;
  /** Local arrival order on this instance (a per-store counter), for resume. */
  seq: number;
  /** Local wall time of arrival, ms. */
  arrivedAt: number;
  /** Arrived here late: through catch-up, or long after it was written (see resume.ts). */
  late: boolean;
}

export interface Conversation {
  id: string;
  createdId: string;
  /** The customer it belongs to (AUTH=jwt): from the `created` write with the smallest id that names one. */
  owner?: string;
  /** The id of that write. */
  ownerFrom?: string;
  lastActivity: number;
  /** Sorted by (timestamp, id), deleted placeholders included. */
  messages: Entry[];
  byId: Map<string, Entry>;
  /** Entries not deleted. */
  visible: number;
  /** message id → the deleted message's timestamp (its place in the order) and the delete's wall time. */
  tombstones: Map<string, { ts: number; at: number }>;
  /** Tombstones whose message has not arrived here (yet). */
  orphanTombstones: number;
  /** Sends that never double: clientKey(author ?? sender, cid) → the smallest id of a message held with it. */
  cids: Map<string, string>;
  /** The desk's registers (desk-registers.ts): the winning write of each. */
  fields: Map<FieldName, FieldWrite>;
  reads: Map<string, ReadWrite>;
  edits: Map<string, EditedWrite>;
  /** Latest wall time of every write but read cursors: the inbox's updatedAt. */
  updatedAt: number;
  /** Set digest: XOR of a 64-bit hash of every entry and tombstone id, in two 32-bit lanes. */
  digestHi: number;
  digestLo: number;
  /** The same over the registers' winners (kept apart: a peer without the desk compares only the above). */
  registersHi: number;
  registersLo: number;
  /** What this conversation costs in memory, estimated (see the *_BYTES constants). */
  bytes: number;
}

/**
 * Estimated memory per conversation, per message (plus 2 bytes per character of its id,
 * sender and text: V8 keeps non-Latin-1 strings in UTF-16) and per tombstone: the fixed
 * parts are objects, map entries and array slots, measured roughly with heap snapshots.
 */
export const CONVERSATION_BYTES = 400;
const ENTRY_BYTES = 160;
const TOMBSTONE_BYTES = 96;

/** The estimated cost of holding a message (or a deleted message's place). */
export function entryBytes(m: Pick<StoredMessage, 'id' | 'sender' | 'content'> & { cid?: string }): number {
  const cid = m.cid === undefined ? 0 : CID_BYTES + 4 * m.cid.length; // on the entry and in the index
  return ENTRY_BYTES + cid + 2 * (m.id.length + m.sender.length + m.content.length);
}
const CID_BYTES = 96;

/** The dedupe key of a send: who sent it (token sub, else the name) and the client's id. */
export function clientKey(sender: string, cid: string): string {
  return sender + '\0' + cid;
}

/** A conversation created by the write with this id, active at `wall`, holding nothing yet. */
export function newConversation(id: string, createdId: string, wall: number): Conversation {
  return { id, createdId, lastActivity: wall, messages: [], byId: new Map(), cids: new Map(), fields: new Map(), reads: new Map(), edits: new Map(), updatedAt: wall, visible: 0, tombstones: new Map(), orphanTombstones: 0, digestHi: 0, digestLo: 0, registersHi: 0, registersLo: 0, bytes: CONVERSATION_BYTES + 2 * id.length };
}

/** Takes the owner a `created` write names: the one from the smallest such write wins, in any order. */
export function mergeOwner(conv: Conversation, writeId: string, owner: string | undefined): void {
  if (owner === undefined || (conv.ownerFrom !== undefined && conv.ownerFrom <= writeId)) return;
  conv.owner = owner;
  conv.ownerFrom = writeId;
}

/** Adds a message (or the place of a deleted one) to a conversation holding at most `max`. */
export function addMessage(conv: Conversation, message: Entry, max: number): ApplyResult {
  if (conv.byId.has(message.id)) return 'duplicate';
  if (conv.messages.length >= max && compare(message, conv.messages[0]) < 0) return 'ignored';
  if (conv.tombstones.has(message.id)) {
    // Deleted before it arrived: it takes its place, as deleted.
    message.deleted = true;
    message.content = '';
    conv.orphanTombstones--;
  }
  // Edited before it arrived (or arrived with an older text): the winning edit's text.
  const edit = conv.edits.get(message.id);
  if (edit !== undefined && !message.deleted) showEdit(message, edit);
  conv.messages.splice(insertionIndex(conv.messages, message), 0, message);
  conv.byId.set(message.id, message);
  conv.bytes += entryBytes(message);
  if (!message.deleted) conv.visible++;
  if (message.cid !== undefined) indexClientId(conv, message);
  toggle(conv, message.id);
  if (conv.messages.length >= max) trim(conv, max);
  return 'applied';
}

/** Keeps the smallest id per key: the same on every node holding the same messages. */
function indexClientId(conv: Conversation, message: Entry): void {
  const key = clientKey(message.author ?? message.sender, message.cid!);
  const held = conv.cids.get(key);
  if (held === undefined || message.id < held) conv.cids.set(key, message.id);
}

/** Drops the oldest entries over the bound, with their tombstones and any older ones. */
function trim(conv: Conversation, max: number): void {
  while (conv.messages.length > max) {
    const dropped = conv.messages.shift()!;
    conv.byId.delete(dropped.id);
    conv.bytes -= entryBytes(dropped);
    toggle(conv, dropped.id);
    if (dropped.cid !== undefined) {
      const key = clientKey(dropped.author ?? dropped.sender, dropped.cid);
      if (conv.cids.get(key) === dropped.id) conv.cids.delete(key);
    }
    if (dropped.deleted) dropTombstone(conv, dropped.id);
    else conv.visible--;
    dropEdit(conv, dropped.id);
  }
  // Edits of messages never seen here that sort before the window are moot (as deletes).
  if (conv.messages.length > 0) for (const [id, e] of conv.edits) if (!conv.byId.has(id) && compare({ timestamp: e.ts, id }, conv.messages[0]) < 0) dropEdit(conv, id);
  if (conv.orphanTombstones === 0) return;
  // Deletes of messages never seen here that sort before the window are moot too.
  const oldest = conv.messages[0];
  for (const [id, t] of conv.tombstones) {
    if (!conv.byId.has(id) && compare({ timestamp: t.ts, id }, oldest) < 0) {
      dropTombstone(conv, id);
      conv.orphanTombstones--;
    }
  }
}

/** Records a delete (a tombstone) in a conversation holding at most `max` messages. */
export function addTombstone(conv: Conversation, messageId: string, messageTs: number, wall: number, max: number): ApplyResult {
  if (conv.tombstones.has(messageId)) return 'duplicate';
  // A delete of a message older than everything a full conversation keeps changes nothing.
  const full = conv.messages.length >= max;
  if (full && !conv.byId.has(messageId) && compare({ timestamp: messageTs, id: messageId }, conv.messages[0]) < 0) return 'ignored';
  conv.tombstones.set(messageId, { ts: messageTs, at: wall });
  conv.bytes += TOMBSTONE_BYTES + 2 * messageId.length;
  toggle(conv, 't:' + messageId);
  const entry = conv.byId.get(messageId);
  if (!entry) {
    conv.orphanTombstones++;
  } else if (!entry.deleted) {
    conv.visible--;
    entry.deleted = true;
    conv.bytes -= 2 * entry.content.length; // the text is gone, the place stays
    entry.content = '';
    delete entry.editedAt;
  }
  return 'applied';
}

/** The estimated cost of a register's winning write (desk-registers.ts). */
export function registerBytes(write: StoreWrite): number {
  return REGISTER_BYTES + 2 * JSON.stringify(write).length;
}
const REGISTER_BYTES = 120;

/** Shows an edit's text on a message (not deleted): the bytes of the text change are the caller's. */
export function showEdit(entry: Entry, edit: EditedWrite): void {
  entry.content = edit.text;
  entry.editedAt = parseTimestampId(edit.id)?.wall ?? 0;
}

function dropEdit(conv: Conversation, messageId: string): void {
  const edit = conv.edits.get(messageId);
  if (edit === undefined) return;
  conv.edits.delete(messageId);
  toggle(conv, 'e:' + edit.id, true);
  conv.bytes -= registerBytes(edit);
}

function dropTombstone(conv: Conversation, id: string): void {
  if (conv.tombstones.delete(id)) {
    toggle(conv, 't:' + id);
    conv.bytes -= TOMBSTONE_BYTES + 2 * id.length;
  }
}

export function publicMessage(e: Entry): StoredMessage {
  const m: StoredMessage = { id: e.id, sender: e.sender, content: e.content, timestamp: e.timestamp };
  if (e.author !== undefined) m.author = e.author;
  if (e.editedAt !== undefined) m.editedAt = e.editedAt;
  return m;
}

/** A message as a `message` write (text '' once deleted): for catch-up and the disk. */
export function messageWrite(room: string, m: StoredMessage & { cid?: string }): StoreWrite {
  const write: StoreWrite = { type: 'message', id: m.id, room, user: m.sender, text: m.content, ts: m.timestamp };
  if (m.author !== undefined) write.by = m.author;
  if (m.cid !== undefined) write.cid = m.cid;
  return write;
}

export function compare(a: Pick<StoredMessage, 'timestamp' | 'id'>, b: Pick<StoredMessage, 'timestamp' | 'id'>): number {
  if (a.timestamp !== b.timestamp) return a.timestamp - b.timestamp;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Where a message goes in a sorted history; new messages usually go last, so search from the end. */
function insertionIndex(list: StoredMessage[], message: StoredMessage): number {
  if (list.length === 0 || compare(list[list.length - 1], message) < 0) return list.length;
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(list[mid], message) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Adds or removes (XOR) an id's hash in the conversation's set digest. The hash is two
 * independent 32-bit FNV-1a-style lanes with a final mix: not cryptographic (peers are
 * trusted), only there to tell two sets apart, and cheap enough to run on every message.
 */
export function toggle(conv: Conversation, text: string, register = false): void {
  const [a, b] = idHash(text);
  if (register) {
    conv.registersHi = (conv.registersHi ^ a) >>> 0;
    conv.registersLo = (conv.registersLo ^ b) >>> 0;
    return;
  }
  conv.digestHi = (conv.digestHi ^ a) >>> 0;
  conv.digestLo = (conv.digestLo ^ b) >>> 0;
}

/** The 64-bit hash (two 32-bit lanes) of an id in a set digest (see toggle). */
export function idHash(text: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  b ^= b >>> 15;
  b = Math.imul(b, 0xc2b2ae35);
  b ^= b >>> 16;
  return [a >>> 0, b >>> 0];
}

/** A set digest as 16 hex digits. */
export function hexDigest(hi: number, lo: number): string {
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/** The digest of everything held; `desk` false: of messages and tombstones only (for a peer without the desk). */
export function digestText(conv: Conversation, desk = true): string {
  const hi = desk ? (conv.digestHi ^ conv.registersHi) >>> 0 : conv.digestHi;
  const lo = desk ? (conv.digestLo ^ conv.registersLo) >>> 0 : conv.digestLo;
  return hexDigest(hi, lo);
}
