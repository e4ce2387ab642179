/**
 * A customer's new message on a resolved or snoozed conversation reopens it: the instance
 * that took the message (REST post or WebSocket send, never a write from a peer) commits
 * `status: open` right after it, so the reopening is itself one replicated write.
 */
import { effectiveStatus } from '../core/inbox.js';
import type { Replicator } from './replicator.js';

/** Call after a customer's message to `room` was stored here. */
export function reopenOnCustomerMessage(replicator: Replicator, room: string, now: number = Date.now()): void {
  const conv = replicator.store.conversation(room);
  if (conv === null) return;
  const { status } = effectiveStatus(conv, now);
  if (status !== 'resolved' && status !== 'snoozed') return;
  replicator.commit({ type: 'field', room, id: replicator.store.nextId(), f: 'status', v: 'open' }, false);
}
