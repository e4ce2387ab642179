/**
 * Sends not yet acknowledged. Each carries a clientId and stays here until its echo arrives
 * (or the server refuses it), across reconnects: re-sent with the same clientId, the server
 * stores it at most once and answers with the original echo.
 */
import type { ChatMessage } from './frames.js';

export interface PendingSend {
  readonly clientId: string;
  readonly room: string;
  readonly text: string;
  /** The socket it was last written to (null: not written since the last connect). */
  sentOn: object | null;
  resolve(message: ChatMessage): void;
  reject(error: Error): void;
}

export class Outbox {
  private readonly pending: PendingSend[] = [];

  add(entry: PendingSend): void {
    this.pending.push(entry);
  }

  get size(): number {
    return this.pending.length;
  }

  /** The room's sends not yet written on `socket`, in the order they were made. */
  unsent(room: string, socket: object): PendingSend[] {
    return this.pending.filter((p) => p.room === room && p.sentOn !== socket);
  }

  byClientId(clientId: string): PendingSend | undefined {
    return this.pending.find((p) => p.clientId === clientId);
  }

  /**
   * A message of ours that carries no clientId (a server without clientId support, or a
   * history item): the oldest written send of the room with the same text.
   */
  byText(room: string, text: string): PendingSend | undefined {
    return this.pending.find((p) => p.room === room && p.text === text && p.sentOn !== null);
  }

  /** Takes the send out and settles it. */
  settle(entry: PendingSend, outcome: { message: ChatMessage } | { error: Error }): void {
    const i = this.pending.indexOf(entry);
    if (i === -1) return;
    this.pending.splice(i, 1);
    if ('message' in outcome) entry.resolve(outcome.message);
    else entry.reject(outcome.error);
  }

  /** Rejects every send of the room (it was left), or every send (the client closed). */
  rejectAll(error: Error, room?: string): void {
    for (const entry of [...this.pending]) if (room === undefined || entry.room === room) this.settle(entry, { error });
  }
}
