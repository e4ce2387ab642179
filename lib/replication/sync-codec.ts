/**
 * The sync channel's frames: link-local catch-up between the two ends of one peer link
 * (envelope `sync`, never forwarded), one JSON object per frame, tagged by `k`:
 *   {"k":"sum","entries":[{c,d,a}…],"last":true}   the store's summary: one digest per
 *                                         conversation, in pages; `last` on the final page
 *   {"k":"want","c":room,"ids":[…]}       the ids held for a conversation whose digest differs
 *   {"k":"give","writes":[…],"c":room,"last":true}  the writes the other side lacks, in
 *                                         frames; `c` and `last` on the final one
 *   {"k":"presence","tables":[…]}         whole presence tables the sender holds, as many as fit
 *   {"k":"presence-part","id","n","last","origin","version","members":[…]}
 *                                         part `n` of one table too big for a frame: the parts
 *                                         of sequence `id` are applied together, once `last` came
 *                                         (an older node drops this kind as unknown, link intact)
 *   {"k":"ask"}                           "send me your summary": after a link to a third
 *                                         node dropped, frames in flight on it are lost, and
 *                                         the peers still linked may hold them
 *   {"k":"revoke","entries":[…]}          revocation entries (lib/auth/revocation.ts): the whole
 *                                         table at link-up, then each new entry; merged as a join,
 *                                         passed on only when it changed something here (an older
 *                                         node drops this kind as unknown, link intact)
 *   {"k":"hsum","c":room,"from":n,"to":n,"b":[[bucket,digest]…]}   DATA_DIR: the digests of the
 *                                         disk's records of a room per hour of message time,
 *                                         buckets `from`..`to` (empty ones left out); sent only
 *                                         to a peer whose summary carried the disk digest `h`
 *   {"k":"hgive","c":room,"writes":[…]}   the answer: the writes on disk in the buckets that differ
 * `last` and `c` on sum and give came with catch-up holds (catch-up-hold.ts): a peer without
 * them is still understood (its holds end at their deadline), and older peers ignore them.
 * One decoder for all of them; the SyncChannel switches on the result. A kind it does not
 * know is dropped without blame (a newer node may send it); a known kind of the wrong shape
 * is invalid.
 */
import type { SummaryEntry } from '../core/conversation-store.js';

export type SyncFrame =
  | { k: 'sum'; entries: SummaryEntry[]; last?: true }
  | { k: 'want'; c: string; ids: unknown[] }
  | { k: 'give'; writes: unknown[]; c?: string; last?: true }
  | { k: 'presence'; tables: unknown[] }
  | PresencePart
  | { k: 'ask' }
  | { k: 'revoke'; entries: unknown[] }
  | HistorySum
  | { k: 'hgive'; c: string; writes: unknown[] };

/** The digests of the disk's records of a room, per bucket (see storage/disk-history.ts), for buckets `from`..`to`. */
export interface HistorySum {
  k: 'hsum';
  c: string;
  from: number;
  to: number;
  /** [bucket, digest] pairs, checked by their reader. */
  b: unknown[];
}

/** One part of a presence table sent in several frames (see presence-snapshots.ts). */
export interface PresencePart {
  k: 'presence-part';
  /** The sequence: one per table sent, unique per sender and link. */
  id: number;
  /** The part's place in the sequence, from 0. */
  n: number;
  last: boolean;
  origin: string;
  version: number;
  members: unknown[];
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export type SyncDecoded =
  | { ok: true; frame: SyncFrame }
  /** malformed: not JSON; unknown: no known `k`; invalid: a known `k` with fields of the wrong shape. */
  | { ok: false; problem: 'malformed' | 'unknown' | 'invalid' };

export function encodeSyncFrame(frame: SyncFrame): Buffer {
  return Buffer.from(JSON.stringify(frame));
}

export function decodeSyncFrame(payload: Buffer): SyncDecoded {
  let value: Record<string, unknown> | null;
  try {
    value = JSON.parse(payload.toString());
  } catch {
    return { ok: false, problem: 'malformed' };
  }
  const invalid = { ok: false, problem: 'invalid' } as const;
  switch (value?.k) {
    case 'sum':
      return Array.isArray(value.entries) ? { ok: true, frame: { k: 'sum', entries: value.entries, ...(value.last === true ? { last: true as const } : {}) } } : invalid;
    case 'want':
      return typeof value.c === 'string' && Array.isArray(value.ids) ? { ok: true, frame: { k: 'want', c: value.c, ids: value.ids } } : invalid;
    case 'give':
      if (!Array.isArray(value.writes)) return invalid;
      return { ok: true, frame: { k: 'give', writes: value.writes, ...(typeof value.c === 'string' ? { c: value.c } : {}), ...(value.last === true ? { last: true as const } : {}) } };
    case 'presence':
      return Array.isArray(value.tables) ? { ok: true, frame: { k: 'presence', tables: value.tables } } : invalid;
    case 'ask':
      return { ok: true, frame: { k: 'ask' } };
    case 'revoke':
      return Array.isArray(value.entries) ? { ok: true, frame: { k: 'revoke', entries: value.entries } } : invalid;
    case 'hsum': {
      const { c, from, to, b } = value;
      if (typeof c !== 'string' || !isCount(from) || !isCount(to) || from > to || !Array.isArray(b)) return invalid;
      return { ok: true, frame: { k: 'hsum', c, from, to, b } };
    }
    case 'hgive':
      return typeof value.c === 'string' && Array.isArray(value.writes) ? { ok: true, frame: { k: 'hgive', c: value.c, writes: value.writes } } : invalid;
    case 'presence-part': {
      const { id, n, last, origin, version, members } = value;
      if (!isCount(id) || !isCount(n) || typeof last !== 'boolean' || typeof origin !== 'string' || !isCount(version) || !Array.isArray(members)) return invalid;
      return { ok: true, frame: { k: 'presence-part', id, n, last, origin, version, members } };
    }
    default:
      // A kind this version does not know (a newer node's); anything without a kind is malformed.
      return typeof value?.k === 'string' ? { ok: false, problem: 'unknown' } : { ok: false, problem: 'malformed' };
  }
}
