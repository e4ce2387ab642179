/**
 * The peer handshake on the wire (server to server). JSON frames; the dialer proves it knows
 * MESH_SECRET first, so a stranger that connects gets no proof to guess the secret from:
 *   dialer   → {"t":"hello","v":1,"id","inc","port","nonce","df":1}
 *   acceptor → {"t":"welcome","v":1,"id","inc","nonce","df":1}      no proof yet
 *   dialer   → {"t":"auth","proof"}                                 proof answers the acceptor's nonce
 *   acceptor → {"t":"ready","proof"}                                proof answers the dialer's nonce
 * `df` ("dialer first") is a capability of protocol 1, so nodes of both kinds link during a
 * rolling upgrade. The previous order, without `df`, had the acceptor prove first:
 *   dialer → hello (no df); acceptor → welcome with "proof"; dialer → auth; acceptor → {"t":"ready"}
 * A node still speaks it as the dialer, to an acceptor whose welcome has no `df` (it checks
 * that proof before sending its own); as the acceptor, it answers a hello without `df` the old
 * way only when no MESH_SECRET is set (no proofs at all), and refuses it otherwise (4005).
 * `desk` (DESK_FEATURE) in a hello or welcome says the node takes the support desk's writes
 * (status, assignment, read cursors, edits: issue 13) and typing; a node without it is never sent them.
 * `batch` (BATCH_FEATURE) says the node takes several envelopes in one frame (frame-batch.ts);
 * a node without it is sent one envelope per frame, as before.
 * A refusal is a close with a CloseCode (Rejected, VersionMismatch, Self, ...) and a reason.
 * After the handshake every frame on the link is a mesh envelope (lib/mesh/envelope.ts).
 */
export const PEER_PROTOCOL_VERSION = 1;
export const MESH_PATH = '/_mesh';
export const MESH_SUBPROTOCOL = 'chatmesh.v1';

/** The value of `df` in a hello or welcome from a node that speaks the dialer-first order. */
export const DIALER_FIRST = 1;

/**
 * The value of `desk` in a hello or welcome from a node that knows the support-desk frames
 * (new store writes, typing envelopes). Always sent; a peer without it is of the previous
 * version and is never sent those (it would count them invalid, and cut the link).
 */
export const DESK_FEATURE = 1;

/** The value of `batch` in a hello or welcome from a node that takes batches (lib/links/frame-batch.ts). */
export const BATCH_FEATURE = 1;

export interface HelloFrame {
  t: 'hello';
  v: number;
  id: string;
  inc: string;
  port: number;
  nonce: string;
  /** DIALER_FIRST from a dialer that proves first; absent from one of the previous version. */
  df?: number;
  /** DESK_FEATURE from a node that knows the support-desk frames. */
  desk?: number;
  /** BATCH_FEATURE from a node that takes batches. */
  batch?: number;
}
export interface WelcomeFrame {
  t: 'welcome';
  v: number;
  id: string;
  inc: string;
  nonce: string;
  /** DIALER_FIRST when answering a hello with `df`: then no proof. */
  df?: number;
  /** DESK_FEATURE from a node that knows the support-desk frames. */
  desk?: number;
  /** BATCH_FEATURE from a node that takes batches. */
  batch?: number;
  /** The previous order only: the acceptor's proof, sent before the dialer's. */
  proof?: string;
}
export interface AuthFrame {
  t: 'auth';
  proof: string;
}
export interface ReadyFrame {
  t: 'ready';
  /** Dialer-first order: the acceptor's proof, sent once the dialer proved itself. */
  proof?: string;
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
      if (!str('id') || !ID_PATTERN.test(v.id as string) || !str('inc') || !str('nonce')) return null;
      // The previous order always carries a proof (empty without a secret); dialer-first never needs one.
      if ((v.df !== DIALER_FIRST || v.proof !== undefined) && !str('proof')) return null;
      if (typeof v.v !== 'number') return null;
      return v as unknown as T;
    case 'auth':
      return str('proof') ? (v as unknown as T) : null;
    default:
      return v.proof === undefined || str('proof') ? (v as unknown as T) : null;
  }
}
