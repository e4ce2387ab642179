/**
 * What a client that resumes with `since` may have missed: the answer to a `join` with
 * `since`, on whichever instance the client comes back to.
 *
 * Sorting after `since` is not enough: a message can sort before it and still reach the
 * client's old instance after the client left (a concurrent write from another instance a
 * few ms away, a backdated post, the other side of a healed partition). So the answer also
 * holds every message sorting before `since` that arrived here after it, or less than
 * RESUME_WINDOW_MS before it (the client dedupes those by id). Not only those of other
 * origins: a message lost on a link that dropped can reach the client's old instance after
 * a later one from the same origin that took another path. When `since`
 * is unknown, or itself arrived here late (by catch-up, or more than RESUME_WINDOW_MS after
 * it was written), this instance cannot tell what the client missed: `complete: false`,
 * and the client is told `gap`.
 */
import { compare, publicMessage, type Conversation, type StoredMessage } from './conversation.js';

/**
 * How far apart two instances may receive the same live message (flooding, a slow link up
 * to the peer timeout): a message arriving later than this after it was written is late,
 * and a resume replays the messages that arrived this close before `since`.
 */
export const RESUME_WINDOW_MS = 5000;

export type ResumeAnswer = { complete: true; messages: StoredMessage[] } | { complete: false };

export function resumeAfter(conv: Conversation | null, sinceId: string): ResumeAnswer {
  const since = conv?.byId.get(sinceId);
  if (!conv || !since || since.late) return { complete: false };
  const windowStart = since.arrivedAt - RESUME_WINDOW_MS;
  const out: StoredMessage[] = [];
  let after = false;
  for (const m of conv.messages) {
    if (m === since) {
      after = true;
      continue;
    }
    if (m.deleted) continue;
    if (after || m.seq > since.seq || m.arrivedAt >= windowStart) out.push(publicMessage(m));
  }
  return { complete: true, messages: out };
}

/** True for a message that reached this instance late (see RESUME_WINDOW_MS). */
export function isLate(path: 'live' | 'catch-up', arrivedAt: number, writtenAt: number): boolean {
  return path === 'catch-up' || arrivedAt - writtenAt > RESUME_WINDOW_MS;
}

/**
 * A resume from `since` older than memory's window, found in the history beyond it (DATA_DIR:
 * `older`, the messages before memory's `recent`, both in order, deleted ones left out): what
 * sorts after `since`, and, as far as the rule can apply without arrival times, what sorts
 * before it with a timestamp less than RESUME_WINDOW_MS before its own.
 */
export function resumeFromOlder(since: Pick<StoredMessage, 'id' | 'timestamp'>, older: StoredMessage[], recent: StoredMessage[]): ResumeAnswer {
  const from = since.timestamp - RESUME_WINDOW_MS;
  const missed = (m: StoredMessage) => m.id !== since.id && (m.timestamp >= from || compare(m, since) > 0);
  return { complete: true, messages: [...older.filter(missed), ...recent.filter(missed)] };
}
