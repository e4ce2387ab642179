/**
 * The ChatClient, plus following the inbox (agents; servers with the inbox feed):
 * `inbox()` sends `{"type":"inbox"}`, and again after every reconnect; `inbox` events bring
 * the answer (`subscribed`), then each changed conversation's item (as GET /api/conversations
 * gives it) or `removed`. A refusal is an `error` event: unknown_type (a server without the
 * feed: poll the inbox instead; the client stops asking), forbidden (a customer's token),
 * too_many_subscribers.
 */
import { ChatClient } from './chat-client.js';
import { ChatError } from './chat-error.js';
import type { ServerFrame } from './frames.js';

export class InboxClient extends ChatClient {
  private followsInbox = false;
  /** An inbox frame was written on this socket and not answered yet. */
  private inboxAsked = false;

  /** Follows the inbox from now on (after reconnects too); `false` stops. False when not connected now (it is sent at the next connect). */
  inbox(follow = true): boolean {
    this.followsInbox = follow;
    return this.writeInbox(follow);
  }

  protected override onOpen(): void {
    super.onOpen();
    if (this.followsInbox) this.writeInbox(true);
  }

  protected override onFrame(frame: ServerFrame): void {
    if (frame.type === 'inbox' && frame.subscribed !== undefined) {
      this.inboxAsked = false;
      this.inflight.answer('inbox', () => true);
    }
    // The only frame this client sends that a server may not know: a server without the feed.
    // Its answer here, so the base client does not blame the oldest request (a send still
    // waiting for its echo) for it.
    if (frame.type === 'error' && frame.code === 'unknown_type' && this.inboxAsked) {
      this.followsInbox = this.inboxAsked = false;
      this.inflight.answer('inbox', () => true);
      this.emit('error', new ChatError(frame.code, frame.message));
      return;
    }
    super.onFrame(frame);
  }

  private writeInbox(follow: boolean): boolean {
    if (!this.connection.send(follow ? { type: 'inbox' } : { type: 'inbox', subscribe: false })) return false;
    this.inflight.push({ kind: 'inbox' });
    this.inboxAsked = true;
    return true;
  }
}
