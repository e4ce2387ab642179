/**
 * GET /health: this node, its load, its store and the state of every peer. Answers 503 while
 * the node shuts down, so load balancers stop sending it traffic.
 */
import type { Mesh, PeerStatus } from '../mesh/mesh.js';

export interface HealthReport {
  status: 'ok' | 'shutting_down';
  /** Client authentication: AUTH (never a key, token or user). */
  auth: 'none' | 'jwt';
  node: { id: string; port: number; version: string };
  /** Seconds since start. */
  uptime: number;
  connections: number;
  rooms: number;
  /** The replicated store on this instance. */
  store: { conversations: number; messages: number; tombstones: number };
  /** This process's memory, bytes; storeBytes: the store's own estimate, maxStoreBytes: MAX_STORE_BYTES. */
  memory: { rssBytes: number; heapUsedBytes: number; storeBytes: number; maxStoreBytes: number };
  /** Events from peers: received, duplicates dropped, forwarded, forwards skipped (the origin had sent them), frames dropped as invalid. */
  mesh: { received: number; duplicates: number; forwarded: number; skippedForwards: number; invalid: number };
  /** With DATA_DIR only: the store on disk. */
  disk?: DiskHealth;
  peers: Array<Omit<PeerStatus, 'since' | 'lastSeen'> & { since: string; lastSeen: string | null }>;
}

/** The store on disk (DATA_DIR), as storage/disk-store.ts reports it. */
export interface DiskHealth {
  /** False while writes are refused (503 storage_unavailable, the disk full): they are taken again by themselves once a probe write succeeds. */
  writable: boolean;
  /** Records written since start, and commits that failed. */
  recordsWritten: number;
  commitFailures: number;
  /** Bytes of the pages in use, the file's size (it never shrinks: freed pages are reused), and MAX_DISK_BYTES (null: no limit). */
  usedBytes: number;
  fileBytes: number;
  maxBytes: number | null;
}

export interface NodeInfo {
  id: string;
  port: number;
  version: string;
  startedAt: number;
}

/** What the report is made of, read when /health is asked. */
export interface HealthSources {
  node: NodeInfo;
  auth: 'none' | 'jwt';
  closing: boolean;
  gateway: { readonly connectionCount: number; readonly roomCount: number };
  store: { stats(): { conversations: number; messages: number; tombstones: number }; usage(): { bytes: number; maxBytes: number } };
  mesh: Pick<Mesh, 'counters' | 'status'>;
  /** With DATA_DIR. */
  disk?: { state(): DiskHealth } | null;
}

export function healthCheck(s: HealthSources): { statusCode: number; body: HealthReport } {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const body: HealthReport = {
    status: s.closing ? 'shutting_down' : 'ok',
    auth: s.auth,
    node: { id: s.node.id, port: s.node.port, version: s.node.version },
    uptime: Math.round((Date.now() - s.node.startedAt) / 100) / 10,
    connections: s.gateway.connectionCount,
    rooms: s.gateway.roomCount,
    store: s.store.stats(),
    mesh: { ...s.mesh.counters },
    memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed, storeBytes: s.store.usage().bytes, maxStoreBytes: s.store.usage().maxBytes },
    ...(s.disk ? { disk: s.disk.state() } : {}),
    peers: s.mesh.status().map((p) => ({ ...p, since: iso(p.since)!, lastSeen: iso(p.lastSeen) })),
  };
  return { statusCode: s.closing ? 503 : 200, body };
}
