/**
 * Webhooks on real processes, against an HTTP receiver this test runs on 127.0.0.1: a
 * message is POSTed once cluster-wide, by the instance where it was born, signed as
 * documented; a receiver answering 500 twice then 200 gets it on the third try; a receiver
 * that never answers does not delay chat delivery; a bad WEBHOOK_URL or WEBHOOK_SECRET
 * stops start-up with a message naming the variable. No sleeps: every wait polls with a
 * deadline or waits for a frame or a request.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Instance, ROOT, SERVER, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { api, metric } from '../helpers/rest.js';
import { poll } from '../helpers/wait.js';

const SECRET = 'a-webhook-secret-of-32-characters';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver: records every request and answers with the next status of `answers` (then 200), or never with 'hang'. */
class Receiver {
  readonly requests: Received[] = [];
  private readonly server: http.Server;

  constructor(private readonly answers: Array<number | 'hang'> = []) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
        const answer = this.answers.shift() ?? 200;
        if (answer !== 'hang') res.writeHead(answer).end();
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  events(): Array<Record<string, any>> {
    return this.requests.map((r) => JSON.parse(r.body));
  }

  close(): void {
    this.server.closeAllConnections();
    this.server.close();
  }
}

describe('webhooks', function () {
  this.timeout(20_000);
  const clients = new ClientPool();
  const receivers: Receiver[] = [];
  const receiver = async (answers: Array<number | 'hang'> = []) => {
    const r = new Receiver(answers);
    receivers.push(r);
    return { r, url: await r.listen() };
  };

  afterEach(async () => {
    await clients.closeAll();
    await stopAll();
    for (const r of receivers.splice(0)) r.close();
  });

  it('posts a message once cluster-wide, from the instance it was born on, signed', async () => {
    const { r, url } = await receiver();
    const [a, b] = await fullMesh(2, { WEBHOOK_URL: url, WEBHOOK_SECRET: SECRET });
    const room = (await api(a, 'POST', '/api/conversations')).body.id as string;
    const alice = await clients.connect(a);
    const bob = await clients.connect(b);
    await alice.join(room, 'alice');
    await bob.join(room, 'bob');
    const echo = await alice.say(room, 'hello from A');
    await bob.waitFor((f) => f.type === 'message' && f.id === echo.id);
    const posted = await api(b, 'POST', `/api/conversations/${room}/messages`, { sender: 'agent', content: 'hello from B' });
    expect(posted.status, JSON.stringify(posted.body)).to.equal(201);

    await poll(() => r.requests.length >= 2, { what: 'two webhook requests' });
    await poll(async () => (await metric(a, 'chatmesh_webhook_delivered_total')) === 1 && (await metric(b, 'chatmesh_webhook_delivered_total')) === 1, { what: 'one delivery counted on each instance' });
    expect(r.requests).to.have.length(2);
    const [first, second] = r.events();
    expect(first).to.deep.include({ id: echo.id, event: 'message.created', conversation: room });
    expect(first.message).to.deep.equal({ id: echo.id, sender: 'alice', content: 'hello from A', timestamp: echo.ts });
    expect(first.at).to.be.a('number');
    expect(second).to.deep.include({ id: posted.body.id, event: 'message.created', conversation: room });

    for (const { headers, body } of r.requests) {
      expect(headers['content-type']).to.equal('application/json');
      const timestamp = String(headers['x-chatmesh-timestamp']);
      expect(Math.abs(Date.now() / 1000 - Number(timestamp))).to.be.below(60);
      const expected = 'sha256=' + createHmac('sha256', SECRET).update(`${timestamp}.${body}`).digest('hex');
      expect(headers['x-chatmesh-signature']).to.equal(expected);
    }
    expect(await metric(a, 'chatmesh_webhook_failed_attempts_total')).to.equal(0);
  });

  it('retries a receiver that answers 500 twice, and delivers on the third try', async () => {
    const { r, url } = await receiver([500, 500, 200]);
    const a = await Instance.start({ env: { WEBHOOK_URL: url } });
    const room = (await api(a, 'POST', '/api/conversations')).body.id as string;
    const posted = await api(a, 'POST', `/api/conversations/${room}/messages`, { sender: 'customer', content: 'third time lucky' });
    expect(posted.status, JSON.stringify(posted.body)).to.equal(201);
    await poll(async () => (await metric(a, 'chatmesh_webhook_delivered_total')) === 1, { timeoutMs: 10_000, what: 'the delivery after two 500s' });
    expect(r.requests).to.have.length(3);
    expect(new Set(r.events().map((e) => e.id))).to.deep.equal(new Set([posted.body.id]));
    expect(r.requests.map((q) => q.body)).to.satisfy((bodies: string[]) => bodies.every((b) => b === bodies[0]));
    expect(r.requests[0].headers['x-chatmesh-signature'], 'no secret, no signature').to.equal(undefined);
    expect(await metric(a, 'chatmesh_webhook_failed_attempts_total')).to.equal(2);
    expect(await metric(a, 'chatmesh_webhook_abandoned_total')).to.equal(0);
  });

  it('gives up at once on a 4xx', async () => {
    const { r, url } = await receiver([400]);
    const a = await Instance.start({ env: { WEBHOOK_URL: url } });
    const room = (await api(a, 'POST', '/api/conversations')).body.id as string;
    expect((await api(a, 'POST', `/api/conversations/${room}/messages`, { sender: 'customer', content: 'refused' })).status).to.equal(201);
    await poll(async () => (await metric(a, 'chatmesh_webhook_abandoned_total')) === 1, { what: 'the event given up' });
    expect(r.requests).to.have.length(1);
    expect(await metric(a, 'chatmesh_webhook_delivered_total')).to.equal(0);
  });

  it('does not delay chat delivery when the receiver never answers', async () => {
    const hangs = Array.from({ length: 20 }, () => 'hang' as const);
    const { r, url } = await receiver(hangs);
    const a = await Instance.start({ env: { WEBHOOK_URL: url } });
    const alice = await clients.connect(a);
    const bob = await clients.connect(a);
    await alice.join('stuck', 'alice');
    await bob.join('stuck', 'bob');
    await alice.say('stuck', 'first');
    await poll(() => r.requests.length >= 1, { what: 'the first webhook request, left unanswered' });
    const started = Date.now();
    for (let i = 0; i < 10; i++) alice.send({ type: 'message', room: 'stuck', text: `m${i}` });
    await bob.waitFor((f) => f.type === 'message' && f.text === 'm9', 3000);
    expect(Date.now() - started, 'ten messages delivered well within one webhook timeout').to.be.below(2000);
    expect(bob.messages('stuck').map((f) => f.text)).to.deep.equal(['first', ...Array.from({ length: 10 }, (_, i) => `m${i}`)]);
    expect(await metric(a, 'chatmesh_webhook_delivered_total')).to.equal(0);
  });

  it('refuses to start with a bad WEBHOOK_URL or WEBHOOK_SECRET, naming the variable', () => {
    for (const [env, variable] of [
      [{ WEBHOOK_URL: 'ftp://127.0.0.1/hooks' }, 'WEBHOOK_URL'],
      [{ WEBHOOK_URL: 'not a url' }, 'WEBHOOK_URL'],
      [{ WEBHOOK_URL: 'http://127.0.0.1:9/hooks', WEBHOOK_SECRET: 'short' }, 'WEBHOOK_SECRET'],
      [{ WEBHOOK_SECRET: SECRET }, 'WEBHOOK_SECRET'],
    ] as const) {
      const run = spawnSync(process.execPath, [SERVER], { cwd: ROOT, env: { PATH: process.env.PATH, DISCOVERY: 'off', PORT: '0', ...env }, encoding: 'utf8', timeout: 10_000 });
      expect(run.status, JSON.stringify(env)).to.equal(1);
      expect(run.stderr).to.include(`bad configuration: ${variable}:`);
    }
  });
});
