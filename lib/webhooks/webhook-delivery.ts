/**
 * Delivers webhook bodies to WEBHOOK_URL: a bounded queue in memory, a few requests at a
 * time, each with a deadline; network errors, timeouts, 5xx and 429 are retried with
 * exponential backoff and jitter until `retryForMs` after the event was born; any other
 * answer but 2xx (4xx, a redirect) is final. Nothing here waits on chat delivery or makes it
 * wait: an event is queued and the caller goes on. When the queue is full the oldest event
 * is dropped (counted): a receiver that is down for long loses the oldest, not the newest.
 * With a journal (DATA_DIR) each queued event is also kept on disk until it is delivered,
 * given up or dropped, and restore() queues what a crash or restart left there again.
 */
import type { WebhookOptions } from '../config-env.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { signatureHeaders } from './webhook-signature.js';

/** Counters read by /metrics. */
export interface WebhookCounters {
  /** Events the receiver answered with 2xx. */
  delivered: number;
  /** Requests that failed (network error, timeout, or an answer other than 2xx), retried or not. */
  failedAttempts: number;
  /** Events dropped from a full queue (the oldest). */
  dropped: number;
  /** Events given up: a final answer (4xx), or still failing `retryForMs` after they were born. */
  abandoned: number;
}

/**
 * Where queued events are kept across restarts (lib/storage/webhook-journal.ts with DATA_DIR).
 * Its writes are not waited for: they must never hold up chat delivery.
 */
export interface EventJournal {
  add(id: string, bornAt: number, body: string): void;
  remove(id: string, bornAt: number): void;
}

interface Job {
  id: string;
  body: string;
  bornAt: number;
  attempts: number;
  timer: NodeJS.Timeout | null;
}

/** `retryAfterMs`: the receiver's Retry-After (seconds), when it gave one with a 429 or 5xx. */
type Outcome = { kind: 'delivered' } | { kind: 'retry' | 'final'; why: string; retryAfterMs?: number };

/** At most one warning per this long: a receiver that is down must not flood the log. */
const WARN_EVERY_MS = 10_000;

export class WebhookDelivery {
  readonly counters: WebhookCounters = { delivered: 0, failedAttempts: 0, dropped: 0, abandoned: 0 };
  /** Events ready to be sent, oldest first. */
  private readonly ready: Job[] = [];
  /** Events waiting for their next try (insertion order: oldest first). */
  private readonly waiting = new Set<Job>();
  private readonly inFlight = new Set<AbortController>();
  private lastWarnAt = -Infinity;
  private closed = false;
  private pumpScheduled = false;

  constructor(
    private readonly options: WebhookOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
    private readonly journal: EventJournal | null = null,
  ) {}

  /** Events held: ready, being sent, or waiting for a retry. */
  get queued(): number {
    return this.ready.length + this.waiting.size + this.inFlight.size;
  }

  /** Queues one event (its JSON body); returns at once. */
  enqueue(id: string, body: string): void {
    if (this.closed) return;
    const bornAt = this.now();
    this.journal?.add(id, bornAt, body);
    this.queue({ id, body, bornAt, attempts: 0, timer: null });
  }

  /**
   * Queues again the events a journal kept (oldest first; over maxQueue the oldest are
   * dropped); those already past retryForMs are given up without a request. Returns how many
   * were queued.
   */
  restore(events: Array<{ id: string; body: string; bornAt: number }>): number {
    let queued = 0;
    for (const { id, body, bornAt } of events) {
      if (this.closed) break;
      if (this.now() - bornAt > this.options.retryForMs) {
        this.giveUp({ id, body, bornAt, attempts: 0, timer: null }, `older than ${this.options.retryForMs} ms at start-up`);
        continue;
      }
      this.queue({ id, body, bornAt, attempts: 0, timer: null });
      queued++;
    }
    return queued;
  }

  private queue(job: Job): void {
    if (this.ready.length + this.waiting.size >= this.options.maxQueue) this.dropOldest();
    this.ready.push(job);
    // Requests start after the current turn: the write that made this event is delivered and
    // replicated first, without paying for a request being set up.
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Stops: requests under way are aborted, retries forgotten (a journal keeps them for the next start). */
  close(): void {
    this.closed = true;
    for (const controller of this.inFlight) controller.abort();
    for (const job of this.waiting) if (job.timer) clearTimeout(job.timer);
    this.waiting.clear();
    this.ready.length = 0;
  }

  private dropOldest(): void {
    let job = this.ready.shift();
    if (!job) {
      job = this.waiting.values().next().value as Job;
      this.waiting.delete(job);
      if (job.timer) clearTimeout(job.timer);
    }
    this.counters.dropped++;
    this.journal?.remove(job.id, job.bornAt);
    this.warn('webhook queue full: dropping the oldest event', { event: job.id, maxQueue: this.options.maxQueue });
  }

  private pump(): void {
    while (!this.closed && this.inFlight.size < this.options.concurrency && this.ready.length > 0) {
      void this.attempt(this.ready.shift()!);
    }
  }

  private async attempt(job: Job): Promise<void> {
    job.attempts++;
    const controller = new AbortController();
    this.inFlight.add(controller);
    const outcome = await this.post(job, controller);
    this.inFlight.delete(controller);
    if (this.closed) return;
    if (outcome.kind === 'delivered') {
      this.counters.delivered++;
      this.journal?.remove(job.id, job.bornAt);
    } else {
      this.counters.failedAttempts++;
      this.retryOrAbandon(job, outcome);
    }
    this.pump();
  }

  private retryOrAbandon(job: Job, outcome: Extract<Outcome, { why: string }>): void {
    const o = this.options;
    // Exponential backoff, with half of each delay random ("equal jitter"): retries of many
    // events that failed together spread out instead of hitting a recovering receiver at once.
    const ceiling = Math.min(o.retryMaxMs, o.retryBaseMs * 2 ** Math.min(job.attempts - 1, 30));
    // A receiver's Retry-After is honoured, within retryMaxMs.
    const delay = Math.max(ceiling / 2 + this.random() * (ceiling / 2), Math.min(outcome.retryAfterMs ?? 0, o.retryMaxMs));
    if (outcome.kind === 'final' || this.now() + delay - job.bornAt > o.retryForMs) return this.giveUp(job, outcome.why);
    this.log.debug('webhook attempt failed: retrying', { event: job.id, attempts: job.attempts, why: outcome.why, retryInMs: Math.round(delay) });
    job.timer = setTimeout(() => {
      job.timer = null;
      this.waiting.delete(job);
      this.ready.push(job);
      this.pump();
    }, delay);
    job.timer.unref();
    this.waiting.add(job);
  }

  private giveUp(job: Job, why: string): void {
    this.counters.abandoned++;
    this.journal?.remove(job.id, job.bornAt);
    this.warn('webhook event given up', { event: job.id, attempts: job.attempts, why });
  }

  private async post(job: Job, controller: AbortController): Promise<Outcome> {
    const timer = setTimeout(() => controller.abort(), this.options.timeoutMs);
    try {
      const response = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': `chatmesh/${VERSION}`, ...signatureHeaders(this.options.secret, job.body, this.now()) },
        body: job.body,
        signal: controller.signal,
        redirect: 'manual',
      });
      await response.body?.cancel().catch(() => {}); // the answer's body is not read
      if (response.status >= 200 && response.status < 300) return { kind: 'delivered' };
      const why = `HTTP ${response.status}`;
      if (response.status < 500 && response.status !== 429) return { kind: 'final', why };
      const retryAfter = Number(response.headers.get('retry-after'));
      return Number.isFinite(retryAfter) && retryAfter > 0 ? { kind: 'retry', why, retryAfterMs: retryAfter * 1000 } : { kind: 'retry', why };
    } catch (err) {
      const why = controller.signal.aborted ? `no answer within ${this.options.timeoutMs} ms` : ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
      return { kind: 'retry', why };
    } finally {
      clearTimeout(timer);
    }
  }

  private warn(msg: string, fields: Record<string, unknown>): void {
    const now = this.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) return this.log.debug(msg, fields);
    this.lastWarnAt = now;
    this.log.warn(msg, { ...fields, url: this.options.url, note: `more within ${WARN_EVERY_MS / 1000} s are logged at debug` });
  }
}
