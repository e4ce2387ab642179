/**
 * Options from the environment: the variable behind each option, PEERS and PEERS_FILE, and
 * ALLOWED_ORIGINS. Values are checked by resolveOptions (config.ts), and any error names the
 * environment variable rather than the option behind it.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, normalizePeerUrl, resolveOptions, type ChatmeshOptions } from './config.js';

/** The environment variable behind each option that can be set from the environment. */
const ENV: Record<string, [keyof ChatmeshOptions, 'int' | 'string' | 'bool']> = {
  PORT: ['port', 'int'],
  HOST: ['host', 'string'],
  MESH_PORT: ['meshPort', 'int'],
  MESH_HOST: ['meshHost', 'string'],
  NODE_ID: ['nodeId', 'string'],
  DATA_DIR: ['dataDir', 'string'],
  MAX_DISK_BYTES: ['maxDiskBytes', 'int'],
  MAX_DISK_MESSAGES_PER_CONVERSATION: ['maxDiskMessagesPerConversation', 'int'],
  DISCOVERY: ['discovery', 'string'],
  MESH_SECRET: ['meshSecret', 'string'],
  MESH_HOPS: ['hopLimit', 'int'],
  MAX_PAYLOAD_BYTES: ['maxPayloadBytes', 'int'],
  MAX_PEER_PAYLOAD_BYTES: ['maxPeerPayloadBytes', 'int'],
  MAX_MESH_CONNECTIONS: ['maxMeshConnections', 'int'],
  MAX_TEXT_LENGTH: ['maxTextLength', 'int'],
  MAX_NAME_LENGTH: ['maxNameLength', 'int'],
  MAX_ROOMS_PER_CONNECTION: ['maxRoomsPerConnection', 'int'],
  PING_INTERVAL_MS: ['pingIntervalMs', 'int'],
  PEER_HEARTBEAT_MS: ['peerHeartbeatMs', 'int'],
  PEER_TIMEOUT_MS: ['peerTimeoutMs', 'int'],
  PEER_HANDSHAKE_TIMEOUT_MS: ['peerHandshakeTimeoutMs', 'int'],
  PEER_REDIAL_BASE_MS: ['redialBaseMs', 'int'],
  PEER_REDIAL_MAX_MS: ['redialMaxMs', 'int'],
  PEER_REJECTED_RETRY_MS: ['rejectedRetryMs', 'int'],
  MAX_PEER_BUFFER_BYTES: ['maxPeerBufferBytes', 'int'],
  SEEN_TTL_MS: ['seenTtlMs', 'int'],
  SEEN_MAX: ['seenMax', 'int'],
  MDNS_TYPE: ['mdnsType', 'string'],
  MDNS_QUERY_INTERVAL_MS: ['mdnsQueryIntervalMs', 'int'],
  PEERS_DNS: ['peersDns', 'string'],
  PEERS_DNS_PORT: ['peersDnsPort', 'int'],
  PEERS_DNS_INTERVAL_MS: ['peersDnsIntervalMs', 'int'],
  PEERS_DNS_SERVER: ['peersDnsServer', 'string'],
  SHUTDOWN_TIMEOUT_MS: ['shutdownTimeoutMs', 'int'],
  HTTP_HEADERS_TIMEOUT_MS: ['httpHeadersTimeoutMs', 'int'],
  HTTP_REQUEST_TIMEOUT_MS: ['httpRequestTimeoutMs', 'int'],
  HTTP_KEEP_ALIVE_TIMEOUT_MS: ['httpKeepAliveTimeoutMs', 'int'],
  HTTP_MAX_HEADER_BYTES: ['httpMaxHeaderBytes', 'int'],
  CONVERSATION_TTL_MS: ['conversationTtlMs', 'int'],
  MAX_MESSAGES_PER_CONVERSATION: ['maxMessagesPerConversation', 'int'],
  MAX_CONVERSATIONS: ['maxConversations', 'int'],
  MAX_STORE_BYTES: ['maxStoreBytes', 'int'],
  NEW_CONVERSATIONS_PER_MIN: ['newConversationsPerMin', 'int'],
  MAX_NEW_CONVERSATIONS_PER_CONNECTION: ['maxNewConversationsPerConnection', 'int'],
  MAX_REPLY_BYTES: ['maxReplyBytes', 'int'],
  MAX_UNSENT_BYTES: ['maxUnsentBytes', 'int'],
  REPLICATION_ACK_TIMEOUT_MS: ['replicationAckTimeoutMs', 'int'],
  MAX_BODY_BYTES: ['maxBodyBytes', 'int'],
  HISTORY_ON_JOIN: ['historyOnJoin', 'int'],
  PER_MESSAGE_DEFLATE: ['perMessageDeflate', 'bool'],
  PRESENCE_MAX_MEMBERS: ['presenceMaxMembers', 'int'],
  MAX_CLIENT_BUFFER_BYTES: ['maxClientBufferBytes', 'int'],
  CLIENT_WRITE_DEADLINE_MS: ['clientWriteDeadlineMs', 'int'],
  MAX_CLIENT_BUFFER_HARD_BYTES: ['maxClientBufferHardBytes', 'int'],
  RATE_LIMIT_PER_SEC: ['rateLimitPerSec', 'int'],
  RATE_LIMIT_BURST: ['rateLimitBurst', 'int'],
  RATE_LIMIT_STRIKES: ['rateLimitStrikes', 'int'],
  MAX_CONNECTIONS: ['maxConnections', 'int'],
  LOG_LEVEL: ['logLevel', 'string'],
};

/** Reads options from environment variables; throws ConfigError naming the variable on a bad value. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ChatmeshOptions {
  const partial: Record<string, unknown> = {};
  for (const [variable, [key, kind]] of Object.entries(ENV)) {
    const raw = env[variable];
    if (raw === undefined || raw === '') continue;
    if (kind === 'bool') {
      const v = raw.trim().toLowerCase();
      if (!['1', '0', 'true', 'false', 'yes', 'no'].includes(v)) throw new ConfigError(variable, `must be 1 or 0, not ${JSON.stringify(raw)}`);
      partial[key] = ['1', 'true', 'yes'].includes(v);
    } else if (kind === 'int') {
      if (!/^\d+$/.test(raw.trim())) throw new ConfigError(variable, `must be a whole number, not ${JSON.stringify(raw)}`);
      partial[key] = Number(raw.trim());
    } else {
      partial[key] = raw.trim();
    }
  }
  const peers: string[] = [];
  if (env.PEERS) {
    for (const p of env.PEERS.split(',').filter((s) => s.trim() !== '')) peers.push(normalizePeerUrl(p, 'PEERS'));
  }
  if (env.PEERS_FILE) peers.push(...readPeersFile(env.PEERS_FILE));
  partial.peers = peers;
  if (env.ALLOWED_ORIGINS) partial.allowedOrigins = env.ALLOWED_ORIGINS.split(',').map((o) => o.trim()).filter((o) => o !== '');
  try {
    return resolveOptions(partial as Partial<ChatmeshOptions>);
  } catch (err) {
    // Name the environment variable rather than the option behind it.
    if (err instanceof ConfigError) {
      const variable = Object.entries(ENV).find(([, [key]]) => key === err.variable)?.[0] ?? err.variable;
      throw new ConfigError(variable, err.message.slice(err.variable.length + 2));
    }
    throw err;
  }
}

/** Reads a peers file shaped like peers.example.json: `{ "peers": ["ws://host:port", ...] }`. */
export function readPeersFile(path: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError('PEERS_FILE', `cannot read ${path}: ${(err as Error).message}`);
  }
  const list = (parsed as { peers?: unknown })?.peers;
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string')) {
    throw new ConfigError('PEERS_FILE', `${path} must hold {"peers": ["ws://host:port", ...]}`);
  }
  return list.map((p: string) => normalizePeerUrl(p, 'PEERS_FILE'));
}

/** Shortest METRICS_TOKEN: long enough that guessing it is hopeless. */
export const MIN_METRICS_TOKEN_LENGTH = 16;

/** METRICS_TOKEN: when set, GET /metrics needs `Authorization: Bearer <it>`. Undefined when unset. */
export function metricsTokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.METRICS_TOKEN;
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < MIN_METRICS_TOKEN_LENGTH) throw new ConfigError('METRICS_TOKEN', `must be at least ${MIN_METRICS_TOKEN_LENGTH} characters`);
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(raw)) throw new ConfigError('METRICS_TOKEN', 'must be a Bearer token (letters, digits and -._~+/)');
  return raw;
}

/** WEBHOOK_URL and WEBHOOK_SECRET, with the bounds of delivery (lib/webhooks/). */
export interface WebhookOptions {
  /** Where every event is POSTed: http or https. `WEBHOOK_URL`. */
  url: string;
  /** Key of the X-Chatmesh-Signature HMAC; unset: no signature. `WEBHOOK_SECRET`. */
  secret: string | undefined;
  /** Events waiting (for a request slot or a retry) at most; over it the oldest is dropped. @default 10000 */
  maxQueue: number;
  /** Requests under way at once. @default 4 */
  concurrency: number;
  /** One request's deadline. @default 5000 */
  timeoutMs: number;
  /** An event is retried (network errors, 5xx, 429) until this long after it was born. @default 10 min */
  retryForMs: number;
  /** First retry delay; each next one doubles, up to retryMaxMs, with jitter. @default 1000 */
  retryBaseMs: number;
  retryMaxMs: number;
}

export const WEBHOOK_DEFAULTS: Omit<WebhookOptions, 'url' | 'secret'> = Object.freeze({
  maxQueue: 10_000,
  concurrency: 4,
  timeoutMs: 5000,
  retryForMs: 10 * 60_000,
  retryBaseMs: 1000,
  retryMaxMs: 60_000,
});

/** Shortest WEBHOOK_SECRET: long enough that a signature cannot be forged by guessing it. */
export const MIN_WEBHOOK_SECRET_LENGTH = 16;

/** Checks webhook options over the defaults; throws ConfigError naming WEBHOOK_URL or WEBHOOK_SECRET. */
export function resolveWebhookOptions(input: Partial<WebhookOptions> & { url: string }): WebhookOptions {
  let url: URL;
  try {
    url = new URL(input.url.trim());
  } catch {
    throw new ConfigError('WEBHOOK_URL', `${JSON.stringify(input.url)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('WEBHOOK_URL', `must be an http:// or https:// URL, not ${JSON.stringify(input.url)}`);
  if (url.username !== '' || url.password !== '') throw new ConfigError('WEBHOOK_URL', 'must not carry credentials (use WEBHOOK_SECRET: receivers check the signature)');
  if (input.secret !== undefined && input.secret.length < MIN_WEBHOOK_SECRET_LENGTH) {
    throw new ConfigError('WEBHOOK_SECRET', `must be at least ${MIN_WEBHOOK_SECRET_LENGTH} characters`);
  }
  const merged = { ...WEBHOOK_DEFAULTS, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)), url: url.href, secret: input.secret };
  for (const key of Object.keys(WEBHOOK_DEFAULTS) as (keyof typeof WEBHOOK_DEFAULTS)[]) {
    if (!Number.isSafeInteger(merged[key]) || merged[key] < 1) throw new ConfigError(`webhook ${key}`, 'must be a whole number of at least 1');
  }
  return merged;
}

/** WEBHOOK_URL (and WEBHOOK_SECRET): undefined when WEBHOOK_URL is unset; a secret without a URL is an error. */
export function webhookOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): WebhookOptions | undefined {
  const url = env.WEBHOOK_URL?.trim();
  const secret = env.WEBHOOK_SECRET === '' ? undefined : env.WEBHOOK_SECRET;
  if (url === undefined || url === '') {
    if (secret !== undefined) throw new ConfigError('WEBHOOK_SECRET', 'is set but WEBHOOK_URL is not');
    return undefined;
  }
  return resolveWebhookOptions({ url, secret });
}
