/**
 * The peer handshake on the wire (server to server). JSON frames, dialer first:
 *   dialer   → {"t":"hello","v":1,"id","inc","port","nonce"}
 *   acceptor → {"t":"welcome","v":1,"id","inc","nonce","proof"}   proof answers the dialer's nonce
 *   dialer   → {"t":"auth","proof"}                                proof answers the acceptor's nonce
 *   acceptor → {"t":"ready"}
 * A refusal is a close with a CloseCode (Rejected, VersionMismatch, Self, ...) and a reason.
 * After the handshake every frame on the link is a mesh envelope (lib/mesh/envelope.ts).
 */
export const PEER_PROTOCOL_VERSION = 1;
export const MESH_PATH = '/_mesh';
export const MESH_SUBPROTOCOL = 'chatmesh.v1';

export interface HelloFrame {
  t: 'hello';
  v: number;
  id: string;
  inc: string;
  port: number;
  nonce: string;
}
export interface WelcomeFrame {
  t: 'welcome';
  v: number;
  id: string;
  inc: string;
  nonce: string;
  proof: string;
}
export interface AuthFrame {
  t: 'auth';
  proof: string;
}
export interface ReadyFrame {
  t: 'ready';
}

/** What a node id or a message id may look like on the peer protocol. */
export const ID_PATTERN = /^[A-Za-z0-9_\-+/=.:]{1,128}$/;

/** Parses a handshake frame of the expected kind; null if it is anything else. */
export function decodeHandshake<T extends HelloFrame | WelcomeFrame | AuthFrame | ReadyFrame>(
  frame: string,
  kind: T['t'],
): T | null {
  let value: unknown;
  try {
    value = JSON.parse(frame);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (v.t !== kind) return null;
  const str = (k: string) => typeof v[k] === 'string' && (v[k] as string).length <= 256;
  switch (kind) {
    case 'hello':
      if (!str('id') || !ID_PATTERN.test(v.id as string) || !str('inc') || !str('nonce')) return null;
      if (typeof v.v !== 'number' || typeof v.port !== 'number' || !Number.isInteger(v.port)) return null;
      if (v.port < 1 || v.port > 65535) return null;
      return v as unknown as T;
    case 'welcome':
      if (!str('id') || !ID_PATTERN.test(v.id as string) || !str('inc') || !str('nonce') || !str('proof')) return null;
      if (typeof v.v !== 'number') return null;
      return v as unknown as T;
    case 'auth':
      return str('proof') ? (v as unknown as T) : null;
    default:
      return v as unknown as T;
  }
}
