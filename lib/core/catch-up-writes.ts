/**
 * What catch-up exchanges for one conversation: the ids a node holds (its "want") and the
 * writes a peer lacks (the "give"). Ids are prefixed by kind so they never collide.
 */
import { timestampId } from './hybrid-clock.js';
import type { StoreWrite } from './store-write.js';
import { messageWrite, type Conversation } from './conversation.js';
import { registerIds, registersMissingFrom } from './desk-registers.js';

/** Ids of every message, tombstone (prefixed `t:`) and register winner (`f:`, `r:`, `e:`) held for a conversation. */
export function idsOf(conv: Conversation): string[] {
  return [...conv.byId.keys(), ...[...conv.tombstones.keys()].map((id) => 't:' + id), ...registerIds(conv)];
}

/** The writes a peer holding `theirIds` (as from idsOf) lacks; `nodeId` stamps the deletes rebuilt from tombstones. */
export function writesMissingFrom(conv: Conversation, theirIds: ReadonlySet<string>, nodeId: string): StoreWrite[] {
  const room = conv.id;
  const out: StoreWrite[] = [{ type: 'created', room, id: conv.createdId, ...(conv.ownerFrom === conv.createdId && { owner: conv.owner! }) }];
  if (conv.owner !== undefined && conv.ownerFrom !== conv.createdId) out.push({ type: 'created', room, id: conv.ownerFrom!, owner: conv.owner });
  // Tombstones first: a deleted message's placeholder that arrives after its tombstone
  // takes its place as deleted, never as an empty visible message.
  for (const [id, t] of conv.tombstones) {
    if (!theirIds.has('t:' + id)) out.push({ type: 'deleted', room, id, ts: t.ts, at: timestampId({ wall: t.at, counter: 0 }, nodeId) });
  }
  // Deleted placeholders too: the peer needs their place in the window, not their text.
  for (const m of conv.messages) if (!theirIds.has(m.id)) out.push(messageWrite(room, m));
  // The registers' winners last: an edit finds its message there already.
  out.push(...registersMissingFrom(conv, theirIds));
  return out;
}
