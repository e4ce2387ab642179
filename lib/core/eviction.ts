/**
 * Which conversation gives up its place when the store is at MAX_CONVERSATIONS.
 *
 * Only the least recently active *empty* one (no message, no delete): what someone wrote is
 * never thrown away to make room. With no empty one, the store is full. A conversation that
 * arrives with content (a message, a delete) always takes the victim's place; an empty one
 * only if it is more recently active (else `ignored`): so nodes holding the same writes keep
 * the same set, all conversations with content and the most recent empty ones, whatever the
 * order they came in.
 */
import type { Conversation } from './conversation.js';

export type EvictionChoice = { victim: Conversation } | { refuse: 'ignored' | 'store_full' };

export function chooseEviction(conversations: Iterable<Conversation>, wall: number, room: string, withContent: boolean): EvictionChoice {
  let victim: Conversation | null = null;
  for (const conv of conversations) {
    if (conv.messages.length > 0 || conv.tombstones.size > 0) continue;
    if (!victim || conv.lastActivity < victim.lastActivity || (conv.lastActivity === victim.lastActivity && conv.id < victim.id)) victim = conv;
  }
  if (!victim) return { refuse: 'store_full' };
  if (!withContent && (wall < victim.lastActivity || (wall === victim.lastActivity && room < victim.id))) return { refuse: 'ignored' };
  return { victim };
}
