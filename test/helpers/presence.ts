/**
 * Presence frames as clients get them: one event (`{"type":"presence","event","room","user"}`),
 * or, when a room had several in one event-loop turn on the instance, one frame for all of
 * them (`{"type":"presence","room","joined":[…],"left":[…]}`, lib/gateway/presence-batcher.ts).
 * Which of the two a client gets depends on timing (events from peers may land in one turn),
 * so a test that waits for a join or a leave accepts both.
 */
import type { Frame } from './client.js';

/** Whether `f` tells that `user` joined (or left) a room (`room`: that one only). */
export function tellsPresence(f: Frame, event: 'join' | 'leave', user: string, room?: string): boolean {
  if (f.type !== 'presence' || (room !== undefined && f.room !== room)) return false;
  if (f.event !== undefined) return f.event === event && f.user === user;
  const names = event === 'join' ? f.joined : f.left;
  return Array.isArray(names) && names.includes(user);
}
