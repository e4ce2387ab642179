/**
 * The webhook journal (DATA_DIR/webhooks.mdb) and the delivery queue over it, without an
 * instance: entries read back oldest first across a reopen; an event is removed once
 * delivered (2xx), given up (4xx, or past retryForMs at start-up) or dropped from a full
 * queue; what was still queued at close stays for the next start. A receiver on 127.0.0.1.
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { resolveWebhookOptions } from '../../lib/config-env.js';
import { createLogger } from '../../lib/log.js';
import { WebhookJournal } from '../../lib/storage/webhook-journal.js';
import { WebhookDelivery } from '../../lib/webhooks/webhook-delivery.js';
import { poll } from '../helpers/wait.js';

const quiet = createLogger({ nodeId: 'test', level: 'silent', stream: new Writable({ write: (_c, _e, done) => done() }) });

describe('webhook journal', () => {
  let dir = '';
  let server: http.Server;
  let url = '';
  /** The receiver's answer per event body (200 when not listed). */
  const answers = new Map<string, number>();
  const seen: string[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'chatmesh-journal-'));
    seen.length = 0;
    answers.clear();
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        seen.push(body);
        res.writeHead(answers.get(body) ?? 200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  afterEach(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads its entries back oldest first after a reopen, without those removed', async () => {
    let journal = WebhookJournal.open(dir, quiet);
    journal.add('b', 20, '"b"');
    journal.add('a', 10, '"a"');
    journal.add('c', 30, '"c"');
    journal.remove('b', 20);
    await journal.close();
    journal = WebhookJournal.open(dir, quiet);
    try {
      expect(journal.pending()).to.deep.equal([
        { id: 'a', bornAt: 10, body: '"a"' },
        { id: 'c', bornAt: 30, body: '"c"' },
      ]);
    } finally {
      await journal.close();
    }
  });

  it('removes what is delivered, given up or dropped; restore gives up what is past retryForMs and queues the rest', async () => {
    const now = Date.now();
    let journal = WebhookJournal.open(dir, quiet);
    journal.add('old', now - 20 * 60_000, '"old"'); // past the default retryForMs (10 min)
    journal.add('kept', now - 1000, '"kept"');
    await journal.close();

    journal = WebhookJournal.open(dir, quiet);
    answers.set('"refused"', 400);
    const delivery = new WebhookDelivery(resolveWebhookOptions({ url, maxQueue: 3, concurrency: 1 }), quiet, Date.now, Math.random, journal);
    try {
      expect(delivery.restore(journal.pending())).to.equal(1);
      expect(delivery.counters.abandoned).to.equal(1);
      delivery.enqueue('refused', '"refused"');
      await poll(() => delivery.counters.delivered === 1 && delivery.counters.abandoned === 2, { what: '"kept" delivered, "refused" given up' });
      expect(seen).to.deep.equal(['"kept"', '"refused"']);
      // Queued in one turn (no request yet): over maxQueue the oldest, q0, is dropped.
      for (const id of ['q0', 'q1', 'q2', 'q3']) delivery.enqueue(id, `"${id}"`);
      expect(delivery.counters.dropped).to.equal(1);
    } finally {
      delivery.close();
      await journal.close();
    }
    journal = WebhookJournal.open(dir, quiet);
    try {
      // Closed before q1..q3 went out: they stay for the next start; the rest was removed.
      expect(journal.pending().map((e) => e.id).sort()).to.deep.equal(['q1', 'q2', 'q3']);
    } finally {
      await journal.close();
    }
  });
});
