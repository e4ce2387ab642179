/**
 * A set digest per conversation of the records on disk (DATA_DIR): the XOR of a 64-bit hash
 * of every message key ('m:' + id, a message or a deleted one's placeholder) and delete key
 * ('t:' + id), as core/conversation.ts keeps one of memory's window. Two instances holding
 * the same records on disk have the same digest; the catch-up of the disk (history-sync.ts)
 * compares them. Records of other kinds are not counted (they are caught up in memory).
 *
 * Kept as records are written and removed, never by scanning: a key is toggled in when it is
 * new, out when it goes. lmdb's reads do not see puts whose commit is pending, so the keys
 * written or removed since the last commit are remembered here until it lands. A commit that
 * fails (disk full) leaves the digests stale: the next compaction rebuilds them.
 */
import { hexDigest, idHash } from '../core/conversation.js';
import type { Key } from './disk-window.js';

/** A record whose key counts in the digest: a message or a delete of a real room. */
export function countedKey(key: Key): boolean {
  return key[0] !== '' && (key[1].startsWith('m:') || key[1].startsWith('t:'));
}

export class DiskDigests {
  private readonly digests = new Map<string, [number, number]>();
  /** The commits pending, oldest first, each with the keys (room + NUL + key) it writes (true) or removes (false). */
  private readonly pending: Array<{ commit: Promise<unknown>; keys: Map<string, boolean> }> = [];
  /** A commit failed: the digests may count records that are not there. */
  stale = false;

  /** `onDisk`: whether a key is on disk as of the last commit (a read). */
  constructor(private readonly onDisk: (key: Key) => boolean) {}

  /** Whether a record is on disk, or will be once the pending commits land. */
  present(key: Key): boolean {
    const name = key[0] + '\0' + key[1];
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const present = this.pending[i].keys.get(name);
      if (present !== undefined) return present;
    }
    return this.onDisk(key);
  }

  /** A record put (its commit `commit`): counted if it is new; `fresh`: the caller knows it is (no read). */
  put(key: Key, commit: Promise<unknown>, fresh = false): void {
    this.change(key, true, commit, fresh);
  }

  /** A record removed: no longer counted. */
  remove(key: Key, commit: Promise<unknown>): void {
    this.change(key, false, commit);
  }

  /** A record found on disk (at load, or a rebuild). */
  loaded(key: Key): void {
    if (countedKey(key)) this.toggle(key);
  }

  /** The digest of a room's records on disk (16 hex digits; all zero when it has none). */
  digestOf(room: string): string {
    const d = this.digests.get(room);
    return d ? hexDigest(d[0], d[1]) : hexDigest(0, 0);
  }

  /** No commit is pending: what is on disk is all there is (a rebuild counts it right). */
  get idle(): boolean {
    return this.pending.length === 0;
  }

  /** Forgets every digest, before a rebuild from the keys on disk. */
  clear(): void {
    this.digests.clear();
    this.stale = false;
  }

  private change(key: Key, present: boolean, commit: Promise<unknown>, fresh = false): void {
    if (!countedKey(key)) return;
    if (fresh || this.present(key) !== present) this.toggle(key);
    // The writes of one event-loop turn share a commit (and its promise): one entry for them all.
    let batch = this.pending[this.pending.length - 1];
    if (batch?.commit !== commit) {
      const fresh = (batch = { commit, keys: new Map() });
      this.pending.push(fresh);
      const settle = () => this.pending.splice(this.pending.indexOf(fresh), 1);
      commit.then(settle, () => {
        this.stale = true;
        settle();
      });
    }
    batch.keys.set(key[0] + '\0' + key[1], present);
  }

  private toggle(key: Key): void {
    const [a, b] = idHash(key[1]);
    const d = this.digests.get(key[0]) ?? [0, 0];
    d[0] = (d[0] ^ a) >>> 0;
    d[1] = (d[1] ^ b) >>> 0;
    if (d[0] === 0 && d[1] === 0) this.digests.delete(key[0]);
    else this.digests.set(key[0], d);
  }
}
