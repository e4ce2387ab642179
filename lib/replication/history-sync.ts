/**
 * The catch-up of the disk (DATA_DIR): the history beyond memory's window, which the
 * summary/want/give catch-up (replicator.ts) does not see.
 *
 * Summary entries carry `h`, the digest of the room's records on disk (disk-digest.ts); old
 * nodes ignore the field. When a peer's `h` differs from ours, we send it our digests per
 * bucket (an hour of message time): `hsum`. It answers with every message (a deleted one as
 * its placeholder) and delete it holds on disk in the buckets whose digests differ: `hgive`,
 * except those in its memory window, which the catch-up of memory gives (precisely, by id).
 * Both sides do this (each sends a summary at link-up), so each ends with the union. Only a
 * peer that sent `h` ever gets `hsum`, so an old node never sees the new kinds.
 *
 * A write from `hgive` is applied as catch-up; one that memory's window is too small to take
 * goes to disk only (keepOlder). Everything from a peer is bounded and checked: a frame out
 * of bounds counts as invalid whole, a write that fails decodeWrite counts too.
 */
import { DEFAULTS, type ChatmeshOptions } from '../config.js';
import type { ConversationStore, SummaryEntry } from '../core/conversation-store.js';
import type { ResumeAnswer } from '../core/resume.js';
import { resumeFromOlder } from '../core/resume.js';
import { compare } from '../core/conversation.js';
import { decodeWrite, isValidName, type StoreWrite } from '../core/store-write.js';
import type { Mesh } from '../mesh/mesh.js';
import type { DiskHistory, DiskMessage } from '../storage/disk-history.js';
import type { HistorySum } from './sync-codec.js';
import type { SyncChannel } from './sync-channel.js';
import { PacedSends } from './paced-sends.js';

/** Most buckets in one hsum frame and writes in one hgive frame (a frame with more is invalid). */
export const MAX_BUCKETS_PER_FRAME = 1000;
export const MAX_WRITES_PER_FRAME = 1000;
/** The `to` of the last hsum frame of a room: past every bucket. */
const LAST_BUCKET = 2 ** 40;
const FRAME_BYTES = 256 * 1024;
const DIGEST = /^[0-9a-f]{16}$/;
/** The pace of hgive frames to one peer: well under what a link buffers before it is cut as too slow. */
const GIVE_TICK_MS = 50;

/** maxPeerBufferBytes: the send buffer a link keeps before it is cut (the node's options carry it; DEFAULTS' otherwise). */
export type HistorySyncOptions = Pick<ChatmeshOptions, 'maxNameLength' | 'maxTextLength' | 'maxPeerPayloadBytes'> & Partial<Pick<ChatmeshOptions, 'maxPeerBufferBytes'>>;

export class HistorySync {
  readonly counters = { sumsSent: 0, writesGiven: 0 };
  private readonly gives: PacedSends;

  constructor(
    private readonly store: ConversationStore,
    private readonly disk: DiskHistory,
    private readonly sync: SyncChannel,
    private readonly mesh: Pick<Mesh, 'reportInvalid'>,
    private readonly options: HistorySyncOptions,
    /** Applies valid writes from a peer as catch-up (the replicator's give path). */
    private readonly apply: (peerId: string, writes: StoreWrite[]) => void,
  ) {
    // A twentieth of the send buffer per tick (at least a frame): at most a send buffer a second.
    this.gives = new PacedSends((peerId, frame) => sync.send(peerId, frame), { bytesPerTick: Math.floor((options.maxPeerBufferBytes ?? DEFAULTS.maxPeerBufferBytes) / 20), tickMs: GIVE_TICK_MS });
    sync.handle({ historySum: (peerId, sum) => this.onSum(peerId, sum), historyGive: (peerId, room, writes) => this.onGive(peerId, room, writes) });
  }

  /** Summary entries with the digest of each room's records on disk (`h`). */
  withDigests(entries: SummaryEntry[]): Array<SummaryEntry & { h: string }> {
    return entries.map((e) => ({ ...e, h: this.disk.digestOf(e.c) }));
  }

  /** A peer's summary entry (checked): when it carries a disk digest other than ours, our buckets go to it. */
  compare(peerId: string, entry: SummaryEntry & { h?: unknown }): void {
    const { c: room, h: theirs } = entry;
    if (typeof theirs !== 'string' || theirs === this.disk.digestOf(room)) return; // an old peer, or the same records
    if (entry.a <= this.store.horizon) return; // evicted here (MAX_DISK_BYTES): never brought back
    const per = Math.max(1, Math.min(MAX_BUCKETS_PER_FRAME, Math.floor(this.frameBytes() / 40)));
    const buckets = this.disk.buckets(room);
    let from = 0;
    for (let i = 0; i === 0 || i < buckets.length; i += per) {
      const page = buckets.slice(i, i + per);
      const to = i + per >= buckets.length ? LAST_BUCKET : page[page.length - 1][0];
      this.sync.send(peerId, { k: 'hsum', c: room, from, to, b: page });
      from = to + 1;
    }
    this.counters.sumsSent++;
  }

  /** A message older than memory's window, as kept on disk (DELETE of it, resume from it). */
  messageAt(room: string, id: string): DiskMessage | null {
    return this.disk.messageAt(room, id);
  }

  /**
   * A resume from `since` that memory does not hold (older than its window) but the disk
   * does: what follows it on disk then in memory (see core/resume.ts resumeFromOlder).
   */
  resumeFromDisk(room: string, since: string): ResumeAnswer {
    const at = this.store.placeholderOf(room, since) === null ? this.disk.messageAt(room, since) : null;
    if (!at) return { complete: false };
    const recent = this.store.history(room) ?? [];
    return resumeFromOlder(at, this.disk.historyBefore(room, recent[0] ?? null), recent);
  }

  /** A write memory's window does not take: on disk, when the room is held and the disk lacks it (see DiskHistory.keepOlder). */
  keepOlder(write: StoreWrite): Promise<void> | null {
    return this.store.has(write.room) ? this.disk.keepOlder(write) : null;
  }

  private frameBytes(): number {
    return Math.min(FRAME_BYTES, Math.floor(this.options.maxPeerPayloadBytes / 4));
  }

  /**
   * Their buckets from..to: our writes in every bucket of that span whose digest differs,
   * older than memory's window (what is in it, the catch-up of memory gives the peer).
   */
  private onSum(peerId: string, sum: HistorySum): void {
    const theirs = this.bucketsOf(sum);
    if (!isValidName(sum.c, this.options.maxNameLength) || theirs === null) return this.mesh.reportInvalid(peerId, 'disk catch-up buckets');
    const differ = new Set<number>();
    for (const [bucket, digest] of this.disk.buckets(sum.c)) {
      if (bucket >= sum.from && bucket <= sum.to && theirs.get(bucket) !== digest) differ.add(bucket);
    }
    if (differ.size === 0) return;
    const maxBytes = this.frameBytes();
    let batch: StoreWrite[] = [];
    let bytes = 0;
    const window = this.store.history(sum.c)?.[0];
    for (const write of this.disk.writesIn(sum.c, (bucket) => differ.has(bucket))) {
      if (window && compare({ timestamp: write.ts, id: write.id }, window) >= 0) continue;
      const size = Buffer.byteLength(JSON.stringify(write)) + 1;
      if (batch.length > 0 && (bytes + size > maxBytes || batch.length >= MAX_WRITES_PER_FRAME)) {
        this.gives.enqueue(peerId, { k: 'hgive', c: sum.c, writes: batch }, bytes);
        batch = [];
        bytes = 0;
      }
      batch.push(write);
      bytes += size;
      this.counters.writesGiven++;
    }
    if (batch.length > 0) this.gives.enqueue(peerId, { k: 'hgive', c: sum.c, writes: batch }, bytes);
  }

  /** The [bucket, digest] pairs of a frame, if every one is well-formed, within its span and not repeated; else null. */
  private bucketsOf(sum: HistorySum): Map<number, string> | null {
    if (sum.b.length > MAX_BUCKETS_PER_FRAME || sum.to > LAST_BUCKET) return null;
    const out = new Map<number, string>();
    for (const pair of sum.b) {
      if (!Array.isArray(pair) || pair.length !== 2) return null;
      const [bucket, digest] = pair as unknown[];
      if (!Number.isSafeInteger(bucket) || (bucket as number) < sum.from || (bucket as number) > sum.to) return null;
      if (typeof digest !== 'string' || !DIGEST.test(digest) || out.has(bucket as number)) return null;
      out.set(bucket as number, digest);
    }
    return out;
  }

  /** Writes from disk for one room: messages and deletes only, each checked as any write from a peer. */
  private onGive(peerId: string, room: string, writes: unknown[]): void {
    if (!isValidName(room, this.options.maxNameLength) || writes.length > MAX_WRITES_PER_FRAME) return this.mesh.reportInvalid(peerId, 'disk catch-up writes');
    const valid: StoreWrite[] = [];
    for (const value of writes) {
      const write = decodeWrite(value, this.options);
      if (write && write.room === room && (write.type === 'message' || write.type === 'deleted')) valid.push(write);
    }
    this.apply(peerId, valid);
    if (valid.length < writes.length) this.mesh.reportInvalid(peerId, `disk catch-up: ${writes.length - valid.length} of ${writes.length} writes`);
  }
}
