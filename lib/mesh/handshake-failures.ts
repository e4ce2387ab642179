/**
 * What a failed peer handshake does to the peer table: a refusal is shown in /health and
 * retried slowly (never a tight loop against a peer that refuses us), a transport failure
 * is redialled with backoff, an address this node found to be itself is dropped, and failures
 * that change nothing (the peer is linked another way) are only logged at debug.
 */
import { CloseCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { HandshakeError } from '../links/handshake.js';
import { setState, type PeerEntry } from './peer-status.js';

/** The parts of the peer table a failure acts on. */
export interface FailureTarget {
  readonly log: Logger;
  readonly rejectedRetryMs: number;
  entry(address: string): PeerEntry;
  forget(address: string): void;
  dialSoon(entry: PeerEntry, delayMs: number): void;
  nextDelay(address: string): number;
}

export function onHandshakeFailed(table: FailureTarget, err: HandshakeError, host: string | null, entry: PeerEntry | null): void {
  const refused = err.closeCode === CloseCode.Rejected || err.closeCode === CloseCode.VersionMismatch;
  if (entry === null) {
    // Inbound. Refusals are shown in /health and logged; other failures are only noise.
    if (!refused || host === null) {
      table.log.debug('inbound peer handshake failed', { from: host, code: err.closeCode, reason: err.message });
      return;
    }
    if (err.claimed?.port === undefined) {
      table.log.warn('peer rejected', { direction: 'in', from: host, by: err.byPeer ? 'peer' : 'us', code: err.closeCode, reason: err.message });
      return;
    }
    const address = `ws://${host}:${err.claimed.port}`;
    const e = table.entry(address);
    if (e.link) return;
    table.log.warn('peer rejected', { direction: 'in', address, peer: err.claimed.id, by: err.byPeer ? 'peer' : 'us', code: err.closeCode, reason: err.message });
    setState(e, 'rejected', err.message);
    e.id = err.claimed.id ?? e.id;
    return;
  }
  if (err.closeCode === CloseCode.Self && !err.byPeer) {
    // Only this node's own finding (its dial reached itself) drops a target: a peer's 4004 is its word only.
    table.log.info('ignoring a peer address that is this node itself', { address: entry.address });
    table.forget(entry.address);
    return;
  }
  if (err.closeCode === CloseCode.DuplicateLink) {
    // The peer dialled us at the same moment and its link won; it is linked.
    return;
  }
  if (entry.link) {
    // The peer's own dial reached us first while ours was still trying: it is linked, and
    // our failed attempt must not mark it down.
    table.log.debug('dial failed, but the peer is linked already', { address: entry.address, reason: err.message });
    return;
  }
  if (refused || err.closeCode === CloseCode.Self) {
    // Never a tight loop against a peer that refuses us: log it, show it, retry slowly. A peer
    // that says it is this node (4004) is shown the same way, but retried with the usual
    // backoff: what answered there may be gone (another node with our NODE_ID, or a fake), and
    // the real peer must not wait PEER_REJECTED_RETRY_MS for it.
    const retryInMs = refused ? table.rejectedRetryMs : table.nextDelay(entry.address);
    table.log.warn('peer rejected', {
      direction: 'out',
      address: entry.address,
      peer: err.claimed?.id,
      by: err.byPeer ? 'peer' : 'us',
      code: err.closeCode,
      reason: err.message,
      retryInMs,
    });
    entry.id = err.claimed?.id ?? entry.id;
    setState(entry, 'rejected', err.message);
    table.dialSoon(entry, retryInMs);
    return;
  }
  if (entry.state !== 'rejected') setState(entry, entry.id === null ? 'connecting' : 'down', err.message);
  const delay = table.nextDelay(entry.address);
  table.log.debug('dial failed', { address: entry.address, reason: err.message, retryInMs: delay });
  table.dialSoon(entry, delay);
}
