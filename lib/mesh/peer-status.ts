/** A peer address as the peer table keeps it, and its row in /health. */
import type { Link } from '../links/link.js';

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
