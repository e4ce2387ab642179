/**
 * The webhook events still to deliver, kept in DATA_DIR (WEBHOOK_URL with DATA_DIR), so a
 * crash or restart does not lose them: each event is added when queued and removed once
 * delivered, given up or dropped; at start-up what is left is queued again.
 *
 * Its own LMDB file (webhooks.mdb), not a named database inside store.mdb: a named
 * database's name is a key of the main database, which the store reads whole (load, its
 * digests) and by room, where a room named like it would take it for one of its records.
 *
 * Writes are not awaited by anyone: they join lmdb's commit of the current event-loop turn;
 * a failed one is counted and logged, never thrown. Delivery is at least once: an event
 * delivered just before a crash, whose removal was not yet committed, is sent again.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import type { Logger } from '../log.js';
import { lmdbFileProblem } from './file-check.js';

export const WEBHOOK_JOURNAL_FILE = 'webhooks.mdb';

/** One event still to deliver: its id, its JSON body, and when it was born (epoch ms: the retry deadline counts from it). */
export interface JournalEntry {
  id: string;
  body: string;
  bornAt: number;
}

/** Keyed by (bornAt, id): read back oldest first. */
type EntryKey = [number, string];

export class WebhookJournal {
  readonly counters = { writes: 0, failures: 0 };
  private closed = false;
  private failing = false;

  private constructor(
    private readonly db: RootDatabase<string, EntryKey>,
    private readonly log: Logger,
  ) {}

  /** Opens (or creates) the journal in `dir`; a damaged file stops start-up with its name, as the store's does. */
  static open(dir: string, log: Logger): WebhookJournal {
    const file = join(dir, WEBHOOK_JOURNAL_FILE);
    const problem = existsSync(file) && statSync(file).size > 0 ? lmdbFileProblem(file) : null;
    if (problem) throw new Error(`the webhook journal ${file} is damaged: ${problem}; remove it to start without the events it held`);
    return new WebhookJournal(open<string, EntryKey>({ path: file, noSubdir: true, overlappingSync: false, compression: false, encoding: 'string' }), log);
  }

  /** Every event on disk, oldest first. */
  pending(): JournalEntry[] {
    return [...this.db.getRange()].map(({ key, value }) => ({ bornAt: key[0], id: key[1], body: value }));
  }

  add(id: string, bornAt: number, body: string): void {
    if (this.closed) return;
    this.counters.writes++;
    this.settle(this.db.put([bornAt, id], body));
  }

  remove(id: string, bornAt: number): void {
    if (this.closed) return;
    this.counters.writes++;
    this.settle(this.db.remove([bornAt, id]));
  }

  /** Waits for the writes under way to be committed, then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }

  private settle(write: Promise<boolean>): void {
    write.then(
      () => {
        if (this.failing) this.log.info('the webhook journal takes writes again');
        this.failing = false;
      },
      (err: Error & { commitError?: Promise<unknown> }) => {
        err.commitError?.catch(() => {}); // lmdb rejects this one too: handled, never a crash
        this.counters.failures++;
        if (!this.failing) this.log.warn('the webhook journal cannot write (disk full?): events queued meanwhile are not kept across a restart', { error: err.message });
        this.failing = true;
      },
    );
  }
}
