/**
 * What the room's WebSocket members get when a desk write (core/desk-writes.ts) is applied:
 * not the write, but a client frame built from the store as it now is (the winner's view):
 *   field  → {"type":"conversation","room","id","status","snoozedUntil"?,"assignee","metadata","updatedAt"}
 *   read   → {"type":"read","room","user","upTo"}
 *   edited → {"type":"edited","room","id","text","editedAt"}
 * And the snooze timers: a snooze ends without a write (core/inbox.ts), so each instance
 * tells its own members at `until`, with a `conversation` frame.
 */
import type { ConversationStore, StoreWrite } from '../core/conversation-store.js';
import type { FieldWrite } from '../core/desk-writes.js';
import { conversationState } from '../core/inbox.js';

/** The frame members get for a write: a message or delete is its own frame; null: nothing to show. */
export function liveFrame(store: ConversationStore, write: StoreWrite, payload: Buffer | null, now: number): Buffer | null {
  switch (write.type) {
    case 'created':
      return null;
    case 'message': {
      const entry = store.conversation(write.room)?.byId.get(write.id);
      // A message deleted before it arrived shows nothing; one edited before it arrived, its current text.
      if (entry === undefined || entry.deleted) return null;
      if (entry.content !== write.text) return Buffer.from(JSON.stringify({ ...write, text: entry.content }));
      return payload ?? Buffer.from(JSON.stringify(write));
    }
    case 'deleted':
      return payload ?? Buffer.from(JSON.stringify(write));
    case 'field':
      return conversationFrame(store, write.room, now);
    case 'read':
      return Buffer.from(JSON.stringify({ type: 'read', room: write.room, user: write.user, upTo: write.upTo }));
    case 'edited': {
      const shown = store.conversation(write.room)?.byId.get(write.msg);
      if (shown === undefined || shown.deleted || shown.editedAt === undefined) return null; // not held here, or deleted
      return Buffer.from(JSON.stringify({ type: 'edited', room: write.room, id: write.msg, text: shown.content, editedAt: shown.editedAt }));
    }
  }
}

/** The `conversation` frame of a room as it reads at `now`; null if not held. */
export function conversationFrame(store: ConversationStore, room: string, now: number): Buffer | null {
  const conv = store.conversation(room);
  return conv ? Buffer.from(JSON.stringify({ type: 'conversation', room, ...conversationState(conv, now) })) : null;
}

/** setTimeout's longest delay; a longer snooze waits in steps. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** One timer per snoozed room on this instance: at `until`, `tell(room)` (if that snooze still holds). */
export class SnoozeTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly store: ConversationStore,
    private readonly tell: (room: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Arms (or disarms) the timer of a room after its status register changed. */
  noteStatus(write: FieldWrite): void {
    const held = this.store.conversation(write.room)?.fields.get('status');
    if (held === undefined || held.id !== write.id) return; // lost to a later write: that one decided
    this.disarm(write.room);
    if (held.v === 'snoozed' && held.until! > this.now()) this.arm(write.room, held.id, held.until!);
  }

  /** Arms every snooze the store holds (at start-up, after the disk was loaded). */
  armAll(): void {
    for (const conv of this.store.liveConversations()) {
      const status = conv.fields.get('status');
      if (status !== undefined) this.noteStatus(status);
    }
  }

  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private arm(room: string, writeId: string, until: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(room);
      if (this.store.conversation(room)?.fields.get('status')?.id !== writeId) return;
      if (until > this.now()) return this.arm(room, writeId, until); // a long snooze, in steps
      this.tell(room);
    }, Math.min(Math.max(0, until - this.now()), MAX_DELAY_MS));
    timer.unref();
    this.timers.set(room, timer);
  }

  private disarm(room: string): void {
    const timer = this.timers.get(room);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(room);
  }
}
