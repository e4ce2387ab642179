/**
 * What GET /mesh/state answers: every node this instance knows (itself, the peers of its
 * peer table, and the nodes its linked peers say they are linked to) and the links between
 * them (its own, and those its peers advertise). Measured from here: round-trip times and
 * clock skew of this node's links (heartbeats), replication lag of writes from each node,
 * clients and rooms of each linked peer (its heartbeats). Nodes further away are known by
 * name only: their numbers are null.
 */
import type { Mesh, PeerState, PeerView } from '../mesh/mesh.js';

/**
 * up: linked to this node (or this node); indirect: not linked here, but a linked peer says it
 * is linked to it; down: was linked, lost (being redialled); connecting: never linked yet;
 * rejected: refused by one side.
 */
export type MeshNodeState = PeerState | 'indirect';

export interface MeshNode {
  /** The node id; null for a peer address that never answered (then `key` is its address). */
  id: string | null;
  /** What links name the node by: its id, else its address. */
  key: string;
  self: boolean;
  /** The peer address this node dials or was dialled from; null for this node and indirect ones. */
  address: string | null;
  state: MeshNodeState;
  /** Since when, in this state (ISO time); null for indirect nodes. */
  since: string | null;
  reason?: string;
  /** Clients and rooms (this node's own; a peer's from its heartbeats; null when not known). */
  connections: number | null;
  rooms: number | null;
  /** The round trip of this node's link to it, ms. */
  rttMs: number | null;
  /** Its clock minus this node's, ms (positive: it runs ahead). */
  clockSkewMs: number | null;
  /** The last write from it applied here: its lag (now here − its clock when it made it, so skew included), and when. */
  replicationLagMs: number | null;
  lastWriteAt: string | null;
}

export interface MeshLink {
  /** The two ends (node keys), in sorted order. */
  a: string;
  b: string;
  /** Who says the link exists: this node for its own links, a peer for the links it advertises. */
  reportedBy: string[];
  /** Measured here: this node's own links only. */
  rttMs: number | null;
}

export interface MeshState {
  at: string;
  self: string;
  /** How long a silent peer may take to be shown down (PEER_TIMEOUT_MS); a closed socket shows at once. */
  detectionMs: number;
  nodes: MeshNode[];
  links: MeshLink[];
}

export interface MeshStateSources {
  nodeId: string;
  detectionMs: number;
  gateway: { readonly connectionCount: number; readonly roomCount: number };
  mesh: Pick<Mesh, 'view'>;
  /** The replicator's `lag` event: a peer's write applied live, its origin and lag. */
  replicator: { on(event: 'lag', listener: (origin: string, ms: number) => void): unknown };
}

/** Origins whose last lag is kept: far more nodes than a mesh has. */
const MAX_LAG_ORIGINS = 1024;

export class MeshStateView {
  private readonly lags = new Map<string, { ms: number; at: number }>();

  constructor(private readonly s: MeshStateSources) {
    // Every write from a peer: updated in place (no allocation per write); a new origin past
    // the bound pushes out the one heard of first.
    s.replicator.on('lag', (origin, ms) => {
      const last = this.lags.get(origin);
      if (last) {
        last.ms = ms;
        last.at = Date.now();
        return;
      }
      this.lags.set(origin, { ms, at: Date.now() });
      if (this.lags.size > MAX_LAG_ORIGINS) this.lags.delete(this.lags.keys().next().value!);
    });
  }

  state(): MeshState {
    const self = this.s.nodeId;
    const nodes = new Map<string, MeshNode>();
    const links = new Map<string, MeshLink>();
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const lagOf = (id: string | null) => {
      const lag = id === null ? undefined : this.lags.get(id);
      return { replicationLagMs: lag?.ms ?? null, lastWriteAt: iso(lag?.at ?? null) };
    };
    const addLink = (from: string, to: string, reporter: string, rttMs: number | null) => {
      const [a, b] = from < to ? [from, to] : [to, from];
      const link = links.get(`${a} ${b}`) ?? { a, b, reportedBy: [], rttMs: null };
      if (!link.reportedBy.includes(reporter)) link.reportedBy.push(reporter);
      if (rttMs !== null) link.rttMs = rttMs;
      links.set(`${a} ${b}`, link);
    };
    const { connectionCount, roomCount } = this.s.gateway;
    nodes.set(self, { id: self, key: self, self: true, address: null, state: 'up', since: null, connections: connectionCount, rooms: roomCount, rttMs: null, clockSkewMs: 0, ...lagOf(null) });

    const rows = this.s.mesh.view();
    // An up row first: a node listed under two addresses (an alias) is shown by its link.
    rows.sort((x, y) => Number(y.state === 'up') - Number(x.state === 'up'));
    for (const row of rows) {
      const key = row.id ?? row.address;
      if (nodes.has(key)) continue;
      nodes.set(key, peerNode(row, key, lagOf(row.id)));
      if (row.state === 'up' && row.id !== null) addLink(self, row.id, self, row.rttMs);
    }
    for (const row of rows) {
      if (row.state !== 'up' || row.id === null || row.linkedTo === null) continue;
      for (const other of row.linkedTo) {
        if (other === row.id) continue;
        addLink(row.id, other, row.id, null);
        const known = nodes.get(other);
        if (!known) nodes.set(other, indirectNode(other, lagOf(other)));
        else if (known.state !== 'up') known.state = 'indirect';
      }
    }
    return { at: new Date().toISOString(), self, detectionMs: this.s.detectionMs, nodes: [...nodes.values()], links: [...links.values()] };
  }
}

function peerNode(row: PeerView, key: string, lag: Pick<MeshNode, 'replicationLagMs' | 'lastWriteAt'>): MeshNode {
  return {
    id: row.id,
    key,
    self: false,
    address: row.address,
    state: row.state,
    since: new Date(row.since).toISOString(),
    ...(row.reason ? { reason: row.reason } : {}),
    connections: row.load?.connections ?? null,
    rooms: row.load?.rooms ?? null,
    rttMs: row.state === 'up' ? row.rttMs : null,
    clockSkewMs: row.clockOffsetMs,
    ...lag,
  };
}

function indirectNode(id: string, lag: Pick<MeshNode, 'replicationLagMs' | 'lastWriteAt'>): MeshNode {
  return { id, key: id, self: false, address: null, state: 'indirect', since: null, connections: null, rooms: null, rttMs: null, clockSkewMs: null, ...lag };
}
