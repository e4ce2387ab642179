/** Every option chatmesh has, its default, and the environment variable that sets it (read by config-env.ts). Options are merged and checked once, here. */
import { isIP } from 'node:net';
import { getHeapStatistics } from 'node:v8';

export type DiscoveryMode = 'mdns' | 'static' | 'dns' | 'off';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface ChatmeshOptions {
  /** Port for clients (HTTP + WebSocket). `PORT`. @default 3000 */
  port: number;
  /** Address to listen on; undefined listens on every interface. `HOST`. */
  host: string | undefined;
  /** Port for peer links; the same as `port` unless set. `MESH_PORT`. */
  meshPort: number;
  /** Address the peer port listens on when it differs from `port`. `MESH_HOST`. */
  meshHost: string | undefined;
  /** This node's id; random per start unless set (with DATA_DIR: kept there). `NODE_ID`. */
  nodeId: string | undefined;
  /** Where the store is kept on disk; unset: memory only. Cluster workers use DATA_DIR/worker-N. `DATA_DIR`. */
  dataDir?: string;
  /** With DATA_DIR: disk bytes in use over which the least recently active conversations are removed. `MAX_DISK_BYTES`. */
  maxDiskBytes?: number;
  /** With DATA_DIR: messages kept on disk per conversation (the history REST reads), at least the memory window. `MAX_DISK_MESSAGES_PER_CONVERSATION`. @default 100000 */ maxDiskMessagesPerConversation?: number;
  /** How peers are found. `DISCOVERY`. @default 'mdns' */
  discovery: DiscoveryMode;
  /** Static peer addresses (ws://host:port), from `PEERS` and `PEERS_FILE`. */
  peers: string[];
  /** Shared secret for peer authentication (at least 16 characters); without it only loopback peers are accepted. `MESH_SECRET`. */
  meshSecret: string | undefined;
  /** How many peer-to-peer transmissions a room event may make. `MESH_HOPS`. @default 2 */
  hopLimit: number;
  /** Largest client frame; larger ones close the connection with 1009. `MAX_PAYLOAD_BYTES`. @default 65536 */
  maxPayloadBytes: number;
  /** Largest peer frame once the handshake is done (before it: 4 KiB). `MAX_PEER_PAYLOAD_BYTES`. @default 1 MiB */
  maxPeerPayloadBytes: number;
  /** Inbound peer connections (handshakes under way and links); more get HTTP 503. `MAX_MESH_CONNECTIONS`. @default 256 */
  maxMeshConnections: number;
  /** Longest message text, in characters. `MAX_TEXT_LENGTH`. @default 8000 */
  maxTextLength: number;
  /** Longest room or user name, in characters. `MAX_NAME_LENGTH`. @default 128 */
  maxNameLength: number;
  /** Rooms one connection may be in at once. `MAX_ROOMS_PER_CONNECTION`. @default 100 */
  maxRoomsPerConnection: number;
  /** Client ping interval; a client that misses one pong is dropped. `PING_INTERVAL_MS`. @default 25000 */
  pingIntervalMs: number;
  /** Peer link heartbeat interval. `PEER_HEARTBEAT_MS`. @default 1000 */
  peerHeartbeatMs: number;
  /** A peer silent this long is declared down. `PEER_TIMEOUT_MS`. @default 4000 */
  peerTimeoutMs: number;
  /** Time a peer has to complete the handshake. `PEER_HANDSHAKE_TIMEOUT_MS`. @default 2000 */
  peerHandshakeTimeoutMs: number;
  /** First redial delay (full jitter). `PEER_REDIAL_BASE_MS`. @default 250 */
  redialBaseMs: number;
  /** Largest redial delay. `PEER_REDIAL_MAX_MS`. @default 5000 */
  redialMaxMs: number;
  /** Redial delay after a peer refused us (bad secret, not loopback). `PEER_REJECTED_RETRY_MS`. @default 30000 */
  rejectedRetryMs: number;
  /** Unsent bytes on a peer link before it is cut (catch-up repairs it). `MAX_PEER_BUFFER_BYTES`. @default 16 MiB */
  maxPeerBufferBytes: number;
  /** How long a message id is remembered for dedupe. `SEEN_TTL_MS`. @default 120000 */
  seenTtlMs: number;
  /** How many message ids are remembered at most. `SEEN_MAX`. @default 200000 */
  seenMax: number;
  /** mDNS service type. `MDNS_TYPE`. @default 'chatmesh' */
  mdnsType: string;
  /** How often mDNS asks again for peers. `MDNS_QUERY_INTERVAL_MS`. @default 10000 */
  mdnsQueryIntervalMs: number;
  /** DISCOVERY=dns: the name to resolve (SRV records if it starts with `_`, else A/AAAA). `PEERS_DNS`. */
  peersDns: string | undefined;
  /** DISCOVERY=dns: port of the peers found by A/AAAA records; this node's mesh port when unset. `PEERS_DNS_PORT`. */
  peersDnsPort: number | undefined;
  /** DISCOVERY=dns: time between lookups. `PEERS_DNS_INTERVAL_MS`. @default 5000 */
  peersDnsIntervalMs: number;
  /** DISCOVERY=dns: DNS server to ask (`ip:port`), instead of the system's. `PEERS_DNS_SERVER`. */
  peersDnsServer: string | undefined;
  /** Longest a graceful stop waits for peers and clients. `SHUTDOWN_TIMEOUT_MS`. @default 3000 */
  shutdownTimeoutMs: number;
  /** HTTP: time to receive the request headers. `HTTP_HEADERS_TIMEOUT_MS`. @default 15000 */
  httpHeadersTimeoutMs: number;
  /** HTTP: time to receive the whole request. `HTTP_REQUEST_TIMEOUT_MS`. @default 30000 */
  httpRequestTimeoutMs: number;
  /** HTTP: idle keep-alive. `HTTP_KEEP_ALIVE_TIMEOUT_MS`. @default 5000 */
  httpKeepAliveTimeoutMs: number;
  /** HTTP: header size limit. `HTTP_MAX_HEADER_BYTES`. @default 16384 */
  httpMaxHeaderBytes: number;
  /** A conversation with no write for this long is removed everywhere. `CONVERSATION_TTL_MS`. @default 24 h */
  conversationTtlMs: number;
  /** Messages kept per conversation, oldest dropped first. `MAX_MESSAGES_PER_CONVERSATION`. @default 1000 */
  maxMessagesPerConversation: number;
  /** Conversations kept; only empty ones are evicted to make room, else new ones get store_full. `MAX_CONVERSATIONS`. @default 10000 */
  maxConversations: number;
  /** Estimated memory the store may hold; over it, new messages and conversations get store_full. `MAX_STORE_BYTES`. @default a quarter of the V8 heap limit */
  maxStoreBytes: number;
  /** New conversations (REST creates, joins of a room that does not exist) per client address per minute, in bursts up to as many. `NEW_CONVERSATIONS_PER_MIN`. @default 300 */
  newConversationsPerMin: number;
  /** New conversations one WebSocket connection may create in its life. `MAX_NEW_CONVERSATIONS_PER_CONNECTION`. @default 1000 */
  maxNewConversationsPerConnection: number;
  /** Largest `joined` reply; a longer resume is paged (`"more": true`). `MAX_REPLY_BYTES`. @default 512 KiB */
  maxReplyBytes: number;
  /** Unsent bytes for all clients together; over it, the clients holding the most are cut (1013). `MAX_UNSENT_BYTES`. @default an eighth of the V8 heap limit */
  maxUnsentBytes: number;
  /** Longest a REST write waits for peers to acknowledge it. `REPLICATION_ACK_TIMEOUT_MS`. @default 1000 */
  replicationAckTimeoutMs: number;
  /** Largest REST request body. `MAX_BODY_BYTES`. @default 65536 */
  maxBodyBytes: number;
  /** Messages of history in the `joined` reply. `HISTORY_ON_JOIN`. @default 50 */
  historyOnJoin: number;
  /** Unsent bytes over which a client counts as behind (soft limit). `MAX_CLIENT_BUFFER_BYTES`. @default 1 MiB */
  maxClientBufferBytes: number;
  /** A client behind for longer than this is cut as a slow consumer (close 1013). `CLIENT_WRITE_DEADLINE_MS`. @default 10000 */
  clientWriteDeadlineMs: number;
  /** Unsent bytes at which a client is cut at once, whatever the deadline. `MAX_CLIENT_BUFFER_HARD_BYTES`. @default 16 MiB */
  maxClientBufferHardBytes: number;
  /** Frames per second a connection may send, on average. `RATE_LIMIT_PER_SEC`. @default 1000 */
  rateLimitPerSec: number;
  /** Frames a connection may send in a burst. `RATE_LIMIT_BURST`. @default 2000 */
  rateLimitBurst: number;
  /** Frames refused in a row (rate_limited) before the connection is closed with 1008. `RATE_LIMIT_STRIKES`. @default 100 */
  rateLimitStrikes: number;
  /** Client connections per instance; more are refused with HTTP 503. `MAX_CONNECTIONS`. @default 50000 */
  maxConnections: number;
  /** Browser origins allowed to connect (comma-separated); unset allows all. `ALLOWED_ORIGINS`. */
  allowedOrigins: string[];
  /** Offer permessage-deflate to clients (costs CPU and memory per connection). `PER_MESSAGE_DEFLATE=1`. @default false */
  perMessageDeflate: boolean;
  /** Names in a room (cluster-wide) above which it tells counts only (`occupancy`), not joins and leaves. `PRESENCE_MAX_MEMBERS`. @default 1000 */ presenceMaxMembers: number;
  /** `LOG_LEVEL`. @default 'info' */
  logLevel: LogLevel;
}

export const DEFAULTS: Readonly<Omit<ChatmeshOptions, 'meshPort'>> & { meshPort: number | undefined } = Object.freeze({
  port: 3000,
  host: undefined,
  meshPort: undefined,
  meshHost: undefined,
  nodeId: undefined,
  discovery: 'mdns',
  peers: [],
  meshSecret: undefined,
  hopLimit: 2,
  maxPayloadBytes: 64 * 1024,
  maxPeerPayloadBytes: 1024 * 1024,
  maxMeshConnections: 256,
  maxTextLength: 8000,
  maxNameLength: 128,
  maxRoomsPerConnection: 100,
  pingIntervalMs: 25_000,
  peerHeartbeatMs: 1000,
  peerTimeoutMs: 4000,
  peerHandshakeTimeoutMs: 2000,
  redialBaseMs: 250,
  redialMaxMs: 5000,
  rejectedRetryMs: 30_000,
  maxPeerBufferBytes: 16 * 1024 * 1024,
  seenTtlMs: 120_000,
  seenMax: 200_000,
  mdnsType: 'chatmesh',
  mdnsQueryIntervalMs: 10_000,
  peersDns: undefined,
  peersDnsPort: undefined,
  peersDnsIntervalMs: 5000,
  peersDnsServer: undefined,
  shutdownTimeoutMs: 3000,
  httpHeadersTimeoutMs: 15_000,
  httpRequestTimeoutMs: 30_000,
  httpKeepAliveTimeoutMs: 5000,
  httpMaxHeaderBytes: 16 * 1024,
  conversationTtlMs: 24 * 60 * 60 * 1000,
  maxMessagesPerConversation: 1000,
  maxConversations: 10_000,
  maxStoreBytes: Math.floor(getHeapStatistics().heap_size_limit / 4),
  newConversationsPerMin: 300,
  maxNewConversationsPerConnection: 1000,
  maxReplyBytes: 512 * 1024,
  maxUnsentBytes: Math.floor(getHeapStatistics().heap_size_limit / 8),
  replicationAckTimeoutMs: 1000,
  maxBodyBytes: 64 * 1024,
  historyOnJoin: 50,
  perMessageDeflate: false, presenceMaxMembers: 1000,
  maxClientBufferBytes: 1024 * 1024,
  clientWriteDeadlineMs: 10_000,
  maxClientBufferHardBytes: 16 * 1024 * 1024,
  rateLimitPerSec: 1000,
  rateLimitBurst: 2000,
  rateLimitStrikes: 100,
  maxConnections: 50_000,
  allowedOrigins: [],
  logLevel: 'info',
});

/** The shortest MESH_SECRET accepted. */
export const MIN_MESH_SECRET_LENGTH = 16;
/** Hop limits above this are clamped, whatever a peer sends. */
export const MAX_HOP_LIMIT = 16;

export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** Options that must be whole numbers ≥ 1 (limits, sizes and durations). */
const POSITIVE_INTEGERS = [
  'maxPayloadBytes', 'maxPeerPayloadBytes', 'maxTextLength', 'maxNameLength', 'maxRoomsPerConnection',
  'pingIntervalMs', 'peerHeartbeatMs', 'peerTimeoutMs', 'peerHandshakeTimeoutMs', 'redialBaseMs', 'redialMaxMs',
  'rejectedRetryMs', 'maxPeerBufferBytes', 'seenTtlMs', 'seenMax', 'mdnsQueryIntervalMs', 'peersDnsIntervalMs', 'shutdownTimeoutMs',
  'httpHeadersTimeoutMs', 'httpRequestTimeoutMs', 'httpKeepAliveTimeoutMs', 'httpMaxHeaderBytes',
  'conversationTtlMs', 'maxMessagesPerConversation', 'maxConversations', 'maxStoreBytes', 'newConversationsPerMin', 'maxNewConversationsPerConnection',
  'maxReplyBytes', 'maxUnsentBytes',
  'replicationAckTimeoutMs', 'maxBodyBytes', 'maxClientBufferBytes', 'clientWriteDeadlineMs', 'maxClientBufferHardBytes', 'rateLimitPerSec', 'rateLimitBurst',
  'rateLimitStrikes', 'maxConnections', 'maxMeshConnections', 'presenceMaxMembers',
] as const;

/** Merges options over the defaults and checks them; throws ConfigError (naming the option) on a bad value. */
export function resolveOptions(input: Partial<ChatmeshOptions> = {}): ChatmeshOptions {
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const merged = { ...DEFAULTS, ...defined } as ChatmeshOptions;
  if (merged.meshPort === undefined) merged.meshPort = merged.port;
  checkPort('port', merged.port, true);
  checkPort('meshPort', merged.meshPort, true);
  if (!['mdns', 'static', 'dns', 'off'].includes(merged.discovery)) {
    throw new ConfigError('discovery', `must be mdns, static, dns or off, not ${JSON.stringify(merged.discovery)}`);
  }
  checkDnsDiscovery(merged);
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(merged.logLevel)) {
    throw new ConfigError('logLevel', `must be debug, info, warn, error or silent`);
  }
  if (merged.hopLimit < 1 || merged.hopLimit > MAX_HOP_LIMIT || !Number.isInteger(merged.hopLimit)) {
    throw new ConfigError('hopLimit', `must be an integer from 1 to ${MAX_HOP_LIMIT}`);
  }
  for (const key of [...POSITIVE_INTEGERS, ...(['maxDiskBytes', 'maxDiskMessagesPerConversation'] as const).filter((k) => merged[k] !== undefined)]) {
    if (!Number.isSafeInteger(merged[key]) || merged[key]! < 1) throw new ConfigError(key, 'must be a whole number of at least 1');
  }
  if (!Number.isSafeInteger(merged.historyOnJoin) || merged.historyOnJoin < 0) throw new ConfigError('historyOnJoin', 'must be a whole number');
  if (merged.maxClientBufferHardBytes < merged.maxClientBufferBytes) {
    throw new ConfigError('maxClientBufferHardBytes', 'must not be smaller than maxClientBufferBytes');
  }
  if (merged.peerTimeoutMs <= merged.peerHeartbeatMs) {
    throw new ConfigError('peerTimeoutMs', 'must be longer than peerHeartbeatMs');
  }
  if (merged.redialMaxMs < merged.redialBaseMs) throw new ConfigError('redialMaxMs', 'must not be smaller than redialBaseMs');
  if (merged.meshSecret !== undefined && merged.meshSecret.length < MIN_MESH_SECRET_LENGTH) {
    throw new ConfigError('meshSecret', `must be at least ${MIN_MESH_SECRET_LENGTH} characters (a proof of it can be guessed at offline: make it long and random)`);
  }
  merged.peers = merged.peers.map((p) => normalizePeerUrl(p, 'peers'));
  return merged;
}

/** PEERS_DNS and friends: a name is needed with DISCOVERY=dns; the server must be an IP (and port). */
function checkDnsDiscovery(merged: ChatmeshOptions): void {
  if (merged.peersDns !== undefined) {
    const name = merged.peersDns;
    if (name.length > 253 || !/^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/.test(name)) {
      throw new ConfigError('peersDns', `${JSON.stringify(name)} is not a DNS name`);
    }
  }
  if (merged.discovery === 'dns' && !merged.peersDns) {
    throw new ConfigError('peersDns', 'is needed with DISCOVERY=dns: the DNS name listing the peers (a headless Service, or an SRV name starting with _)');
  }
  if (merged.peersDnsPort !== undefined) checkPort('peersDnsPort', merged.peersDnsPort, false);
  if (merged.peersDnsServer !== undefined) merged.peersDnsServer = normalizeDnsServer(merged.peersDnsServer);
}

/** Accepts `ip`, `ip:port`, `[v6]` or `[v6]:port` (what Resolver.setServers takes); the port defaults to 53. */
export function normalizeDnsServer(raw: string): string {
  const text = raw.trim();
  const match = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text) ?? /^([^:]+)(?::(\d{1,5}))?$/.exec(text) ?? [text, text, undefined];
  const [, ip, port = '53'] = match;
  if (!isIP(ip!)) throw new ConfigError('peersDnsServer', `${JSON.stringify(raw)} must be an IP address with an optional port (10.0.0.10:53, [fd00::a]:53)`);
  checkPort('peersDnsServer', Number(port), false);
  return isIP(ip!) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function checkPort(name: string, value: number, allowZero: boolean): void {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1) || value > 65535) {
    throw new ConfigError(name, `must be a port number, not ${value}`);
  }
}

/** Accepts `ws://host:port`, `host:port` or `[v6]:port`; returns `ws://host:port`. */
export function normalizePeerUrl(raw: string, variable: string): string {
  const text = raw.trim();
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `ws://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ConfigError(variable, `${JSON.stringify(raw)} is not a peer address (ws://host:port)`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new ConfigError(variable, `${JSON.stringify(raw)} must use ws:// or wss://`);
  }
  // URL reports a scheme's default port (ws :80, wss :443) as '', even when written out.
  const port = url.port || /:(\d{1,5})\/?$/.exec(withScheme)?.[1];
  if (!port) throw new ConfigError(variable, `${JSON.stringify(raw)} has no port`);
  const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname;
  return `${url.protocol}//${host}:${port}`;
}
