/**
 * The listeners of every client socket, made once per gateway and shared: ws calls them with
 * the socket as `this`, and the connection is looked up by its socket. Four closures (and
 * their context) per connection were about 200 bytes of heap that an idle connection kept.
 */
import type { RawData, WebSocket } from 'ws';
import type { Logger } from '../log.js';
import type { ClientConnection } from './client-connection.js';

/** What the listeners need of the gateway. */
export interface SocketOwner {
  connectionOf(socket: WebSocket): ClientConnection | undefined;
  handleMessage(conn: ClientConnection, data: RawData, isBinary: boolean): void;
  cleanup(conn: ClientConnection): void;
}

export interface SocketListeners {
  message(this: WebSocket, data: RawData, isBinary: boolean): void;
  pong(this: WebSocket): void;
  close(this: WebSocket): void;
  error(this: WebSocket, err: Error): void;
}

export function socketListeners(owner: SocketOwner, log: Logger): SocketListeners {
  return {
    message(data, isBinary) {
      const conn = owner.connectionOf(this);
      if (conn) owner.handleMessage(conn, data, isBinary);
    },
    pong() {
      const conn = owner.connectionOf(this);
      if (conn) conn.isAlive = true;
    },
    close() {
      const conn = owner.connectionOf(this);
      if (conn) owner.cleanup(conn);
    },
    // A reset socket or a protocol violation (ws closes with 1002/1007/1009 itself) costs this
    // connection only, never the process.
    error(err) {
      log.debug('client socket error', { conn: owner.connectionOf(this)?.id, error: err.message });
    },
  };
}
