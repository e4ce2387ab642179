/**
 * What a store write born on this instance means to a webhook receiver: a new message, a
 * status change or an assignment change (other writes are not announced). The body carries
 * `id` (the write's id: a retried or, rarely, repeated delivery has the same one, so
 * receivers dedupe on it) and `at` (when the change was made here, epoch ms).
 */
import type { StoreWrite } from '../core/store-write.js';

/**
 * A support-desk field write (`{type:'field', f, v, ...}`, issue 13: status, assignee), read
 * through this narrow shape so this file does not depend on the rest of its type.
 */
interface FieldWrite {
  type: 'field';
  room: string;
  id: string;
  f: string;
  v: unknown;
  until?: number;
  by?: string;
}

export type WebhookEventName = 'message.created' | 'conversation.status_changed' | 'conversation.assigned';

export interface WebhookEvent {
  id: string;
  event: WebhookEventName;
  at: number;
  conversation: string;
  [field: string]: unknown;
}

/** The event a write announces, or null for writes webhooks do not announce. */
export function webhookEventOf(write: StoreWrite | FieldWrite, at: number): WebhookEvent | null {
  const w = write as StoreWrite | FieldWrite;
  switch (w.type) {
    case 'message': {
      const author = w.by === undefined ? {} : { author: w.by };
      return { id: w.id, event: 'message.created', at, conversation: w.room, message: { id: w.id, sender: w.user, content: w.text, timestamp: w.ts, ...author } };
    }
    case 'field': {
      const by = w.by === undefined ? {} : { by: w.by };
      if (w.f === 'status') {
        const until = w.until === undefined ? {} : { snoozedUntil: w.until };
        return { id: w.id, event: 'conversation.status_changed', at, conversation: w.room, status: w.v, ...until, ...by };
      }
      if (w.f === 'assignee') return { id: w.id, event: 'conversation.assigned', at, conversation: w.room, assignee: w.v ?? null, ...by };
      return null;
    }
    default:
      return null;
  }
}
