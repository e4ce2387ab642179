/**
 * The sync channel's frames: link-local catch-up between the two ends of one peer link
 * (envelope `sync`, never forwarded), one JSON object per frame, tagged by `k`:
 *   {"k":"sum","entries":[{c,d,a}…]}      the store's summary: one digest per conversation
 *   {"k":"want","c":room,"ids":[…]}       the ids held for a conversation whose digest differs
 *   {"k":"give","writes":[…]}             the writes the other side lacks
 *   {"k":"presence","tables":[…]}         every presence table the sender holds
 * One decoder for all of them; the SyncChannel switches on the result. A kind it does not
 * know is dropped without blame (a newer node may send it); a known kind of the wrong shape
 * is invalid.
 */
import type { SummaryEntry } from '../core/conversation-store.js';

export type SyncFrame =
  | { k: 'sum'; entries: SummaryEntry[] }
  | { k: 'want'; c: string; ids: unknown[] }
  | { k: 'give'; writes: unknown[] }
  | { k: 'presence'; tables: unknown[] };

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
      return Array.isArray(value.entries) ? { ok: true, frame: { k: 'sum', entries: value.entries } } : invalid;
    case 'want':
      return typeof value.c === 'string' && Array.isArray(value.ids) ? { ok: true, frame: { k: 'want', c: value.c, ids: value.ids } } : invalid;
    case 'give':
      return Array.isArray(value.writes) ? { ok: true, frame: { k: 'give', writes: value.writes } } : invalid;
    case 'presence':
      return Array.isArray(value.tables) ? { ok: true, frame: { k: 'presence', tables: value.tables } } : invalid;
    default:
      // A kind this version does not know (a newer node's); anything without a kind is malformed.
      return typeof value?.k === 'string' ? { ok: false, problem: 'unknown' } : { ok: false, problem: 'malformed' };
  }
}
