/**
 * chatmesh/client in Node: as index.js, but without a WebSocket given it uses the global
 * one when there is one (Node 22+), else loads `ws` (a dependency of chatmesh) on first connect.
 */
import { InboxClient as BaseClient } from './inbox-client.js';
import type { ChatClientOptions } from './client-types.js';
import type { WebSocketClass, WebSocketSource } from './connection.js';

export type ClientOptions = Omit<ChatClientOptions, 'WebSocket'> & { WebSocket?: WebSocketSource };

const loadWs = async (): Promise<WebSocketClass> => (await import('ws')).WebSocket;

export class ChatClient extends BaseClient {
  constructor(options: ClientOptions) {
    super({ ...options, WebSocket: options.WebSocket ?? (globalThis as { WebSocket?: WebSocketSource }).WebSocket ?? loadWs });
  }
}

export { ChatError } from './chat-error.js';
export { backoffDelay, BACKOFF_DEFAULTS, type BackoffOptions } from './backoff.js';
export type { ChatClientEvents, ChatClientOptions } from './client-types.js';
export type { ConnectionState, WebSocketClass, WebSocketSource } from './connection.js';
export type { JoinedInfo } from './room-state.js';
export type { TokenSource } from './token.js';
export type * from './frames.js';
