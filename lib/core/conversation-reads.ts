/**
 * Read-only views of one conversation for the store's callers: its history, its recent
 * messages, the message a client id was sent with. Deleted messages are left out.
 */
import type { StoreWrite } from './store-write.js';
import { clientKey, messageWrite, publicMessage, type Conversation, type StoredMessage } from './conversation.js';

/** The history in order, or null without a conversation. */
export function historyOf(conv: Conversation | null): StoredMessage[] | null {
  return conv ? conv.messages.filter((m) => !m.deleted).map(publicMessage) : null;
}

/** The last `n` messages, oldest first (empty without a conversation). */
export function recentOf(conv: Conversation | null, n: number): StoredMessage[] {
  if (!conv) return [];
  const out: StoredMessage[] = [];
  for (let i = conv.messages.length - 1; i >= 0 && out.length < n; i--) {
    if (!conv.messages[i].deleted) out.push(publicMessage(conv.messages[i]));
  }
  return out.reverse();
}

/** The message held for a send by `sender` (token sub, else name) with client id `cid`, as a write; null if none. */
export function sentWithClientId(conv: Conversation | null, sender: string, cid: string): StoreWrite | null {
  const id = conv?.cids.get(clientKey(sender, cid));
  const entry = id === undefined ? undefined : conv!.byId.get(id);
  return entry ? messageWrite(conv!.id, entry) : null;
}
