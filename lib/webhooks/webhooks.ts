/**
 * Webhooks: every new message, status change and assignment change is POSTed to
 * WEBHOOK_URL once cluster-wide, by the instance where its write was born (the replicator's
 * `born` event: never for a write that came from a peer, so each instance announces only
 * its own). See webhook-events.ts for the bodies, webhook-delivery.ts for the retries.
 */
import type { WebhookOptions } from '../config-env.js';
import type { StoreWrite } from '../core/store-write.js';
import type { Logger } from '../log.js';
import type { Replicator } from '../replication/replicator.js';
import { WebhookDelivery, type WebhookCounters } from './webhook-delivery.js';
import { webhookEventOf } from './webhook-events.js';

export class Webhooks {
  private readonly delivery: WebhookDelivery;

  constructor(
    options: WebhookOptions,
    private readonly replicator: Replicator,
    log: Logger,
  ) {
    this.delivery = new WebhookDelivery(options, log);
    replicator.on('born', this.onBorn);
    log.info('webhooks on', { url: options.url, signed: options.secret !== undefined });
  }

  get counters(): WebhookCounters {
    return this.delivery.counters;
  }

  /** Events held now (ready, being sent, or waiting for a retry). */
  get queued(): number {
    return this.delivery.queued;
  }

  close(): void {
    this.replicator.off('born', this.onBorn);
    this.delivery.close();
  }

  private readonly onBorn = (write: StoreWrite): void => {
    const event = webhookEventOf(write, Date.now());
    if (event) this.delivery.enqueue(event.id, JSON.stringify(event));
  };
}
