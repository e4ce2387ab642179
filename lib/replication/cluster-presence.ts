/**
 * Keeps the presence table in step with the mesh: publishes this node's joins and leaves,
 * applies the peers' (room events carrying presence metadata), tells a peer that just linked
 * every table this node holds, merges what peers send, and drops the tables of nodes that
 * can no longer be reached (their members leave). Local members hear peers' events through
 * `deliver`, and the joins and leaves this node works out itself through `change`.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import type { PresenceChange, PresenceSnapshot, PresenceTable } from '../core/presence-table.js';
import type { PresenceMeta } from '../mesh/envelope.js';
import type { Mesh } from '../mesh/mesh.js';
import type { SyncChannel } from './sync-channel.js';

interface ClusterPresenceEvents {
  /** A join or leave this node worked out itself (a node became unreachable, or came back). */
  change: [change: PresenceChange];
  /** A room event from a peer for the local members of the room, as the peer encoded it. */
  deliver: [room: string, payload: Buffer];
}

export class ClusterPresence extends EventEmitter<ClusterPresenceEvents> {
  constructor(
    readonly table: PresenceTable,
    private readonly mesh: Mesh,
    private readonly sync: SyncChannel,
    private readonly log: Logger,
  ) {
    super();
    mesh.on('peer-up', this.onPeerUp);
    mesh.on('topology', this.onTopology);
    mesh.on('room', this.onRoomEvent);
    sync.handle({ presence: (peerId, tables) => this.onSnapshots(peerId, tables) });
  }

  close(): void {
    this.mesh.off('peer-up', this.onPeerUp);
    this.mesh.off('topology', this.onTopology);
    this.mesh.off('room', this.onRoomEvent);
  }

  /** Sends a room event born here (a join or leave, with this node's connection and table version) to every node. */
  publish(room: string, payload: Buffer, meta?: PresenceMeta): void {
    this.mesh.publish(room, this.mesh.nextId(), payload, meta);
  }

  /** A room event from a peer: a presence event updates the table, unless stale; then local members hear it. */
  private readonly onRoomEvent = (room: string, payload: Buffer, origin: string, meta: PresenceMeta | undefined): void => {
    if (meta) {
      let event: { event?: unknown; user?: unknown };
      try {
        event = JSON.parse(payload.toString());
      } catch {
        return;
      }
      if (typeof event.user !== 'string') return;
      const applied = this.table.applyEvent(origin, meta.v, event.event === 'leave' ? 'leave' : 'join', { conn: meta.c, room, user: event.user });
      if (!applied) return; // stale: a snapshot already told us something newer
    }
    this.emit('deliver', room, payload);
  };

  private readonly onPeerUp = (peerId: string): void => {
    this.sync.send(peerId, { k: 'presence', tables: this.table.snapshots() });
  };

  private onSnapshots(peerId: string, tables: unknown[]): void {
    const reachable = this.mesh.reachableNodes();
    for (const value of tables) {
      const snapshot = decodeSnapshot(value);
      if (!snapshot) {
        this.log.warn('dropping a malformed presence snapshot', { peer: peerId });
        continue;
      }
      // A table of a node we cannot reach (the peer's view may be stale) is not taken.
      if (!reachable.has(snapshot.origin)) continue;
      for (const change of this.table.applySnapshot(snapshot)) this.emit('change', change);
    }
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

function decodeSnapshot(value: unknown): PresenceSnapshot | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.origin !== 'string' || typeof v.version !== 'number' || !Array.isArray(v.members)) return null;
  const members = [];
  for (const m of v.members as Array<Record<string, unknown>>) {
    if (typeof m?.conn !== 'number' || typeof m.room !== 'string' || typeof m.user !== 'string') return null;
    members.push({ conn: m.conn, room: m.room, user: m.user });
  }
  return { origin: v.origin, version: v.version, members };
}
