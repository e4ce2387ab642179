/**
 * The record of one instance's store on disk, in LMDB (the lmdb package): every write the
 * in-memory store took, keyed by conversation, so a restart loads what the instance held.
 *
 * Writes made in one event-loop turn are committed in one transaction (lmdb's event-turn
 * batching: group commit), and with overlappingSync off a commit resolves only once it is
 * synced to disk. `durable()` is the promise of the last write recorded: a caller that
 * answers (201/204, the WebSocket echo, a peer's ack) waits for it first.
 *
 * What is kept per conversation: its `created` write (the lowest id), every message (a
 * deleted one as an empty placeholder, which keeps its place) and every delete. Memory is a
 * cache, the disk is the record: the disk keeps a window of its own, the newest `maxMessages`
 * (MAX_DISK_MESSAGES_PER_CONVERSATION) by (timestamp, id), larger than memory's; what falls
 * out of it (with its delete) is removed at the next sweep (compact) and at start-up, and
 * rooms that expire or are evicted are removed whole. REST reads the history from here.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { RootDatabase } from 'lmdb';
import { openStoreFile, STORE_FILE } from './store-file.js';
import type { ConversationStore, StoredMessage, StoreWrite } from '../core/conversation-store.js';
import { DISK_MESSAGES_DEFAULT, historyBefore, trimWindow, type Key } from './disk-window.js';
import { DiskDigests } from './disk-digest.js';
import { DiskHistory } from './disk-history.js';

export { DISK_MESSAGES_DEFAULT } from './disk-window.js';
export { STORE_FILE } from './store-file.js';

const json = (write: StoreWrite): Buffer => Buffer.from(JSON.stringify(write));

/** The key of the probe write (no room has an empty name). */
const PROBE: Key = ['', 'probe'];
/** The key of the eviction horizon (MAX_DISK_BYTES). */
const HORIZON: Key = ['', 'horizon'];

/**
 * The key of a write's record in its room (a message's is 'm:' + id): one per register for
 * the desk's writes, holding the winner (an edit also rewrites its message's record).
 */
function recordKey(write: Exclude<StoreWrite, { type: 'message' }>): string {
  switch (write.type) {
    case 'created':
      return 'c';
    case 'deleted':
      return 't:' + write.id;
    case 'field':
      return 'f:' + write.f;
    case 'read':
      return 'r:' + write.user;
    case 'edited':
      return 'e:' + write.msg;
  }
}

export class DiskStore {
  private readonly db: RootDatabase<Buffer, Key>;
  private last: Promise<void> | null = null;
  private lastRaw: Promise<boolean> | null = null;
  /** Rooms written since the last compaction. */
  private readonly touched = new Set<string>();
  /** The last commit failed (disk full, I/O error): writes are refused until one succeeds. */
  private failing: Error | null = null;
  readonly counters = { writes: 0, failures: 0 };
  /** The digest per room of its message and delete records (the disk's catch-up compares them). */
  readonly digests: DiskDigests;
  /** The history beyond memory's window: the disk's catch-up, and what memory cannot answer. */
  readonly history: DiskHistory;

  /**
   * Opens (or creates) the store in `dir`. Once a store was opened there (a marker file says
   * so), a missing or cut store file is damage, not a first start: refused.
   * `maxBytes` (MAX_DISK_BYTES): over it, compact() removes the least recently active conversations.
   * `maxMessages`: the disk's window per conversation (never smaller than memory's).
   */
  constructor(readonly dir: string, private readonly maxBytes?: number, private readonly maxMessages = DISK_MESSAGES_DEFAULT) {
    const { db, firstOpen } = openStoreFile(dir);
    this.db = db;
    this.digests = new DiskDigests((key) => this.db.get(key) !== undefined);
    this.history = new DiskHistory(this.db, this.digests, (key, value) => this.keep(key, value));
    firstOpen();
  }

  get failed(): boolean {
    return this.failing !== null;
  }

  /**
   * Records a write the store took, as `payload` (its JSON bytes, as replicated).
   * `placeholder`: the message the write is about as the store now holds it, when that
   * differs (a deleted message: text ''), to overwrite the message's record.
   * `newMessage`: the write is a message the store has just taken as new. It is then on disk
   * neither (the disk's window holds at least memory's, and a message that fell out of
   * memory's is older than all it holds, so the store does not take it again): its digest
   * needs no read to learn whether the key is new.
   */
  record(write: StoreWrite, payload: Buffer, placeholder: StoreWrite | null, newMessage = false): Promise<void> {
    const room = write.room;
    this.touched.add(room);
    if (write.type === 'message') this.put([room, 'm:' + write.id], placeholder ? json(placeholder) : payload, newMessage && placeholder === null);
    else {
      this.put([room, recordKey(write)], payload);
      if (placeholder) this.put([room, 'm:' + placeholder.id], json(placeholder));
    }
    this.counters.writes++;
    return this.last!;
  }

  /** The promise of everything recorded so far being on disk; null if nothing is pending. */
  durable(): Promise<void> | null {
    return this.last;
  }

  /**
   * Puts one record. The promise kept in `last` settles after every earlier one (lmdb does
   * not resolve the puts of a commit in the order they were made): so deliveries that wait
   * for it keep the order of the writes, and waiting for it covers everything before.
   * `fresh`: the key is known to be on disk neither now nor in a pending commit.
   */
  private put(key: Key, value: Buffer, fresh = false): void {
    const raw = this.db.put(key, value);
    this.digests.put(key, raw, fresh);
    // The puts of one commit share lmdb's promise: the one held for it covers this one too.
    if (raw === this.lastRaw && this.last) return;
    this.lastRaw = raw;
    const put = raw.then(
      () => this.setFailing(null),
      (err: Error & { commitError?: Promise<unknown> }) => {
        // lmdb keeps the cause in a promise of its own, rejected too: handled here, never a crash.
        err.commitError?.catch(() => {});
        this.counters.failures++;
        if (!this.failing) this.probeLater();
        this.setFailing(err);
        throw err;
      },
    );
    const before = this.last;
    const p: Promise<void> = before ? before.then(() => put) : put;
    const settled = () => {
      if (this.last === p) this.last = null;
    };
    p.then(settled, settled); // a caller that waits sees a failure; an unawaited one is no crash
    put.catch(() => {});
    this.last = p;
  }

  /** Removes one record (in the next commit). */
  private remove(key: Key): void {
    const raw = this.db.remove(key);
    this.digests.remove(key, raw);
    raw.catch(() => {});
  }

  /** Records one write the store did not take (see DiskHistory.keepOlder); the promise of its commit. */
  private keep(key: Key, value: Buffer): Promise<void> {
    this.touched.add(key[0]);
    this.put(key, value);
    this.counters.writes++;
    return this.last!;
  }

  /** Told when writes start failing (with the cause) and when they are taken again (null). */
  onFailing: ((err: Error | null) => void) | null = null;

  private setFailing(err: Error | null): void {
    const changed = (err === null) !== (this.failing === null);
    this.failing = err;
    if (changed) this.onFailing?.(err);
  }

  /** While failing, tries a small write every second: writes are taken again once one succeeds. */
  private probeLater(): void {
    const timer = setTimeout(() => {
      if (this.closed) return;
      this.db.put(PROBE, Buffer.from('{}')).then(
        () => {
          this.setFailing(null);
          this.db.remove(PROBE).catch(() => {});
        },
        (err: Error & { commitError?: Promise<unknown> }) => {
          err.commitError?.catch(() => {});
          this.probeLater();
        },
      );
    }, 1000);
    timer.unref();
  }

  /** Replays every write on disk into the store; returns how many. */
  load(store: ConversationStore): number {
    let n = 0;
    for (const { key, value } of this.db.getRange()) {
      if (key[0] === '') {
        if (key[1] === 'horizon') store.horizon = Number(value.toString());
        continue; // the probe, the horizon
      }
      this.digests.loaded(key);
      store.apply(JSON.parse(value.toString('utf8')) as StoreWrite, 'catch-up');
      n++;
    }
    for (const room of this.rooms()) if (room !== '') this.touched.add(room);
    this.compact(store);
    return n;
  }

  /** What /health and /metrics show of the disk (the fields are described in http/health.ts, DiskHealth). */
  state() {
    const bytes = this.closed ? { usedBytes: 0, fileBytes: 0 } : { usedBytes: this.usedBytes(), fileBytes: this.fileBytes() };
    return { writable: this.failing === null, recordsWritten: this.counters.writes, commitFailures: this.counters.failures, ...bytes, maxBytes: this.maxBytes ?? null };
  }

  /** Bytes of the pages LMDB uses now (the file keeps its size: freed pages are reused). */
  usedBytes(): number {
    const s = this.db.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    return s.pageSize * (s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages);
  }

  /**
   * Over MAX_DISK_BYTES: removes the least recently active conversations until about a tenth
   * under it (estimated from their records: pages are not full), and keeps the horizon (see
   * ConversationStore.horizon) on disk, so a restart does not take them back from peers.
   */
  private enforceLimit(store: ConversationStore): void {
    if (this.maxBytes === undefined || this.usedBytes() <= this.maxBytes) return;
    let excess = this.usedBytes() - Math.floor(this.maxBytes * 0.9);
    while (excess > 0) {
      const removed = store.evictOldest();
      if (removed.length === 0) break;
      for (const room of removed) {
        this.touched.add(room);
        for (const { key, value } of this.db.getRange({ start: [room], end: [room, '\uffff'] })) excess -= 1.5 * (value.length + key[0].length + key[1].length + 16);
      }
    }
    this.put(HORIZON, Buffer.from(String(store.horizon)));
  }

  /** Removes from disk what is no longer kept, for the rooms written since last time: rooms the store dropped, messages out of the disk's window. */
  compact(store: ConversationStore): void {
    this.enforceLimit(store);
    const rooms = [...this.touched];
    this.touched.clear();
    for (const room of rooms) {
      if (!store.has(room)) {
        for (const key of this.db.getKeys({ start: [room], end: [room, '\uffff'] })) this.remove(key);
      } else trimWindow(this.db, room, this.maxMessages, (key) => this.remove(key));
    }
    if (this.digests.stale && !this.failing && this.digests.idle) {
      this.digests.clear(); // a commit failed: count again what is on disk
      for (const key of this.db.getKeys()) this.digests.loaded(key);
    }
  }

  /** The messages of a room on disk older than `before` (all when null), deleted ones left out, in (timestamp, id) order. */
  historyBefore(room: string, before: Pick<StoredMessage, 'timestamp' | 'id'> | null): StoredMessage[] {
    return historyBefore(this.db, room, before);
  }

  /** Forgets rooms the store removed (expired). */
  removeRooms(rooms: string[]): void {
    for (const room of rooms) this.touched.add(room);
  }

  /** Distinct rooms on disk. */
  private *rooms(): Iterable<string> {
    let prev: string | null = null;
    for (const key of this.db.getKeys()) {
      if (key[0] !== prev) yield (prev = key[0]);
    }
  }

  /** Bytes the store file takes. */
  fileBytes(): number {
    try {
      return statSync(join(this.dir, STORE_FILE)).size;
    } catch {
      return 0;
    }
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }
}
