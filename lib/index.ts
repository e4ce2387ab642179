/** chatmesh: a brokerless WebSocket chat server. */
export { ChatNode, type ChatNodeDeps } from './chat-node.js';
export { resolveOptions, DEFAULTS, ConfigError, type ChatmeshOptions } from './config.js';
export { metricsTokenFromEnv, optionsFromEnv, resolveWebhookOptions, webhookOptionsFromEnv, WEBHOOK_DEFAULTS, type WebhookOptions } from './config-env.js';
export { authOptionsFromEnv, type AuthOptions } from './auth/index.js';
export { tlsOptionsFromEnv, type TlsOptions } from './tls-options.js';
export { ClientErrorCode, CloseCode } from './errors.js';
export type { HealthReport } from './http/health.js';
export type { PeerStatus, PeerState } from './mesh/mesh.js';
export { VERSION } from './version.js';
export { runClusterPrimary, type PrimaryOptions } from './cluster/primary.js';
export { ClusterSiblings } from './discovery/cluster-siblings.js';
export { createLogger } from './log.js';
