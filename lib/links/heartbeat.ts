/**
 * What a heartbeat ping carries: the sender's clock (epoch ms), and since the mesh view its
 * load. The payload is text, `<ms>` or `<ms> <connections> <rooms>`; the peer's WebSocket
 * answers with a pong that echoes it, so the first number also gives the round trip.
 * Backward compatible both ways: nodes of the previous version never read a ping (ws answers
 * it by itself) and send `<ms>` alone, which reads as "load not reported".
 */

/** Clients and rooms on a node, as it reports them in its heartbeats. */
export interface NodeLoad {
  connections: number;
  rooms: number;
}

export interface Heartbeat {
  /** The sender's clock when it sent the ping, epoch ms. */
  sentAt: number;
  load: NodeLoad | null;
}

/** A ping payload is at most 125 bytes (RFC 6455): three bounded numbers fit easily. */
const PATTERN = /^(\d{1,15})(?: (\d{1,9}) (\d{1,9}))?$/;

export function encodeHeartbeat(sentAt: number, load: NodeLoad | null): string {
  return load ? `${sentAt} ${load.connections} ${load.rooms}` : String(sentAt);
}

/** Null for anything else (a peer's junk is ignored, never trusted). */
export function decodeHeartbeat(data: Buffer): Heartbeat | null {
  const m = PATTERN.exec(data.toString('latin1'));
  if (!m) return null;
  const load = m[2] === undefined ? null : { connections: Number(m[2]), rooms: Number(m[3]) };
  return { sentAt: Number(m[1]), load };
}
