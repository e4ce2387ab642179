/**
 * The history on disk beyond memory's window (DATA_DIR), for what memory cannot answer:
 * - the catch-up of the disk between instances (replication/history-sync.ts): the digest of
 *   a room's records per hour of message time, and the writes of the hours that differ;
 * - a message older than memory's window, as kept (a DELETE of it, a resume from it);
 * - the recording of a write that memory's window is too small to take (a late copy of an
 *   old message, a delete of one): it goes to disk only.
 * Only message ('m:') and delete ('t:') records are read here; records of other kinds are skipped.
 */
import type { RootDatabase } from 'lmdb';
import { hexDigest, idHash } from '../core/conversation.js';
import type { StoredMessage, StoreWrite } from '../core/conversation-store.js';
import type { DiskDigests } from './disk-digest.js';
import { deletes, historyBefore, messages, type Key } from './disk-window.js';

/** The span of one bucket of the disk's catch-up: an hour of message time (the `ts` of a message, and of its delete). */
export const BUCKET_MS = 3_600_000;

/** A message on disk as the reads beyond memory need it. */
export interface DiskMessage {
  id: string;
  timestamp: number;
  /** The author's token sub (AUTH=jwt). */
  author?: string;
  /** Deleted: its record is a placeholder, or its delete is on disk. */
  deleted: boolean;
}

/** A message or delete as kept on disk. */
export type DiskWrite = Extract<StoreWrite, { type: 'message' | 'deleted' }>;

function parse(value: Buffer): DiskWrite | null {
  try {
    const w = JSON.parse(value.toString('utf8')) as DiskWrite;
    return typeof w === 'object' && w !== null && (w.type === 'message' || w.type === 'deleted') && Number.isSafeInteger(w.ts) ? w : null;
  } catch {
    return null;
  }
}

const bucketOf = (w: DiskWrite): number => Math.floor(w.ts / BUCKET_MS);

export class DiskHistory {
  constructor(
    private readonly db: RootDatabase<Buffer, Key>,
    private readonly digests: DiskDigests,
    /** Writes a record in the next commit (DiskStore's group commit); the promise of that commit. */
    private readonly keep: (key: Key, value: Buffer) => Promise<void>,
  ) {}

  /** The digest of a room's message and delete records (see disk-digest.ts). */
  digestOf(room: string): string {
    return this.digests.digestOf(room);
  }

  /** The digest of a room's records per bucket (BUCKET_MS of message time), by bucket, empty buckets left out. */
  buckets(room: string): Array<[number, string]> {
    const sums = new Map<number, [number, number]>();
    for (const [key, write] of this.records(room)) {
      const bucket = bucketOf(write);
      const [a, b] = idHash(key[1]);
      const d = sums.get(bucket) ?? [0, 0];
      sums.set(bucket, [(d[0] ^ a) >>> 0, (d[1] ^ b) >>> 0]);
    }
    return [...sums].sort((x, y) => x[0] - y[0]).map(([bucket, d]) => [bucket, hexDigest(d[0], d[1])]);
  }

  /** The deletes, then the messages (deleted ones as placeholders), of a room in the buckets `wanted` picks. */
  *writesIn(room: string, wanted: (bucket: number) => boolean): Iterable<DiskWrite> {
    for (const [, write] of this.records(room)) if (wanted(bucketOf(write))) yield write;
  }

  /** The messages of a room on disk sorting before `before` (all when null), deleted ones left out, in order. */
  historyBefore(room: string, before: Pick<StoredMessage, 'timestamp' | 'id'> | null): StoredMessage[] {
    return historyBefore(this.db, room, before);
  }

  /** A message as kept on disk (deleted or not), or null. */
  messageAt(room: string, id: string): DiskMessage | null {
    const value = this.db.get([room, 'm:' + id]);
    const w = value ? parse(value) : null;
    if (w?.type !== 'message' || w.id !== id) return null;
    const deleted = w.text === '' || this.digests.present([room, 't:' + id]);
    return w.by === undefined ? { id, timestamp: w.ts, deleted } : { id, timestamp: w.ts, author: w.by, deleted };
  }

  /**
   * Records a message or delete that memory's window does not take (older than all it keeps),
   * unless it is on disk already: a message whose delete is here as its placeholder; a delete
   * with the message's record turned into its placeholder. The promise of its commit; null
   * when nothing was written. The disk's own window is kept at the next compaction.
   */
  keepOlder(write: StoreWrite): Promise<void> | null {
    const room = write.room;
    if (write.type === 'message') {
      if (this.digests.present([room, 'm:' + write.id])) return null;
      const deleted = this.digests.present([room, 't:' + write.id]);
      return this.keep([room, 'm:' + write.id], json(deleted ? { ...write, text: '' } : write));
    }
    if (write.type !== 'deleted' || this.digests.present([room, 't:' + write.id])) return null;
    const durable = this.keep([room, 't:' + write.id], json(write));
    const value = this.db.get([room, 'm:' + write.id]);
    const message = value ? parse(value) : null;
    if (message?.type === 'message' && message.text !== '') return this.keep([room, 'm:' + write.id], json({ ...message, text: '' }));
    return durable;
  }

  /** A room's delete records, then its message records, parsed (what cannot be read is skipped). */
  private *records(room: string): Iterable<[Key, DiskWrite]> {
    for (const range of [deletes(room), messages(room)]) {
      for (const { key, value } of this.db.getRange(range)) {
        const write = parse(value);
        if (write) yield [key, write];
      }
    }
  }
}

const json = (write: StoreWrite): Buffer => Buffer.from(JSON.stringify(write));
