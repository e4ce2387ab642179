/**
 * Links advertisements: every node tells its peers which nodes it is linked to, whenever
 * that set changes (envelope `links`, payload a JSON array of ids). The router skips
 * forwarding an event to peers its origin is linked to, and presence uses the union to know
 * which nodes are reachable.
 */
import { encodeEnvelopeHeader, ID_PATTERN } from './envelope.js';
import { parsePeerJson } from './peer-json.js';

/** The most ids an advertisement may hold: far more links than a mesh has, far fewer than a flood of invented ones. */
export const MAX_ADVERT_IDS = 1024;

export class Adverts {
  /** What each linked peer said it is linked to. */
  private readonly byPeer = new Map<string, Set<string>>();

  /** The frame that advertises these links. */
  static frame(linked: Iterable<string>): Buffer {
    return Buffer.concat([encodeEnvelopeHeader({ t: 'links' }), Buffer.from(JSON.stringify([...linked]))]);
  }

  /** Decodes an advertisement's payload; null if it is not an array of at most MAX_ADVERT_IDS node ids. */
  static decode(payload: Buffer): string[] | null {
    const ids = parsePeerJson(payload);
    if (!Array.isArray(ids) || ids.length > MAX_ADVERT_IDS) return null;
    return ids.every((id) => typeof id === 'string' && ID_PATTERN.test(id)) ? (ids as string[]) : null;
  }

  set(peer: string, ids: string[]): void {
    this.byPeer.set(peer, new Set(ids));
  }

  delete(peer: string): void {
    this.byPeer.delete(peer);
  }

  /** The nodes a peer said it is linked to (undefined: it has not said). */
  of(peer: string): ReadonlySet<string> | undefined {
    return this.byPeer.get(peer);
  }

  /** Linked peers and the nodes they say they are linked to, without `self`. */
  reachable(linked: ReadonlyMap<string, unknown>, self: string): Set<string> {
    const out = new Set<string>(linked.keys());
    for (const [peer, links] of this.byPeer) if (linked.has(peer)) for (const id of links) out.add(id);
    out.delete(self);
    return out;
  }
}
