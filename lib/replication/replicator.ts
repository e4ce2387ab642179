/**
 * Replication of the conversation store over the mesh.
 *
 * - Local writes are applied here first, handed to local room members, then flooded to the
 *   peers; `commit` resolves when every peer linked at that moment has acknowledged (or
 *   after the ack timeout: the write stands locally and catch-up repairs the laggards).
 * - Writes from peers are validated, applied (idempotent, any order) and, when new,
 *   delivered to local members.
 * - Catch-up: when a link comes up, each side sends a summary (one digest per
 *   conversation). For every conversation whose digest differs, the receiver sends the ids
 *   it holds ("want"), and the other side answers with only the writes missing ("give").
 *   Both sides do this, so each ends with the union, tombstones included.
 */
import { EventEmitter } from 'node:events';
import type { ChatmeshOptions } from '../config.js';
import type { Logger } from '../log.js';
import type { ApplyResult, ConversationStore, SummaryEntry, WritePath } from '../core/conversation-store.js';
import type { DiskStore } from '../storage/disk-store.js';
import { parseTimestampId } from '../core/hybrid-clock.js';
import { decodeWrite, isValidName, stampedBy, writeId, type StoreWrite } from '../core/store-write.js';
import type { Mesh } from '../mesh/mesh.js';
import type { SyncChannel } from './sync-channel.js';
import { CatchUpHold } from './catch-up-hold.js';
import { DurableDeliveries } from './durable-deliveries.js';
import { HistorySync } from './history-sync.js';
import { givePages, summaryPages } from './catch-up-pages.js';
import { SnoozeTimers, conversationFrame, liveFrame } from './desk-delivery.js';
import { isDeskWrite } from '../core/desk-writes.js';
import { parsePeerJson } from '../mesh/peer-json.js';

/**
 * replicationAckTimeoutMs: the longest a write waits for acks; conversationTtlMs: summaries of
 * expired conversations are ignored; maxNameLength, maxTextLength: the bounds of writes from
 * peers (as of client frames); maxPeerPayloadBytes: catch-up frames stay well under it.
 */
export type ReplicatorOptions = Pick<ChatmeshOptions, 'replicationAckTimeoutMs' | 'conversationTtlMs' | 'maxNameLength' | 'maxTextLength' | 'maxPeerPayloadBytes'> & {
  sweepIntervalMs: number; // how often expired conversations and old tombstones are swept
};

interface ReplicatorEvents {
  /** Bytes for the members of a room on this instance. */
  deliver: [room: string, payload: Buffer];
  /** A peer's write applied live: the node that made it, and its lag (now − the write's clock time, ms). */
  lag: [origin: string, ms: number];
  /** A write committed on this instance (born here, never a peer's), once stored: webhooks announce these, once cluster-wide. */
  born: [write: StoreWrite];
  /** A conversation's inbox item may have changed: a write stored here (any origin), a snooze's end, or it expired (gone from the store). `reader`: only that user's unread (a read cursor). */
  changed: [room: string, reader?: string];
}

/** The most bytes of entries or writes per catch-up frame (see frameBytes). */
const GIVE_BYTES = 256 * 1024;
export interface CommitResult {
  /**
   * The store's answer (see ApplyResult): only `applied` was stored and replicated;
   * `storage_unavailable`: DATA_DIR cannot take writes now (disk full), nothing was stored.
   */
  result: ApplyResult | 'storage_unavailable';
  /** Resolves when linked peers acknowledged, or at the ack timeout. */
  replicated: Promise<{ acked: number; expected: number }>;
  /** Resolves when the write is on disk (at once without DATA_DIR); rejects if it could not be written. */
  durable: Promise<void>;
}

const DONE: Promise<void> = Promise.resolve();

export class Replicator extends EventEmitter<ReplicatorEvents> {
  private sweeper: NodeJS.Timeout | null = null;
  /** Replication and catch-up counters, for /health, /metrics and tests. */
  readonly counters = { writesCommitted: 0, writesFromPeers: 0, summariesSent: 0, wantsSent: 0, writesReceivedInCatchUp: 0 };
  /** Live deliveries held while catch-up with a newly linked peer is under way. */
  private readonly hold = new CatchUpHold((room, payload) => this.emit('deliver', room, payload));
  /** With DATA_DIR, live deliveries wait for their commit (durable-deliveries.ts). */
  private readonly deliveries = new DurableDeliveries((room, payload, id) => this.hold.offer(room, payload, id));
  /** Called with the replication lag of each write applied from a peer: now − the write's clock time, ms. */
  lagObserver: ((ms: number) => void) | null = null;
  /** With DATA_DIR: the catch-up of the disk, and the history beyond memory's window. */
  readonly history: HistorySync | null;
  /** Snoozes end without a write: members here are told at `until` (desk-delivery.ts). */
  private readonly snoozes: SnoozeTimers;

  constructor(
    readonly store: ConversationStore,
    private readonly mesh: Mesh,
    private readonly sync: SyncChannel,
    private readonly options: ReplicatorOptions,
    private readonly log: Logger,
    /** With DATA_DIR: the record on disk; deliveries and acks wait for its commits. */
    private readonly disk: DiskStore | null = null,
  ) {
    super();
    this.snoozes = new SnoozeTimers(store, (room) => {
      const frame = conversationFrame(store, room, Date.now());
      if (frame) this.emit('deliver', room, frame);
      this.emit('changed', room);
    });
    if (disk) mesh.ackAfter = () => disk.durable();
    this.history = disk ? new HistorySync(store, disk.history, sync, mesh, options, (peerId, writes) => this.onGive(peerId, writes, undefined, false)) : null;
    mesh.on('write', this.onPeerWrite);
    mesh.on('peer-up', this.onPeerUp);
    mesh.on('peer-down', this.onPeerDown);
    sync.handle({
      summary: (peerId, entries, last) => this.onSummary(peerId, entries, last),
      want: (peerId, room, ids) => this.onWant(peerId, room, ids),
      give: (peerId, writes, room, last) => this.onGive(peerId, writes, room, last),
      ask: (peerId) => this.sendSummary(peerId),
    });
  }

  start(): void {
    this.snoozes.armAll();
    this.sweeper = setInterval(() => {
      const removed = this.store.sweep();
      this.disk?.removeRooms(removed);
      this.disk?.compact(this.store);
      for (const room of removed) this.emit('changed', room);
      if (removed.length > 0) this.log.debug('expired conversations removed', { count: removed.length });
    }, this.options.sweepIntervalMs);
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.mesh.off('write', this.onPeerWrite);
    this.mesh.off('peer-up', this.onPeerUp);
    this.mesh.off('peer-down', this.onPeerDown);
    this.hold.close();
    this.snoozes.close();
  }

  /**
   * Applies a write made on this node, delivers it locally and replicates it. With
   * `waitForAcks` (REST), `replicated` resolves when linked peers acknowledged; without
   * (WebSocket messages, whose echo is their acknowledgement) peers send no ack at all.
   */
  commit(write: StoreWrite, waitForAcks = true): CommitResult {
    const none = Promise.resolve({ acked: 0, expected: 0 });
    if (this.disk?.failed) return { result: 'storage_unavailable', replicated: none, durable: DONE };
    const payload = Buffer.from(JSON.stringify(write));
    const { result, durable } = this.take(write, 'live', payload);
    if (result !== 'applied') return { result, replicated: none, durable: DONE };
    this.counters.writesCommitted++;
    // Announced (webhooks) only once stored: with DATA_DIR, once on disk; never if that failed.
    if (durable) durable.then(() => this.emit('born', write), () => {});
    else this.emit('born', write);
    const id = writeId(write);
    const frame = liveFrame(this.store, write, payload, Date.now());
    if (frame) this.deliveries.add(write.room, frame, id, durable);
    // The desk's writes go only to peers that announced `desk` (an older node would count them invalid).
    const replicated = this.mesh.publishWrite(write.room, id, payload, waitForAcks ? this.options.replicationAckTimeoutMs : null, isDeskWrite(write));
    return { result, replicated, durable: durable ?? DONE };
  }

  /** Applies a write to the store and, when it took it, records it on disk (as `payload`, its JSON bytes). */
  private take(write: StoreWrite, path: WritePath, payload?: Buffer): { result: ApplyResult; durable: Promise<void> | null } {
    const result = this.store.apply(write, path);
    const older = result === 'ignored' ? this.history?.keepOlder(write) : null;
    if (older) return { result: 'applied', durable: older };
    if (result === 'applied' && write.type === 'field' && write.f === 'status') this.snoozes.noteStatus(write);
    if (result === 'applied') this.emit('changed', write.room, write.type === 'read' ? write.user : undefined);
    if (result !== 'applied' || !this.disk) return { result, durable: null };
    // A message deleted before it arrived, or a delete: the message's record becomes its
    // placeholder; an edit (or a message edited before it arrived): its record takes the text.
    const edited = write.type === 'edited' || (write.type === 'message' && this.store.conversation(write.room)?.edits.has(write.id) === true);
    const changed = edited || write.type === 'deleted' || (write.type === 'message' && !this.store.hasMessage(write.room, write.id));
    const placeholder = changed ? this.store.placeholderOf(write.room, write.type === 'edited' ? write.msg : write.id) : null;
    return { result, durable: this.disk.record(write, payload ?? Buffer.from(JSON.stringify(write)), placeholder, write.type === 'message') };
  }

  private readonly onPeerWrite = (room: string, payload: Buffer, from: string, origin: string, id: string): void => {
    const write = decodeWrite(parsePeerJson(payload), this.options);
    // A write travels under its own id, from the node that stamped it: a peer cannot take the
    // id of a write yet to come (the real one would be dropped as a duplicate).
    if (!write || write.room !== room || writeId(write) !== id || stampedBy(id) !== origin) {
      this.mesh.reportInvalid(from, `write to ${JSON.stringify(room.slice(0, 64))}`);
      return;
    }
    // The payload bytes are delivered as they came: the frame is never re-encoded.
    const { result, durable } = this.take(write, 'live', payload);
    if (result !== 'applied') return;
    this.counters.writesFromPeers++;
    const now = Date.now();
    const at = parseTimestampId(id);
    if (at) {
      const lag = Math.max(0, now - at.wall);
      this.lagObserver?.(lag);
      this.emit('lag', origin, lag);
    }
    const frame = liveFrame(this.store, write, payload, now);
    if (frame) this.deliveries.add(room, frame, id, durable);
  };

  /** The most bytes of entries or writes in one catch-up frame: well under the largest frame a peer takes (it may be configured lower than ours). */
  private frameBytes(): number {
    return Math.min(GIVE_BYTES, Math.floor(this.options.maxPeerPayloadBytes / 4));
  }

  /** Ids of the writes of a room stored but held from live delivery (see CatchUpHold.heldIds). */
  heldIds(room: string): Set<string> | null {
    const held = this.hold.heldIds(room);
    const pending = this.deliveries.idsIn(room);
    return pending.length === 0 ? held : new Set([...(held ?? []), ...pending]);
  }

  private readonly onPeerUp = (peerId: string): void => {
    // Live deliveries wait until catch-up with this peer is done (see catch-up-hold.ts).
    this.hold.linked(peerId);
    this.sendSummary(peerId);
  };

  private sendSummary(peerId: string): void {
    // A peer without the desk compares digests of messages and deletes only.
    const desk = this.mesh.speaksDesk(peerId);
    const entries = this.history?.withDigests(this.store.summary(desk)) ?? this.store.summary(desk);
    const pages = summaryPages(entries, this.frameBytes());
    // The last is sent even when empty: the peer learns we hold nothing, and `last` ends its hold.
    pages.forEach((entries, i) => this.sync.send(peerId, i === pages.length - 1 ? { k: 'sum', entries, last: true } : { k: 'sum', entries }));
    this.counters.summariesSent++;
  }

  private readonly onPeerDown = (peerId: string): void => {
    this.hold.release(peerId);
    // Frames in flight on the dropped link are lost, and the peers still linked may have
    // them (they got them from the same origin): catch up with each of them now, holding live
    // deliveries meanwhile, rather than at the next link-up.
    for (const other of this.mesh.linkedPeers()) {
      this.hold.linked(other);
      this.sync.send(other, { k: 'ask' });
    }
  };

  private onSummary(peerId: string, entries: SummaryEntry[], last: boolean): void {
    const now = Date.now();
    const desk = this.mesh.speaksDesk(peerId);
    let invalid = 0;
    for (const e of entries) {
      if (!isValidName(e?.c, this.options.maxNameLength) || typeof e.d !== 'string' || typeof e.a !== 'number') {
        invalid++;
        continue;
      }
      if (now - e.a > this.options.conversationTtlMs) continue; // expired: never brought back
      this.history?.compare(peerId, e);
      if (this.store.digestOf(e.c, desk) === e.d) continue;
      this.counters.wantsSent++;
      this.hold.awaiting(peerId, e.c);
      this.sync.send(peerId, { k: 'want', c: e.c, ids: this.store.idsOf(e.c) });
    }
    if (last) this.hold.summarised(peerId);
    if (invalid > 0) this.mesh.reportInvalid(peerId, `catch-up summary: ${invalid} of ${entries.length} entries`);
  }

  private onWant(peerId: string, room: string, ids: unknown[]): void {
    if (!isValidName(room, this.options.maxNameLength)) return this.mesh.reportInvalid(peerId, 'catch-up want');
    const theirs = new Set(ids.filter((id): id is string => typeof id === 'string'));
    let writes = this.store.writesMissingFrom(room, theirs);
    if (!this.mesh.speaksDesk(peerId)) writes = writes.filter((w) => !isDeskWrite(w));
    const pages = givePages(writes, this.frameBytes());
    // Always a final frame, even empty: it ends the other side's hold on this room.
    pages.forEach((batch, i) => this.sync.send(peerId, i === pages.length - 1 ? { k: 'give', writes: batch, c: room, last: true } : { k: 'give', writes: batch }));
  }

  private onGive(peerId: string, writes: unknown[], room: string | undefined, last: boolean): void {
    let invalid = 0;
    const now = Date.now();
    for (const value of writes) {
      const write = decodeWrite(value, this.options);
      if (!write) {
        invalid++;
        continue;
      }
      if (this.take(write, 'catch-up').result !== 'applied') continue;
      this.counters.writesReceivedInCatchUp++;
      // Members here missed it while the link was down: they get it now, before anything
      // live that is held for this room (catch-up-hold.ts).
      const frame = liveFrame(this.store, write, null, now);
      if (frame) this.emit('deliver', write.room, frame);
    }
    // The valid writes of the frame are kept; the frame counts once, however many were not.
    if (invalid > 0) this.mesh.reportInvalid(peerId, `catch-up: ${invalid} of ${writes.length} writes`);
    if (last && room !== undefined) this.hold.given(peerId, room);
  }
}
