/** A peer address as the peer table keeps it, and its row in /health. */
import type { NodeLoad } from '../links/heartbeat.js';
import type { Link } from '../links/link.js';

export type { NodeLoad };

export type PeerState = 'connecting' | 'up' | 'down' | 'rejected';

/** One row of /health's peer list. Times are epoch milliseconds. */
export interface PeerStatus {
  id: string | null;
  address: string;
  state: PeerState;
  since: number;
  lastSeen: number | null;
  rttMs: number | null;
  direction: 'in' | 'out' | null;
  reason?: string;
}

/** A row of the mesh view (/mesh/state): the /health row, what its link measures and what the peer advertises. */
export interface PeerView extends PeerStatus {
  /** The peer's clock minus ours, ms, from its heartbeats (null: not linked, or not measured yet). */
  clockOffsetMs: number | null;
  /** The peer's clients and rooms, from its heartbeats (null: not linked, or an older node that does not say). */
  load: NodeLoad | null;
  /** The nodes the peer says it is linked to (null: not linked, or it has not said yet). */
  linkedTo: string[] | null;
}

export interface PeerEntry {
  address: string;
  id: string | null;
  state: PeerState;
  since: number;
  lastSeen: number | null;
  reason: string | undefined;
  link: Link | null;
  /** Discovery sources that ask us to dial this address; empty for peers that dialled us. */
  sources: Set<string>;
}

export function newEntry(address: string): PeerEntry {
  return { address, id: null, state: 'connecting', since: Date.now(), lastSeen: null, reason: undefined, link: null, sources: new Set() };
}

/** Moves an entry to a state; `since` changes only when the state does. */
export function setState(entry: PeerEntry, state: PeerState, reason: string | undefined): void {
  if (entry.state !== state) entry.since = Date.now();
  entry.state = state;
  entry.reason = reason;
}

export function statusRow(entry: PeerEntry): PeerStatus {
  const link = entry.link;
  return {
    id: entry.id,
    address: entry.address,
    state: entry.state,
    since: entry.since,
    lastSeen: link ? link.lastSeen : entry.lastSeen,
    rttMs: link ? link.rttMs : null,
    direction: link ? link.direction : null,
    ...(entry.reason ? { reason: entry.reason } : {}),
  };
}
