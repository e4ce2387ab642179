/**
 * Keeps the presence table in step with the mesh: tells a peer that just linked every table
 * this node holds, merges what peers send, and drops the tables of nodes that can no longer
 * be reached (their members leave). Local members hear the resulting joins and leaves
 * through the `change` event; other nodes work them out for themselves.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import type { PresenceChange, PresenceSnapshot, PresenceTable } from '../core/presence-table.js';
import type { Mesh } from './mesh.js';

interface ClusterPresenceEvents {
  change: [change: PresenceChange];
}

export class ClusterPresence extends EventEmitter<ClusterPresenceEvents> {
  constructor(
    readonly table: PresenceTable,
    private readonly mesh: Mesh,
    private readonly log: Logger,
  ) {
    super();
    mesh.on('peer-up', this.onPeerUp);
    mesh.on('sync', this.onSync);
    mesh.on('topology', this.onTopology);
  }

  close(): void {
    this.mesh.off('peer-up', this.onPeerUp);
    this.mesh.off('sync', this.onSync);
    this.mesh.off('topology', this.onTopology);
  }

  private readonly onPeerUp = (peerId: string): void => {
    this.mesh.sendSync(peerId, Buffer.from(JSON.stringify({ k: 'presence', tables: this.table.snapshots() })));
  };

  private readonly onSync = (peerId: string, payload: Buffer): void => {
    // Cheap test first: most sync frames are the store's catch-up.
    if (payload.indexOf('"k":"presence"') === -1) return;
    let frame: { k?: unknown; tables?: unknown };
    try {
      frame = JSON.parse(payload.toString());
    } catch {
      return;
    }
    if (frame.k !== 'presence' || !Array.isArray(frame.tables)) return;
    const reachable = this.mesh.reachableNodes();
    for (const value of frame.tables) {
      const snapshot = decodeSnapshot(value);
      if (!snapshot) {
        this.log.warn('dropping a malformed presence snapshot', { peer: peerId });
        continue;
      }
      // A table of a node we cannot reach (the peer's view may be stale) is not taken.
      if (!reachable.has(snapshot.origin)) continue;
      for (const change of this.table.applySnapshot(snapshot)) this.emit('change', change);
    }
  };

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
