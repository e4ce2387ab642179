/**
 * chatmesh/client against real instances (imported by the package's own name, as an
 * application would): a stream of sends through a kill -9 of the sender's instance, the move
 * to the next URL, join refusals as promise rejections, a paged resume, token refresh.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatClient, ChatError, type ChatMessage, type ConnectionState } from 'chatmesh/client';
import { AUDIENCE, ISSUER, TEST_SECRET, mint } from '../helpers/auth.js';
import { Instance, ROOT, freePort, stopAll } from '../helpers/instance.js';
import { api } from '../helpers/rest.js';
import { readmeExample } from '../helpers/readme-example.js';
import { poll, withTimeout } from '../helpers/wait.js';

const clients: ChatClient[] = [];
function newClient(options: ConstructorParameters<typeof ChatClient>[0]): ChatClient {
  const client = new ChatClient(options);
  clients.push(client);
  return client;
}

/** Two instances linked by static peers. */
async function pair(extra: Record<string, string> = {}): Promise<[Instance, Instance]> {
  const [portA, portB] = [await freePort(), await freePort()];
  const [a, b] = await Promise.all([
    Instance.start({ port: portA, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${portB}`, LOG_LEVEL: 'info', ...extra } }),
    Instance.start({ port: portB, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${portA}`, LOG_LEVEL: 'info', ...extra } }),
  ]);
  await a.waitForPeersUp([b.nodeId], 10_000);
  await b.waitForPeersUp([a.nodeId], 10_000);
  return [a, b];
}

async function rejection(promise: Promise<unknown>): Promise<ChatError> {
  try {
    await promise;
  } catch (err) {
    return err as ChatError;
  }
  throw new Error('expected a rejection');
}

describe('chatmesh/client on real instances', function () {
  this.timeout(30_000);

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await stopAll();
  });

  it('streams sends through a kill -9 of its instance: it moves to the next URL and every message arrives once, in order', async () => {
    const [a, b] = await pair();
    const receiver = newClient({ urls: [b.url], user: 'bob' });
    const received: ChatMessage[] = [];
    receiver.on('message', (m) => received.push(m));
    await receiver.join('stream');

    const sender = newClient({ urls: [a.url, b.url], user: 'alice', backoff: { initialMs: 200, maxMs: 1000 } });
    const states: ConnectionState[] = [];
    sender.on('state', (s) => states.push(s));
    const own: ChatMessage[] = [];
    sender.on('message', (m) => own.push(m));
    await sender.join('stream');

    const N = 120;
    const texts = Array.from({ length: N }, (_, i) => `m${i}`);
    let echoed = 0;
    const sends: Promise<ChatMessage>[] = [];
    // A stream: one send every 4 ms, whatever happens to the connection meanwhile.
    const producer = (async () => {
      for (const text of texts) {
        sends.push(sender.send('stream', text).then((m) => (echoed++, m)));
        await new Promise((resolve) => setTimeout(resolve, 4));
      }
    })();
    await poll(() => echoed >= 30, { timeoutMs: 10_000, what: '30 echoes' });
    await a.kill('SIGKILL');
    const outstanding = N - echoed;
    await producer;
    const echoes = await Promise.all(sends);

    expect(outstanding, 'sends still unacknowledged at the kill').to.be.greaterThan(0);
    expect(echoes.map((m) => m.text)).to.deep.equal(texts);
    expect(new Set(echoes.map((m) => m.id)).size).to.equal(N);
    // It moved to the next URL.
    const opened = states.filter((s) => s.state === 'open').map((s) => (s as { url: string }).url);
    expect(opened[0]).to.equal(a.url);
    expect(opened.at(-1)).to.equal(b.url);

    await poll(() => received.length >= N, { timeoutMs: 10_000, what: `${N} messages at the receiver` });
    expect(received.map((m) => m.text)).to.deep.equal(texts);
    expect(own.map((m) => m.text)).to.deep.equal(texts);
    // Stored once each: what B holds is the same list (no second copy of a re-sent message).
    const history = await api(b, 'GET', '/api/conversations/stream');
    expect((history.body.messages as { content: string }[]).map((m) => m.content)).to.deep.equal(texts);
    expect(sender.pendingSends).to.equal(0);
  });

  it('rejects join with the error frame\'s code, and send to a room not joined', async () => {
    const a = await Instance.start({ env: { MAX_NAME_LENGTH: '16' } });
    const client = newClient({ urls: [a.url], user: 'ann' });
    const tooLong = await rejection(client.join('a-room-name-longer-than-sixteen'));
    expect(tooLong).to.be.instanceOf(Error);
    expect(tooLong.code).to.equal('invalid_field');
    expect(tooLong.room).to.equal('a-room-name-longer-than-sixteen');
    expect((await rejection(client.send('elsewhere', 'hi'))).code).to.equal('not_joined');
    // The connection stays: a good join and a send after the refusals.
    await client.join('lobby');
    expect((await client.send('lobby', 'still here')).text).to.equal('still here');
    // Presence keeps the member list.
    const other = newClient({ urls: [a.url], user: 'bob' });
    await other.join('lobby');
    await poll(() => client.membersOf('lobby').includes('bob'), { what: 'bob in the member list' });
  });

  it('rejects a join the token does not allow with forbidden', async () => {
    const a = await Instance.start({ env: { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE } });
    const token = await mint({ sub: 'cat', role: 'customer', rooms: ['cat-*'] });
    const client = newClient({ urls: [a.url], token });
    expect((await rejection(client.join('somebody-else'))).code).to.equal('forbidden');
    const joined = await client.join('cat-help');
    expect(joined.user).to.equal('cat');
  });

  it('follows a paged resume to the end, with the live messages after it, each once', async () => {
    const a = await Instance.start({ env: { MAX_REPLY_BYTES: '1500' } });
    const writer = newClient({ urls: [a.url], user: 'wes' });
    await writer.join('paged');
    const first = await writer.send('paged', 'first');
    const texts = Array.from({ length: 60 }, (_, i) => `backlog ${i}`);
    await Promise.all(texts.map((t) => writer.send('paged', t)));

    const reader = newClient({ urls: [a.url], user: 'rae' });
    const got: string[] = [];
    reader.on('message', (m) => got.push(m.text));
    const joining = reader.join('paged', { since: first.id });
    // Live messages while the pages come: they follow the backlog.
    const live = writer.send('paged', 'live 1').then(() => writer.send('paged', 'live 2'));
    const info = await joining;
    expect(info.gap).to.equal(false);
    await live;
    await poll(() => got.length >= 62, { timeoutMs: 5000, what: 'backlog and live messages' });
    expect(got).to.deep.equal([...texts, 'live 1', 'live 2']);
  });

  it('with AUTH=jwt refreshes its token before it expires and stays connected past the first one', async () => {
    const a = await Instance.start({ env: { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_CLOCK_TOLERANCE_SEC: '0' } });
    let minted = 0;
    const client = newClient({ urls: [a.url], token: () => (minted++, mint({ sub: 'ann', role: 'agent', ttl: 3 })) });
    const refreshed: number[] = [];
    client.on('refreshed', (e) => refreshed.push(e.exp));
    const closes: ConnectionState[] = [];
    client.on('state', (s) => s.state !== 'open' && s.state !== 'connecting' && closes.push(s));
    const joined = await client.join('desk');
    expect(joined.user).to.equal('ann');
    const firstExpiry = Date.now() + 3000;
    await poll(() => refreshed.length >= 2 && Date.now() > firstExpiry + 500, { timeoutMs: 10_000, what: 'two refreshes and the first token\'s expiry' });
    expect(closes, JSON.stringify(closes)).to.deep.equal([]);
    expect((await client.send('desk', 'after the first token')).text).to.equal('after the first token');
    expect(minted).to.be.at.least(3);
  });

  it('with AUTH=jwt and a token function, a missed refresh means 4401 and a reconnect with a new token, in the same rooms', async () => {
    const a = await Instance.start({ env: { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_CLOCK_TOLERANCE_SEC: '0' } });
    let calls = 0;
    // The first token lives 2 s; the refresh before its expiry fails; the reconnect gets a long one.
    const token = async () => {
      calls++;
      if (calls === 2) throw new Error('token service down');
      return mint({ sub: 'ann', role: 'agent', ttl: calls === 1 ? 2 : 300 });
    };
    const client = newClient({ urls: [a.url], token });
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    let opens = 0;
    client.on('state', (s) => s.state === 'open' && opens++);
    await client.join('desk');
    await poll(() => opens >= 2 && client.connected, { timeoutMs: 8000, what: 'a second connection after 4401' });
    expect(errors).to.deep.equal(['token_source']);
    const peer = newClient({ urls: [a.url], token: await mint({ sub: 'bob', role: 'agent' }) });
    const seen: string[] = [];
    peer.on('message', (m) => seen.push(m.text));
    await peer.join('desk');
    await client.send('desk', 'back with a new token');
    await poll(() => seen.includes('back with a new token'), { what: 'the message at the other member' });
  });

  it('with a fixed token, 4401 ends the client: the state says closed with the code, later calls are rejected (closed)', async () => {
    const a = await Instance.start({ env: { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_CLOCK_TOLERANCE_SEC: '0' } });
    const client = newClient({ urls: [a.url], token: await mint({ sub: 'ann', role: 'agent', ttl: 2 }) });
    const states: ConnectionState[] = [];
    client.on('state', (s) => states.push(s));
    await client.join('desk');
    await poll(() => states.some((s) => s.state === 'closed'), { timeoutMs: 8000, what: 'the close at expiry' });
    expect(states.at(-1)).to.deep.include({ state: 'closed', code: 4401 });
    expect((await rejection(client.send('desk', 'too late'))).code).to.equal('closed');
    expect((await rejection(client.join('other'))).code).to.equal('closed');
  });
});

describe('chatmesh/client README example (Node)', function () {
  this.timeout(30_000);
  const file = join(ROOT, 'dist', `readme-client-example-${process.pid}.mjs`);

  afterEach(async () => {
    rmSync(file, { force: true });
    await stopAll();
  });

  it('runs as written (inside the package, so chatmesh/client resolves as in a project that depends on it)', async () => {
    const [a, b] = await pair();
    writeFileSync(file, readmeExample('js', a, b));
    const run = spawn(process.execPath, [file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    run.stdout.on('data', (d: Buffer) => (output += d));
    run.stderr.on('data', (d: Buffer) => (output += d));
    const [code] = (await withTimeout(once(run, 'exit'), 15_000, 'the example to end')) as [number | null];
    expect(code, output).to.equal(0);
    expect(output).to.match(/^in lobby: ann$/m);
    expect(output).to.match(/^ann: hello from Node$/m);
    expect(output).to.match(/^stored as \S+$/m);
  });
});
