/**
 * chatmesh/client: a client for chatmesh servers, for browsers and Node. This entry has no
 * bare imports (the server serves it as an ES module at /client.js); it uses the global
 * WebSocket unless one is given. In Node, the package's `chatmesh/client` export
 * resolves to node.js instead, which loads `ws` when no WebSocket is given.
 */
import { InboxClient as BaseClient } from './inbox-client.js';
import type { ChatClientOptions } from './client-types.js';
import type { WebSocketSource } from './connection.js';

export type ClientOptions = Omit<ChatClientOptions, 'WebSocket'> & { WebSocket?: WebSocketSource };

export class ChatClient extends BaseClient {
  constructor(options: ClientOptions) {
    const WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketSource }).WebSocket;
    if (WebSocket === undefined) throw new Error('no WebSocket here: pass one (options.WebSocket)');
    super({ ...options, WebSocket });
  }
}

export { ChatError } from './chat-error.js';
export { backoffDelay, BACKOFF_DEFAULTS, type BackoffOptions } from './backoff.js';
export type { ChatClientEvents, ChatClientOptions } from './client-types.js';
export type { ConnectionState, WebSocketClass, WebSocketSource } from './connection.js';
export type { JoinedInfo } from './room-state.js';
export type { TokenSource } from './token.js';
export type * from './frames.js';
