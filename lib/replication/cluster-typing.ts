/**
 * Typing indicators across the mesh: transient room events, never stored. One from a local
 * member goes (at most one per user and room every TYPING_INTERVAL_MS) to the nodes that
 * have members in the room, by the presence table, and only to peers that announced `desk`
 * (Router.publishTyping); one from a peer is checked and handed to the local members.
 */
import { EventEmitter } from 'node:events';
import type { ChatmeshOptions } from '../config.js';
import type { PresenceTable } from '../core/presence-table.js';
import { isValidName } from '../core/store-write.js';
import { TypingLimiter } from '../core/typing-limiter.js';
import type { Mesh } from '../mesh/mesh.js';
import { parsePeerJson } from '../mesh/peer-json.js';

interface ClusterTypingEvents {
  /** A typing event from a peer for the local members of the room, as the peer encoded it. */
  deliver: [room: string, payload: Buffer];
}

/** Counters read by /metrics. */
export interface TypingCounters {
  /** Typing indicators of local members sent on (to local members and peers). */
  forwarded: number;
  /** Typing indicators of local members dropped: another of the same user and room went out less than TYPING_INTERVAL_MS ago. */
  dropped: number;
}

export class ClusterTyping extends EventEmitter<ClusterTypingEvents> {
  readonly counters: TypingCounters = { forwarded: 0, dropped: 0 };

  constructor(
    private readonly table: PresenceTable,
    private readonly mesh: Mesh,
    private readonly options: Pick<ChatmeshOptions, 'maxNameLength'>,
    private readonly limiter = new TypingLimiter(),
  ) {
    super();
    mesh.on('typing', this.onPeerTyping);
  }

  close(): void {
    this.mesh.off('typing', this.onPeerTyping);
  }

  /**
   * A local member of `room` is typing: sends it to the other nodes with members there and
   * returns the frame for the room's local members, or null when over the rate (dropped).
   */
  publish(room: string, user: string): Buffer | null {
    if (!this.limiter.take(user, room)) {
      this.counters.dropped++;
      return null;
    }
    this.counters.forwarded++;
    const payload = Buffer.from(JSON.stringify({ type: 'typing', room, user }));
    const nodes = this.table.nodesIn(room);
    const others = new Set([...nodes].filter((node) => node !== this.table.nodeId));
    if (others.size > 0) this.mesh.publishTyping(room, this.mesh.nextId(), payload, others);
    return payload;
  }

  /** A typing event from a peer: exactly `{"type":"typing","room","user"}` with the envelope's room. */
  private readonly onPeerTyping = (room: string, payload: Buffer, from: string): void => {
    const event = parsePeerJson(payload) as Record<string, unknown> | null;
    const max = this.options.maxNameLength;
    const valid =
      typeof event === 'object' && event !== null && !Array.isArray(event) && Object.keys(event).length === 3 &&
      event.type === 'typing' && event.room === room && isValidName(room, max) && isValidName(event.user, max);
    if (!valid) return this.mesh.reportInvalid(from, `typing event in ${JSON.stringify(room.slice(0, 64))}`);
    this.emit('deliver', room, payload);
  };
}
