/**
 * Which link to a peer node survives when a second one completes its handshake while the
 * first is still up. Both ends decide alone, from what both know, and agree.
 */
import { CloseCode } from '../errors.js';
import type { Link, LinkIdentity } from '../links/link.js';

export type TieBreak =
  /** Another incarnation claims a linked, live node's id (from anywhere): refuse the newcomer. */
  | 'refuse-new'
  /** The peer restarted (a new incarnation) and its old link is silent: the new link replaces it. */
  | 'replace-old'
  /** Both sides dialled at once and the new link was dialled by the smaller id: it stays. */
  | 'retire-old'
  /** Both sides dialled at once and the old link was dialled by the smaller id (or the same): it stays. */
  | 'retire-new';

/** Why a newcomer claiming the id of a live link is refused (from another address, or the same one). */
export function idInUse(existingAddress: string, address: string): string {
  return existingAddress === address ? 'node id already linked, and that link is alive' : 'node id already linked from another address';
}

/**
 * A new incarnation never replaces a live link (heard from within the peer timeout), from
 * whatever address: the first live claimant keeps the id while it is alive. A genuine
 * restart still relinks at once, as the old process's socket closed when it died (kill -9
 * included), and a restart that comes before the old link is seen to go is refused only until
 * then (it redials with backoff).
 */
export function tieBreak(
  existing: Pick<LinkIdentity, 'incarnation' | 'dialerId'> & { lastSeen: number },
  incoming: Pick<LinkIdentity, 'incarnation' | 'dialerId'>,
  peerTimeoutMs: number,
  now: number = Date.now(),
): TieBreak {
  if (existing.incarnation !== incoming.incarnation) return now - existing.lastSeen < peerTimeoutMs ? 'refuse-new' : 'replace-old';
  // Both keep the link dialled by the smaller node id, so they agree without another round
  // trip and exactly one link remains.
  return incoming.dialerId < existing.dialerId ? 'retire-old' : 'retire-new';
}

/** How long a link that lost the duplicate tie stays open for reading. */
export const DUPLICATE_GRACE_MS = 2000;

/**
 * Links that lost the duplicate tie. They are no longer sent on, but are read for a while:
 * the peer may still be sending on one until it learns of the winner itself, and closing at
 * once would drop those frames. Dedupe absorbs any copy.
 */
export class Retired {
  private readonly links = new Set<Link>();

  add(link: Link): void {
    this.links.add(link);
    const timer = setTimeout(() => link.close(CloseCode.DuplicateLink, 'duplicate link'), DUPLICATE_GRACE_MS);
    link.once('close', () => {
      clearTimeout(timer);
      this.links.delete(link);
    });
  }

  closeAll(code: number, reason: string): void {
    for (const link of this.links) link.close(code, reason);
  }
}
