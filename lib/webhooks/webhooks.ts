/**
 * Webhooks: every new message, status change and assignment change is POSTed to
 * WEBHOOK_URL once cluster-wide, by the instance where its write was born (the replicator's
 * `born` event: never for a write that came from a peer, so each instance announces only
 * its own). See webhook-events.ts for the bodies, webhook-delivery.ts for the retries.
 * With DATA_DIR a journal keeps the queue on disk: events left there by a crash or a restart
 * are queued again at start-up, before any new one.
 */
import type { WebhookOptions } from '../config-env.js';
import type { StoreWrite } from '../core/store-write.js';
import type { Logger } from '../log.js';
import type { Replicator } from '../replication/replicator.js';
import { WebhookDelivery, type EventJournal, type WebhookCounters } from './webhook-delivery.js';
import { webhookEventOf } from './webhook-events.js';

/** The journal (lib/storage/webhook-journal.ts) as Webhooks uses it: also what it holds at start-up, and a close that waits for its writes. */
type KeptEvents = EventJournal & {
  pending(): Array<{ id: string; body: string; bornAt: number }>;
  close(): Promise<void>;
  readonly counters: { failures: number };
};

export class Webhooks {
  private readonly delivery: WebhookDelivery;
  private closing: Promise<void> | null = null;

  constructor(
    options: WebhookOptions,
    private readonly replicator: Replicator,
    log: Logger,
    private readonly journal: KeptEvents | null = null,
  ) {
    this.delivery = new WebhookDelivery(options, log, Date.now, Math.random, journal);
    const restored = journal ? this.delivery.restore(journal.pending()) : 0;
    replicator.on('born', this.onBorn);
    log.info('webhooks on', { url: options.url, signed: options.secret !== undefined, durable: journal !== null, ...(journal ? { restored } : {}) });
  }

  get counters(): WebhookCounters {
    return this.delivery.counters;
  }

  /** Writes to the journal that failed (DATA_DIR): 0 without one. */
  get journalFailures(): number {
    return this.journal?.counters.failures ?? 0;
  }

  /** Events held now (ready, being sent, or waiting for a retry). */
  get queued(): number {
    return this.delivery.queued;
  }

  /** Stops delivering at once; the promise settles once the journal's writes are on disk (it never rejects). */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.replicator.off('born', this.onBorn);
    this.delivery.close();
    this.closing = this.journal ? this.journal.close().catch(() => {}) : Promise.resolve();
    return this.closing;
  }

  private readonly onBorn = (write: StoreWrite): void => {
    const event = webhookEventOf(write, Date.now());
    if (event) this.delivery.enqueue(event.id, JSON.stringify(event));
  };
}
