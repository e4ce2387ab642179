/**
 * One chatmesh instance: the HTTP/WebSocket server, the client gateway, the mesh and
 * discovery, wired together, with a start and a clean, idempotent close.
 * Nothing here is global: several nodes can live in one process (the tests do that).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AUTH_DEFAULTS, RevocationTable, TokenVerifier, type AuthOptions } from './auth/index.js';
import { resolveOptions, type ChatmeshOptions } from './config.js';
import type { TlsOptions } from './tls-options.js';
import type { WebhookOptions } from './config-env.js';
import { createPeerSources, type PeerSource } from './discovery/index.js';
import { ChatGateway } from './gateway/chat-gateway.js';
import { CreationLimiter } from './core/creation-limiter.js';
import { ConversationStore } from './core/conversation-store.js';
import { createRestApi, type RestApi } from './http/api/app.js';
import { Revocations } from './replication/revocations.js';
import { createHttpServer } from './http/http-server.js';
import { createNodeMetrics } from './http/metrics.js';
import type { Registry } from 'prom-client';
import { healthCheck, type HealthReport } from './http/health.js';
import { MeshStateApi } from './http/mesh-state-api.js';
import { MeshStateView } from './http/mesh-state.js';
import { Replicator } from './replication/replicator.js';
import { ClusterPresence } from './replication/cluster-presence.js';
import { SyncChannel } from './replication/sync-channel.js';
import { PresenceTable } from './core/presence-table.js';
import { createLogger, type Logger } from './log.js';
import { Mesh } from './mesh/mesh.js';
import { MESH_PATH } from './links/handshake-frames.js';
import { WsTransport } from './links/ws-transport.js';
import { VERSION } from './version.js';
import { Webhooks } from './webhooks/webhooks.js';
import { WebhookJournal } from './storage/webhook-journal.js';
import { keptNodeId, lockDataDir } from './storage/data-dir.js';
import { DISK_MESSAGES_DEFAULT, DiskStore } from './storage/disk-store.js';

export interface ChatNodeDeps {
  /** Where log lines go. @default process.stdout */
  logStream?: NodeJS.WritableStream;
  /** More peer sources besides DISCOVERY's (cluster mode adds the sibling workers). */
  extraPeerSources?: (node: { id: string; meshPort: number }) => PeerSource[];
  /** Client authentication (authOptionsFromEnv). @default AUTH=none */
  auth?: AuthOptions;
  /** METRICS_TOKEN: /metrics needs it as a Bearer token. */
  metricsToken?: string;
  /** WEBHOOK_URL and WEBHOOK_SECRET (webhookOptionsFromEnv, or resolveWebhookOptions); unset: no webhooks. */
  webhook?: WebhookOptions;
  /** MESH_TLS_* (peer links over mutual TLS, on a MESH_PORT of their own) and TLS_* (clients). */
  tls?: TlsOptions;
}

type NodeState = 'new' | 'starting' | 'running' | 'closing' | 'closed';

export class ChatNode {
  readonly id: string;
  readonly options: ChatmeshOptions;
  readonly log: Logger;
  private readonly incarnation = randomBytes(6).toString('hex');
  private state: NodeState = 'new';
  private server: http.Server | null = null;
  private meshServer: http.Server | null = null;
  private sources: PeerSource[] = [];
  private closing: Promise<void> | null = null;
  private _mesh: Mesh | null = null;
  private _transport: WsTransport | null = null;
  private _gateway: ChatGateway | null = null;
  private _replicator: Replicator | null = null;
  private _presence: ClusterPresence | null = null;
  private _sync: SyncChannel | null = null;
  private _store: ConversationStore | null = null;
  private startedAt = 0;
  /** /api/* (fastify, mounted in this.server). */
  private _restApi: RestApi | null = null;
  private _revocations: Revocations | null = null;
  private _meshState: MeshStateApi | null = null;
  /** This node's Prometheus registry (GET /metrics); never the global one. */
  private _metrics: Registry | null = null;
  private _webhooks: Webhooks | null = null;
  private _port = 0;
  private _meshPort = 0;
  /** With DATA_DIR: the record on disk, the webhook journal (with WEBHOOK_URL), and the release of the directory's lock. */
  private _disk: DiskStore | null = null;
  private journal: WebhookJournal | null = null;
  private unlock: (() => void) | null = null;

  private get auth(): AuthOptions {
    return this.deps.auth ?? AUTH_DEFAULTS;
  }

  constructor(options: Partial<ChatmeshOptions> = {}, private readonly deps: ChatNodeDeps = {}) {
    this.options = resolveOptions(options);
    const kept = this.options.dataDir !== undefined ? keptNodeId(this.options.dataDir) : null;
    this.id = this.options.nodeId ?? kept?.id ?? randomBytes(6).toString('hex');
    this.log = createLogger({ nodeId: this.id, level: this.options.logLevel, stream: deps.logStream });
  }

  /** The port clients connect to (the real one when started on port 0). */
  get port(): number {
    return this._port;
  }

  /** The port peers connect to. */
  get meshPort(): number {
    return this._meshPort;
  }

  get gateway(): ChatGateway {
    if (!this._gateway) throw new Error('node not started');
    return this._gateway;
  }

  /**
   * Answers /health: this node, its load and the state of every peer (lib/http/health.ts).
   * Returns 503 while the node shuts down, so load balancers stop sending it traffic.
   */
  healthCheck(): { statusCode: number; body: HealthReport } {
    const gateway = this.gateway;
    return healthCheck({
      node: { id: this.id, port: this._port, version: VERSION, startedAt: this.startedAt },
      auth: this.auth.mode,
      closing: gateway.isClosing,
      gateway,
      store: this._store!,
      mesh: this._mesh!,
      disk: this._disk,
    });
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`cannot start a node that is ${this.state}`);
    this.state = 'starting';
    const o = this.options;
    if (o.dataDir !== undefined) {
      // Before any port is taken: a second process on the same DATA_DIR stops here.
      this.unlock = lockDataDir(o.dataDir);
      this._disk = new DiskStore(o.dataDir, o.maxDiskBytes, Math.max(o.maxDiskMessagesPerConversation ?? DISK_MESSAGES_DEFAULT, o.maxMessagesPerConversation));
      if (this.deps.webhook) this.journal = WebhookJournal.open(o.dataDir, this.log); // a damaged one stops start-up here, before any port
      this._disk.onFailing = (err) => {
        if (err) this.log.error('DATA_DIR cannot take writes: they are refused (503 storage_unavailable) until it can', { dataDir: o.dataDir, error: String((err as { commitError?: unknown }).commitError ? 'commit failed (disk full?)' : err.message) });
        else this.log.info('DATA_DIR takes writes again', { dataDir: o.dataDir });
      };
    }
    const separateMeshPort = o.meshPort !== o.port || (o.meshHost !== undefined && o.meshHost !== o.host);
    const tls = this.deps.tls;
    if (tls?.mesh && !separateMeshPort) throw new Error('MESH_TLS needs a MESH_PORT other than PORT');
    const meshUpgrade = (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) =>
      this._transport ? this._transport.handleUpgrade(req, socket, head) : socket.destroy();

    this.server = createHttpServer(o, {
      health: () => this.healthCheck(),
      metrics: () => this._metrics,
      ...(this.deps.metricsToken !== undefined && { metricsToken: this.deps.metricsToken }),
      meshState: (req, res) => (this._meshState ? this._meshState.handle(req, res) : res.destroy()),
      api: (req, res) => (this._restApi ? this._restApi.handle(req, res) : res.destroy()),
      upgrades: {
        '/': (req, socket, head) => (this._gateway ? this._gateway.handleUpgrade(req, socket, head) : socket.destroy()),
        ...(separateMeshPort ? {} : { [MESH_PATH]: meshUpgrade }),
      },
    }, tls?.clients);
    this._port = await listen(this.server, o.port, o.host);
    // After listen, a server error (EMFILE on accept, say) is logged, never a crash.
    this.server.on('error', (err) => this.log.error('HTTP server error', { error: err.message }));
    if (separateMeshPort) {
      const mtls = tls?.mesh && { ...tls.mesh, requestCert: true, rejectUnauthorized: true };
      this.meshServer = createHttpServer(o, { upgrades: { [MESH_PATH]: meshUpgrade } }, mtls);
      // A peer without a certificate from MESH_TLS_CA never reaches the handshake: say who and why.
      this.meshServer.on('tlsClientError', (err: Error, socket: import('node:net').Socket) =>
        this.log.warn('peer rejected', { direction: 'in', from: socket.remoteAddress, by: 'us', reason: `TLS: ${err.message}` }));
      // Exclusive: in cluster mode every worker has a mesh port of its own (clients share PORT).
      this._meshPort = await listen(this.meshServer, o.meshPort, o.meshHost ?? o.host, true);
      this.meshServer.on('error', (err) => this.log.error('mesh server error', { error: err.message }));
    } else {
      this._meshPort = this._port;
    }

    this._transport = new WsTransport({ ...o, nodeId: this.id, incarnation: this.incarnation, meshPort: this._meshPort, ...(tls?.mesh && { tls: tls.mesh }),
      load: () => ({ connections: this._gateway?.connectionCount ?? 0, rooms: this._gateway?.roomCount ?? 0 }) });
    this._mesh = new Mesh({ ...o, nodeId: this.id }, this._transport, this.log);
    const store = (this._store = new ConversationStore(o, this.id));
    if (this._disk) {
      const loaded = this._disk.load(store);
      this.log.info('store loaded from DATA_DIR', { dataDir: o.dataDir, writes: loaded, conversations: store.stats().conversations });
    }
    // One reader of the sync channel, which hands catch-up to the replicator and presence snapshots to presence.
    this._sync = new SyncChannel(this._mesh, this.log);
    this._replicator = new Replicator(
      store,
      this._mesh,
      this._sync,
      { ...o, sweepIntervalMs: Math.min(30_000, Math.max(50, Math.floor(o.conversationTtlMs / 10))) },
      this.log,
      this._disk,
    );
    // One budget of new conversations per client address, shared by REST and WebSocket joins.
    const creations = new CreationLimiter(o.newConversationsPerMin);
    // One verifier (and JWKS cache) for REST and WebSocket; none with AUTH=none. The revocation
    // table is replicated either way (an instance without auth still relays it).
    const table = new RevocationTable();
    const verifier = this.auth.mode === 'jwt' ? new TokenVerifier(this.auth, { revocations: table }) : null;
    const horizon = this.auth.maxTokenLifetimeSec + this.auth.clockToleranceSec + 60;
    this._revocations = new Revocations(table, this._mesh, this._sync, { maxHorizonSec: horizon }, this.log);
    this._restApi = await createRestApi(this.server, {
      options: o, store, replicator: this._replicator, creations, verifier, disk: this._disk, revocations: this._revocations, auth: this.auth,
      onInternalError: (err) => this.log.error('REST: internal error', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    });
    this._presence = new ClusterPresence(new PresenceTable(this.id), this._mesh, this._sync, o, this.log);
    this._gateway = new ChatGateway(o, this._replicator, store, this._presence, creations, this.log, verifier, this.auth.clockToleranceSec);
    this.startedAt = Date.now();
    if (this.deps.webhook) this._webhooks = new Webhooks(this.deps.webhook, this._replicator, this.log, this.journal);
    this._metrics = createNodeMetrics({ nodeId: this.id, version: VERSION, gateway: this._gateway, mesh: this._mesh, replicator: this._replicator, presence: this._presence, webhooks: this._webhooks, disk: this._disk });
    const meshView = new MeshStateView({ nodeId: this.id, detectionMs: o.peerTimeoutMs, gateway: this._gateway, mesh: this._mesh, replicator: this._replicator });
    this._meshState = new MeshStateApi(meshView, verifier, this.deps.metricsToken);
    this._replicator.start();
    this._revocations.start();
    this._revocations.on('revoked', () => this._gateway?.closeRevoked(table));
    this._gateway.start();

    this.log.info('chatmesh listening', { port: this._port, meshPort: this._meshPort, discovery: o.discovery, version: VERSION, meshTls: tls?.mesh !== undefined, clientTls: tls?.clients !== undefined });
    this.logAuth(verifier);
    if (o.meshSecret === undefined) this.log.warn('MESH_SECRET is not set: peer links are accepted from loopback only');
    if (o.discovery === 'static' && o.peers.length === 0) this.log.warn('DISCOVERY=static but no PEERS or PEERS_FILE: this node has no peers');

    const mesh = this._mesh;
    this.sources = [
      ...createPeerSources(o, this.id, this._meshPort, this.log),
      ...(this.deps.extraPeerSources?.({ id: this.id, meshPort: this._meshPort }) ?? []),
    ];
    for (const source of this.sources) {
      source.start({ add: (address, from) => mesh.addTarget(address, from), remove: (address, from) => mesh.removeTarget(address, from) });
    }
    this.state = 'running';
  }

  /** The one start-up line that says whether clients need a token. */
  private logAuth(verifier: TokenVerifier | null): void {
    const a = this.auth;
    if (verifier === null) {
      this.log.info('AUTH=none: clients are not authenticated (anyone may connect under any name); set AUTH=jwt to require tokens', { auth: 'none' });
      return;
    }
    const keys = a.keySource!.kind === 'jwks' ? 'JWKS_URL' : a.keySource!.kind === 'secret' ? 'JWT_SECRET' : 'JWT_PUBLIC_KEY_FILE';
    this.log.info('AUTH=jwt: every client needs a valid token', { auth: 'jwt', keys, algorithms: verifier.algorithms.join(','), issuer: a.issuer ?? null, audience: a.audience ?? null });
    // Fetch the JWKS now so the first client does not wait; a failure is retried on demand.
    verifier.prefetch().catch((err: Error) => this.log.warn('JWKS_URL: signing keys could not be fetched yet', { error: err.message }));
  }

  /**
   * Stops gracefully: /health answers 503, mDNS records are withdrawn, clients are closed
   * with 1001, peers are told, then the servers close. Safe to call more than once.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const wasRunning = this.state === 'running';
    this.state = 'closing';
    if (wasRunning) this.log.info('shutting down');
    this._gateway?.beginShutdown();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, this.options.shutdownTimeoutMs).unref());
    const steps = (async () => {
      await Promise.all(this.sources.map((s) => s.close().catch(() => {})));
      await this._gateway?.close();
      this._replicator?.close();
      void this._webhooks?.close();
      this._revocations?.close();
      this._presence?.close();
      this._sync?.close();
      await this._mesh?.close();
    })();
    await Promise.race([steps, deadline]);
    await Promise.all([closeServer(this.server), closeServer(this.meshServer)]);
    await this._restApi?.close().catch(() => {});
    await Promise.all([this._webhooks?.close() ?? this.journal?.close(), this._disk?.close().catch(() => {})]); // the journal's writes too
    this.unlock?.();
    this.state = 'closed';
    if (wasRunning) this.log.info('stopped');
  }
}

async function listen(server: http.Server, port: number, host: string | undefined, exclusive = false): Promise<number> {
  server.listen({ port, host, exclusive });
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => Promise.reject(err as Error)),
  ]);
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: http.Server | null): Promise<void> {
  if (!server || !server.listening) return;
  const closed = once(server, 'close');
  server.close();
  server.closeAllConnections();
  await closed;
}
