/**
 * Keeps the presence table in step with the mesh: publishes this node's joins and leaves,
 * applies the peers' (room events carrying presence metadata), tells a peer that just linked
 * every table this node holds, merges what peers send, and drops the tables of nodes that
 * can no longer be reached (their members leave). Local members hear of every join and leave
 * that is not this node's own, the peers' and those this node works out itself, through `change`
 * (the gateway batches them per turn: see lib/gateway/presence-batcher.ts).
 */
import { EventEmitter } from 'node:events';
import type { ChatmeshOptions } from '../config.js';
import type { Logger } from '../log.js';
import { isPlausibleVersion, type PresenceChange, type PresenceSnapshot, type PresenceTable } from '../core/presence-table.js';
import { isValidName } from '../core/store-write.js';
import type { PresenceMeta } from '../mesh/envelope.js';
import type { Mesh } from '../mesh/mesh.js';
import { ClusterTyping } from './cluster-typing.js';
import { decodeSnapshot, MAX_TABLES_PER_FRAME, SnapshotParts, snapshotFrames } from './presence-snapshots.js';
import type { SyncChannel } from './sync-channel.js';
import { parsePeerJson } from '../mesh/peer-json.js';

/** maxNameLength: the bound of names from peers; maxPeerPayloadBytes: snapshot frames stay well under it. */
export type ClusterPresenceOptions = Pick<ChatmeshOptions, 'maxNameLength' | 'maxPeerPayloadBytes'>;

/** The most bytes of members in one snapshot frame: a quarter of the peer frame limit (a peer may be configured lower than us), at most 256 KiB. */
const snapshotFrameBytes = (maxPeerPayloadBytes: number) => Math.min(256 * 1024, Math.floor(maxPeerPayloadBytes / 4));

interface ClusterPresenceEvents {
  /** A join or leave from a peer, or one this node worked out itself (a node became unreachable, or came back). */
  change: [change: PresenceChange];
  /** Bytes for the members of a room on this instance: typing indicators from peers. */
  deliver: [room: string, payload: Buffer];
}

export class ClusterPresence extends EventEmitter<ClusterPresenceEvents> {
  private readonly parts: SnapshotParts;
  private sequences = 0;
  /** Typing indicators: transient room events to the nodes with members, heard through `deliver` too. */
  readonly typing: ClusterTyping;

  constructor(
    readonly table: PresenceTable,
    private readonly mesh: Mesh,
    private readonly sync: SyncChannel,
    private readonly options: ClusterPresenceOptions,
    private readonly log: Logger,
  ) {
    super();
    this.parts = new SnapshotParts(options.maxNameLength);
    this.typing = new ClusterTyping(table, mesh, options);
    this.typing.on('deliver', (room, payload) => this.emit('deliver', room, payload));
    mesh.on('peer-up', this.onPeerUp);
    mesh.on('peer-down', this.onPeerDown);
    mesh.on('topology', this.onTopology);
    mesh.on('room', this.onRoomEvent);
    sync.handle({
      presence: (peerId, tables) => this.onSnapshots(peerId, tables),
      presencePart: (peerId, part) => {
        const whole = this.parts.add(peerId, part);
        if (whole === 'invalid') this.mesh.reportInvalid(peerId, 'presence snapshot part');
        else if (whole) this.applySnapshot(whole);
      },
    });
  }

  close(): void {
    this.typing.close();
    this.mesh.off('peer-up', this.onPeerUp);
    this.mesh.off('peer-down', this.onPeerDown);
    this.mesh.off('topology', this.onTopology);
    this.mesh.off('room', this.onRoomEvent);
  }

  /** Sends a room event born here (a join or leave, with this node's connection and table version) to every node. */
  publish(room: string, payload: Buffer, meta?: PresenceMeta): void {
    this.mesh.publish(room, this.mesh.nextId(), payload, meta);
  }

  /**
   * A room event from a peer: a presence event, checked like a client's join (names within
   * MAX_NAME_LENGTH, the payload's room the envelope's, a plausible version). With presence
   * metadata it updates the table, unless stale; then local members hear it.
   */
  private readonly onRoomEvent = (room: string, payload: Buffer, origin: string, meta: PresenceMeta | undefined, from: string): void => {
    const event = parsePeerJson(payload) as Record<string, unknown> | null;
    const max = this.options.maxNameLength;
    const valid =
      typeof event === 'object' && event !== null && event.type === 'presence' && (event.event === 'join' || event.event === 'leave') &&
      event.room === room && isValidName(room, max) && isValidName(event.user, max) && (!meta || isPlausibleVersion(meta.v));
    if (!valid) return this.mesh.reportInvalid(from, `room event in ${JSON.stringify(room.slice(0, 64))}`);
    if (meta) {
      const applied = this.table.applyEvent(origin, meta.v, event!.event as 'join' | 'leave', { conn: meta.c, room, user: event!.user as string });
      if (!applied) return; // stale: a snapshot already told us something newer
    }
    this.emit('change', { event: event!.event as 'join' | 'leave', room, user: event!.user as string });
  };

  private readonly onPeerUp = (peerId: string): void => {
    for (const frame of snapshotFrames(this.table.snapshots(), snapshotFrameBytes(this.options.maxPeerPayloadBytes), () => ++this.sequences)) {
      this.sync.send(peerId, frame);
    }
  };

  private readonly onPeerDown = (peerId: string): void => {
    this.parts.forget(peerId);
  };

  private onSnapshots(peerId: string, tables: unknown[]): void {
    if (tables.length > MAX_TABLES_PER_FRAME) return this.mesh.reportInvalid(peerId, `presence snapshot of ${tables.length} tables`);
    let invalid = 0;
    for (const value of tables) {
      const snapshot = decodeSnapshot(value, this.options.maxNameLength);
      if (snapshot) this.applySnapshot(snapshot);
      else invalid++;
    }
    if (invalid > 0) this.mesh.reportInvalid(peerId, `presence snapshot: ${invalid} of ${tables.length} tables`);
  }

  private applySnapshot(snapshot: PresenceSnapshot): void {
    // A table of a node we cannot reach (the peer's view may be stale) is not taken.
    if (!this.mesh.reachableNodes().has(snapshot.origin)) return;
    for (const change of this.table.applySnapshot(snapshot)) this.emit('change', change);
  }

  private readonly onTopology = (): void => {
    const reachable = this.mesh.reachableNodes();
    for (const origin of this.table.origins()) {
      if (reachable.has(origin)) continue;
      const changes = this.table.dropOrigin(origin);
      if (changes.length > 0) this.log.info('members of an unreachable node left', { origin, members: changes.length });
      for (const change of changes) this.emit('change', change);
    }
  };
}
