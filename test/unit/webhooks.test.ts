/**
 * Webhooks without processes: the events of each kind of write (including the support-desk
 * field writes, by their documented shape), the signature, the options and their errors,
 * and the queue's bound (drop-oldest) against a receiver on 127.0.0.1 that never answers.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { ConfigError } from '../../lib/config.js';
import { resolveWebhookOptions, webhookOptionsFromEnv, WEBHOOK_DEFAULTS } from '../../lib/config-env.js';
import { createLogger } from '../../lib/log.js';
import type { StoreWrite } from '../../lib/core/store-write.js';
import { WebhookDelivery } from '../../lib/webhooks/webhook-delivery.js';
import { webhookEventOf } from '../../lib/webhooks/webhook-events.js';
import { signatureHeaders } from '../../lib/webhooks/webhook-signature.js';
import { poll } from '../helpers/wait.js';

const quiet = createLogger({ nodeId: 'test', level: 'silent', stream: new Writable({ write: (_c, _e, done) => done() }) });

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('webhook events', () => {
  it('maps a message, a status change and an assignment; ignores the rest', () => {
    const message: StoreWrite = { type: 'message', id: 'm1', room: 'r', user: 'alice', text: 'hi', ts: 5, by: 'sub-1' };
    expect(webhookEventOf(message, 9)).to.deep.equal({ id: 'm1', event: 'message.created', at: 9, conversation: 'r', message: { id: 'm1', sender: 'alice', content: 'hi', timestamp: 5, author: 'sub-1' } });
    const snoozed = { type: 'field', room: 'r', id: 'f1', f: 'status', v: 'snoozed', until: 1000, by: 'agent-7' } as const;
    expect(webhookEventOf(snoozed, 9)).to.deep.equal({ id: 'f1', event: 'conversation.status_changed', at: 9, conversation: 'r', status: 'snoozed', snoozedUntil: 1000, by: 'agent-7' });
    expect(webhookEventOf({ type: 'field', room: 'r', id: 'f2', f: 'assignee', v: null }, 9)).to.deep.equal({ id: 'f2', event: 'conversation.assigned', at: 9, conversation: 'r', assignee: null });
    expect(webhookEventOf({ type: 'field', room: 'r', id: 'f3', f: 'metadata', v: {} }, 9)).to.equal(null);
    expect(webhookEventOf({ type: 'created', room: 'r', id: 'c' }, 9)).to.equal(null);
    expect(webhookEventOf({ type: 'deleted', room: 'r', id: 'm1', ts: 5, at: 'd1' }, 9)).to.equal(null);
  });

  it('signs timestamp.body with HMAC-SHA256, and sends no signature without a secret', () => {
    const headers = signatureHeaders('0123456789abcdef', '{"a":1}', 1_795_456_105_643);
    expect(headers['x-chatmesh-timestamp']).to.equal('1795456105');
    expect(headers['x-chatmesh-signature']).to.equal('sha256=' + createHmac('sha256', '0123456789abcdef').update('1795456105.{"a":1}').digest('hex'));
    expect(signatureHeaders(undefined, '{}', 0)).to.deep.equal({ 'x-chatmesh-timestamp': '0' });
  });
});

describe('webhook options', () => {
  it('takes http and https URLs, with the defaults', () => {
    expect(resolveWebhookOptions({ url: 'https://hooks.example.com/x' })).to.deep.equal({ ...WEBHOOK_DEFAULTS, url: 'https://hooks.example.com/x', secret: undefined });
    expect(webhookOptionsFromEnv({ WEBHOOK_URL: ' http://127.0.0.1:8080/h ', WEBHOOK_SECRET: 'sixteen-chars-ok' })).to.include({ url: 'http://127.0.0.1:8080/h', secret: 'sixteen-chars-ok' });
    expect(webhookOptionsFromEnv({})).to.equal(undefined);
  });

  it('refuses other schemes, garbage, credentials, a short secret, a secret without a URL, naming the variable', () => {
    for (const url of ['ftp://x/y', 'ws://x/y', 'not a url', 'http://user:pw@x/y']) expect(configError(() => webhookOptionsFromEnv({ WEBHOOK_URL: url })).variable, url).to.equal('WEBHOOK_URL');
    expect(configError(() => webhookOptionsFromEnv({ WEBHOOK_URL: 'http://x/', WEBHOOK_SECRET: 'short' })).variable).to.equal('WEBHOOK_SECRET');
    expect(configError(() => webhookOptionsFromEnv({ WEBHOOK_SECRET: 'sixteen-chars-ok' })).variable).to.equal('WEBHOOK_SECRET');
    expect(configError(() => resolveWebhookOptions({ url: 'http://x/', maxQueue: 0 })).message).to.include('maxQueue');
  });
});

describe('webhook delivery', () => {
  let server: http.Server;
  let url: string;
  const bodies: string[] = [];
  beforeEach(async () => {
    bodies.length = 0;
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => bodies.push(body)); // never answers
      res.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterEach(() => {
    server.closeAllConnections();
    server.close();
  });

  it('keeps at most maxQueue events waiting, dropping the oldest', async () => {
    const delivery = new WebhookDelivery(resolveWebhookOptions({ url, maxQueue: 2, concurrency: 1 }), quiet);
    try {
      delivery.enqueue('e1', '"e1"');
      await poll(() => bodies.length === 1, { what: 'e1 in flight' });
      for (const id of ['e2', 'e3', 'e4']) delivery.enqueue(id, `"${id}"`);
      expect(delivery.counters.dropped).to.equal(1); // e2
      expect(delivery.queued).to.equal(3); // e1 in flight, e3 and e4 waiting
    } finally {
      delivery.close();
    }
  });

  it('counts a request without an answer within timeoutMs as a failed attempt, and retries it', async () => {
    const delivery = new WebhookDelivery(resolveWebhookOptions({ url, timeoutMs: 100, retryBaseMs: 50 }), quiet);
    try {
      delivery.enqueue('e1', '"e1"');
      await poll(() => bodies.length >= 2 && delivery.counters.failedAttempts >= 1, { what: 'a timeout, then a retry' });
      expect(bodies[1]).to.equal('"e1"');
      expect(delivery.counters.delivered).to.equal(0);
    } finally {
      delivery.close();
    }
  });
  it('waits as long as a 429 asks with Retry-After before trying again', async () => {
    const times: number[] = [];
    const limited = http.createServer((req, res) => {
      req.resume();
      times.push(Date.now());
      if (times.length === 1) res.writeHead(429, { 'retry-after': '1' }).end();
      else res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => limited.listen(0, '127.0.0.1', resolve));
    const delivery = new WebhookDelivery(resolveWebhookOptions({ url: `http://127.0.0.1:${(limited.address() as AddressInfo).port}/`, retryBaseMs: 10 }), quiet);
    try {
      delivery.enqueue('e1', '"e1"');
      await poll(() => delivery.counters.delivered === 1, { what: 'the delivery after the 429' });
      expect(times[1] - times[0]).to.be.at.least(950);
      expect(delivery.counters.failedAttempts).to.equal(1);
    } finally {
      delivery.close();
      limited.closeAllConnections();
      limited.close();
    }
  });
});
