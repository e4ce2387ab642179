/**
 * Prometheus metrics for one node, served at GET /metrics (text format 0.0.4).
 *
 * Each node owns a prom-client Registry (never the global one: several nodes can live in one
 * process). Nothing here touches a hot path: the gateway, mesh, replicator and store keep
 * plain counters, and the metrics read them when scraped (`collect`). The only thing
 * observed as it happens is replication lag, through the replicator's `lagObserver`.
 * prom-client's default process metrics (CPU, memory, event-loop lag, GC, …) are in the
 * same registry.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ClientErrorCode } from '../errors.js';
import type { ChatGateway } from '../gateway/chat-gateway.js';
import type { Mesh, PeerState } from '../mesh/mesh.js';
import type { ClusterPresence } from '../replication/cluster-presence.js';
import type { Replicator } from '../replication/replicator.js';
import type { Webhooks } from '../webhooks/webhooks.js';
import type { DiskHealth } from './health.js';
import { GET_ONLY, send } from './responses.js';

export interface NodeMetricsSources {
  nodeId: string;
  version: string;
  gateway: ChatGateway;
  mesh: Mesh;
  replicator: Replicator;
  presence: ClusterPresence;
  /** With WEBHOOK_URL. */
  webhooks?: Webhooks | null;
  /** With DATA_DIR. */
  disk?: { state(): DiskHealth } | null;
}

/** What GET /metrics needs: a prom-client Registry is one. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

const PEER_STATES = ['connecting', 'up', 'down', 'rejected'] as const satisfies readonly PeerState[];

/** Replication lag buckets, in seconds: a millisecond on a LAN up to a slow or distant link. */
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A registry with every chatmesh metric of this node and the default process metrics. */
export function createNodeMetrics(sources: NodeMetricsSources): Registry {
  const { gateway, mesh, replicator } = sources;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  /** A counter whose value is read at scrape time from one of our cumulative numbers. */
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });

  new Gauge({
    name: 'chatmesh_node_info',
    help: 'This node: its id and version as labels; the value is always 1.',
    labelNames: ['node', 'version'],
    registers,
  }).set({ node: sources.nodeId, version: sources.version }, 1);

  // Clients (the gateway).
  const g = gateway.counters;
  gauge('chatmesh_client_connections', 'Open client WebSocket connections on this node.', () => gateway.connectionCount);
  gauge('chatmesh_rooms', 'Rooms with at least one member connected to this node.', () => gateway.roomCount);
  counter('chatmesh_client_connections_opened_total', 'Client WebSocket connections accepted.', () => g.connectionsOpened);
  counter('chatmesh_client_connections_closed_total', 'Client WebSocket connections closed (by either side).', () => g.connectionsClosed);
  counter('chatmesh_client_frames_received_total', 'Frames received from clients, valid or not.', () => g.framesIn);
  counter('chatmesh_client_messages_received_total', 'Chat messages accepted from clients of this node.', () => g.messagesIn);
  counter('chatmesh_client_deliveries_total', 'Room event frames written to clients of this node (one per recipient).', () => g.deliveries);
  new Counter({
    name: 'chatmesh_client_errors_total',
    help: 'Client frames refused with an error frame, by error code.',
    labelNames: ['code'],
    registers,
    collect() {
      this.reset();
      for (const code of Object.values(ClientErrorCode)) this.inc({ code }, 0);
      for (const [code, n] of Object.entries(g.errors)) this.inc({ code }, n);
    },
  });

  const typing = sources.presence.typing.counters;
  counter('chatmesh_typing_forwarded_total', 'Typing indicators of clients of this node sent on to the room (at most one per user and room every 2 s).', () => typing.forwarded);
  counter('chatmesh_typing_dropped_total', 'Typing indicators of clients of this node dropped: the same user had sent one to the room less than 2 s before.', () => typing.dropped);

  const hooks = sources.webhooks?.counters ?? { delivered: 0, failedAttempts: 0, dropped: 0, abandoned: 0 };
  counter('chatmesh_webhook_delivered_total', 'Webhook events the receiver (WEBHOOK_URL) answered with 2xx.', () => hooks.delivered);
  counter('chatmesh_webhook_failed_attempts_total', 'Webhook requests that failed (network error, timeout, or not 2xx), retried or not.', () => hooks.failedAttempts);
  counter('chatmesh_webhook_dropped_total', 'Webhook events dropped, the oldest first, because the queue was full.', () => hooks.dropped);
  counter('chatmesh_webhook_abandoned_total', 'Webhook events given up: a final answer (4xx), or still failing when the retry time was over.', () => hooks.abandoned);
  gauge('chatmesh_webhook_queued', 'Webhook events held: waiting, being sent, or waiting for a retry.', () => sources.webhooks?.queued ?? 0);
  counter('chatmesh_webhook_journal_write_failures_total', 'Writes to the webhook journal (DATA_DIR/webhooks.mdb) that failed: the events stay queued in memory, not across a restart.', () => sources.webhooks?.journalFailures ?? 0);

  // The mesh.
  const m = mesh.counters;
  counter('chatmesh_mesh_events_received_total', 'Room events and store writes received from peers, duplicates included.', () => m.received);
  counter('chatmesh_mesh_duplicates_total', 'Events from peers dropped as already seen.', () => m.duplicates);
  counter('chatmesh_mesh_forwarded_total', 'Events from peers forwarded to other peers (hops remaining).', () => m.forwarded);
  counter('chatmesh_mesh_forwards_skipped_total', 'Forwards not sent because the origin had already sent the event to that peer.', () => m.skippedForwards);
  counter('chatmesh_mesh_invalid_frames_total', 'Frames from peers dropped because they failed validation (a peer that sends many is cut with 4007).', () => m.invalid);
  new Gauge({
    name: 'chatmesh_mesh_peers',
    help: 'Known peers by state: connecting (never linked yet), up, down (lost, being redialled), rejected.',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = Object.fromEntries(PEER_STATES.map((s) => [s, 0])) as Record<PeerState, number>;
      for (const p of mesh.status()) counts[p.state] = (counts[p.state] ?? 0) + 1;
      this.reset();
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'chatmesh_mesh_peer_rtt_seconds',
    help: 'Last measured round-trip time of the link to each linked peer, by peer node id.',
    labelNames: ['peer'],
    registers,
    collect() {
      this.reset();
      for (const p of mesh.status()) {
        if (p.state === 'up' && p.id !== null && p.rttMs !== null) this.set({ peer: p.id }, p.rttMs / 1000);
      }
    },
  });

  // Replication and the store.
  const r = replicator.counters;
  counter('chatmesh_replication_writes_committed_total', 'Store writes made on this node (messages, deletes, creations) and sent to peers.', () => r.writesCommitted);
  counter('chatmesh_replication_writes_from_peers_total', 'Store writes received live from peers and applied here (new ones only).', () => r.writesFromPeers);
  counter('chatmesh_replication_catchup_writes_received_total', 'Store writes received and applied here by catch-up after a link came up.', () => r.writesReceivedInCatchUp);
  counter('chatmesh_replication_summaries_sent_total', 'Catch-up summaries sent (one per peer link that came up).', () => r.summariesSent);
  counter('chatmesh_replication_wants_sent_total', 'Catch-up requests sent, one per conversation that differed from a peer.', () => r.wantsSent);
  const lag = new Histogram({
    name: 'chatmesh_replication_lag_seconds',
    help: 'Time from a write made on a peer (its clock) to its application here, for writes received live.',
    buckets: LAG_BUCKETS,
    registers,
  });
  replicator.lagObserver = (ms) => lag.observe(ms / 1000);
  const store = replicator.store;
  const stat = (key: 'conversations' | 'messages' | 'tombstones') => () => store.stats()[key];
  gauge('chatmesh_store_conversations', 'Conversations held by this node.', stat('conversations'));
  gauge('chatmesh_store_messages', 'Messages held by this node (deleted ones excluded).', stat('messages'));
  gauge('chatmesh_store_tombstones', 'Deletes remembered by this node (tombstones).', stat('tombstones'));

  // The store on disk (DATA_DIR only).
  const disk = sources.disk;
  if (disk) {
    gauge('chatmesh_disk_writable', '1 while the store on disk takes writes; 0 while they are refused (503 storage_unavailable) after a failed commit (disk full).', () => (disk.state().writable ? 1 : 0));
    counter('chatmesh_disk_records_written_total', 'Records written to the store on disk.', () => disk.state().recordsWritten);
    counter('chatmesh_disk_commit_failures_total', 'Writes to the store on disk whose commit failed (disk full, I/O error).', () => disk.state().commitFailures);
    gauge('chatmesh_disk_used_bytes', 'Bytes of the pages the store on disk uses (what MAX_DISK_BYTES limits).', () => disk.state().usedBytes);
    gauge('chatmesh_disk_file_bytes', 'Bytes of the store file (it does not shrink: freed pages are reused).', () => disk.state().fileBytes);
  }

  return registry;
}

/** GET /metrics (HEAD too): the registry's text, or 503 before the node is running. */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, source: MetricsSource | null): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return send(res, 405, 'application/json; charset=utf-8', GET_ONLY.body, GET_ONLY.headers);
  }
  if (!source) return send(res, 503, 'text/plain; charset=utf-8', 'not started\n');
  let body: string;
  try {
    body = await source.metrics();
  } catch (err) {
    return send(res, 500, 'text/plain; charset=utf-8', `metrics failed: ${(err as Error).message}\n`);
  }
  send(res, 200, source.contentType, body);
}
