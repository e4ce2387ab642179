/**
 * Frame size limits of a peer connection. Before the handshake completes, a peer is a
 * stranger: its frames are held to PRE_AUTH_MAX_PAYLOAD (a hello is a few hundred bytes), and
 * only an authenticated link gets MAX_PEER_PAYLOAD_BYTES.
 */
import type { WebSocket } from 'ws';

/** Largest frame before the handshake completes; bigger closes the connection with 1009. */
export const PRE_AUTH_MAX_PAYLOAD = 4096;

/** The limit to open a connection with: the pre-auth one, or the link's own if it is smaller. */
export function preAuthMaxPayload(linkMaxPayload: number): number {
  return Math.min(PRE_AUTH_MAX_PAYLOAD, linkMaxPayload);
}

/**
 * Sets the largest frame `ws` accepts from now on. ws (8.x) takes maxPayload only when the
 * socket is made and has no public way to change it later, so this sets the limit its
 * Receiver checks each frame against (`ws._receiver._maxPayload`, read in haveLength and
 * decompress). It is the one place chatmesh touches ws internals; it throws rather than
 * silently doing nothing if they change, and test/unit/payload-limit.test.ts fails then.
 */
export function setMaxPayload(ws: WebSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (!receiver || typeof receiver._maxPayload !== 'number') {
    throw new Error('ws internals changed: cannot raise maxPayload after the handshake (see lib/links/payload-limit.ts)');
  }
  receiver._maxPayload = bytes;
}
