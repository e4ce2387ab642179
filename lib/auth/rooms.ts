/**
 * Which rooms an identity may join. The token's `rooms` list, when present, is the whole answer
 * (for every role); without it the role decides.
 */
import type { Identity } from './identity.js';

/**
 * Whether `pattern` allows `room`. A `*` is a wildcard only as the last character (`team:*`
 * matches `team:x`, `*` matches every room); anywhere else it is literal, so room names that
 * contain `*` cannot widen a grant by accident.
 */
export function roomMatches(pattern: string, room: string): boolean {
  if (pattern.endsWith('*')) return room.startsWith(pattern.slice(0, -1));
  return pattern === room;
}

/**
 * @param isOwnConversation the room is the customer's own support conversation (the caller knows
 *   how conversation rooms are named; this module does not).
 */
export function mayJoin(identity: Pick<Identity, 'role' | 'rooms'>, room: string, isOwnConversation: boolean): boolean {
  if (identity.rooms !== null) return identity.rooms.some((pattern) => roomMatches(pattern, room));
  if (identity.role === 'agent' || identity.role === 'service') return true;
  return isOwnConversation;
}
