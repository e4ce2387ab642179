/**
 * The sync channel: the one reader of the mesh's `sync` frames. Each frame is decoded once
 * (sync-codec.ts) and handed to the one service that owns its kind: the store's catch-up
 * (Replicator) or presence snapshots (ClusterPresence).
 */
import type { Logger } from '../log.js';
import type { Mesh } from '../mesh/mesh.js';
import type { SummaryEntry } from '../core/conversation-store.js';
import { decodeSyncFrame, encodeSyncFrame, type HistorySum, type PresencePart, type SyncFrame } from './sync-codec.js';

export interface SyncHandlers {
  summary(peerId: string, entries: SummaryEntry[], last: boolean): void;
  want(peerId: string, room: string, ids: unknown[]): void;
  /** `room` and `last` on the final frame of the writes for one want (peers that send them). */
  give(peerId: string, writes: unknown[], room: string | undefined, last: boolean): void;
  presence(peerId: string, tables: unknown[]): void;
  ask(peerId: string): void;
  presencePart(peerId: string, part: PresencePart): void;
  revoke(peerId: string, entries: unknown[]): void;
  /** DATA_DIR: the disk's catch-up (history-sync.ts). */
  historySum(peerId: string, sum: HistorySum): void;
  historyGive(peerId: string, room: string, writes: unknown[]): void;
}

export class SyncChannel {
  private readonly handlers: Partial<SyncHandlers> = {};
  /** Frames of a kind this version does not know: dropped and counted, the link kept. */
  readonly counters = { unknownKinds: 0 };

  constructor(
    private readonly mesh: Mesh,
    private readonly log: Logger,
  ) {
    mesh.on('sync', this.onSync);
  }

  /** Registers the handlers of the kinds a service owns. */
  handle(handlers: Partial<SyncHandlers>): void {
    Object.assign(this.handlers, handlers);
  }

  /** Sends a frame to one peer; false if it is not linked. */
  send(peerId: string, frame: SyncFrame): boolean {
    return this.mesh.sendSync(peerId, encodeSyncFrame(frame));
  }

  close(): void {
    this.mesh.off('sync', this.onSync);
  }

  private readonly onSync = (peerId: string, payload: Buffer): void => {
    const decoded = decodeSyncFrame(payload);
    if (!decoded.ok) {
      // An unknown kind may come from a newer node (in a rolling upgrade): dropped, not held
      // against the peer, and logged at debug (one line per frame would flood the log).
      if (decoded.problem === 'unknown') this.counters.unknownKinds++;
      if (decoded.problem === 'unknown') this.log.debug('dropping an unknown catch-up frame', { peer: peerId });
      else this.mesh.reportInvalid(peerId, `${decoded.problem} catch-up frame`);
      return;
    }
    const frame = decoded.frame;
    switch (frame.k) {
      case 'sum':
        return this.handlers.summary?.(peerId, frame.entries, frame.last === true);
      case 'want':
        return this.handlers.want?.(peerId, frame.c, frame.ids);
      case 'give':
        return this.handlers.give?.(peerId, frame.writes, frame.c, frame.last === true);
      case 'presence':
        return this.handlers.presence?.(peerId, frame.tables);
      case 'ask':
        return this.handlers.ask?.(peerId);
      case 'presence-part':
        return this.handlers.presencePart?.(peerId, frame);
      case 'revoke':
        return this.handlers.revoke?.(peerId, frame.entries);
      case 'hsum':
        return this.handlers.historySum?.(peerId, frame);
      case 'hgive':
        return this.handlers.historyGive?.(peerId, frame.c, frame.writes);
    }
  };
}
