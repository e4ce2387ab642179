/**
 * Conversations over REST on real processes and real sockets (127.0.0.1, static peers):
 * replication with read-your-writes on every node after a 201/204, causal order across
 * instances, every error answer, the WebSocket ↔ REST bridge, catch-up after a restart,
 * TTL expiry that catch-up never undoes, and a write storm against small bounds.
 * Never a sleep: every wait polls with a deadline or waits for a frame.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Instance, freePort, stopAll } from '../helpers/instance.js';
import { ClientPool } from '../helpers/mesh.js';
import { poll, withTimeout } from '../helpers/wait.js';

// ---------------------------------------------------------------------------------------------
// Tracking: everything a test opens is closed in afterEach, even when the test failed.

const clients = new ClientPool();
const connect = (instance: Instance) => clients.connect(instance);
const sockets: net.Socket[] = [];

afterEach(async () => {
  await clients.closeAll();
  for (const s of sockets.splice(0)) s.destroy();
  await stopAll();
  started.clear();
});

// ---------------------------------------------------------------------------------------------
// Helpers

const started = new Map<Instance, { port: number; env: Record<string, string> }>();

/** Starts one instance per port, each with every other port as a static peer; waits until every link is up. */
async function fullMesh(n: number, env: Record<string, string> = {}, envOf: (index: number) => Record<string, string> = () => ({})): Promise<Instance[]> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const instances = await Promise.all(
    ports.map(async (port, index) => {
      const full = { DISCOVERY: 'static', PEERS: ports.filter((p) => p !== port).map((p) => `ws://127.0.0.1:${p}`).join(','), LOG_LEVEL: 'info', ...env, ...envOf(index) };
      const instance = await Instance.start({ port, env: full });
      started.set(instance, { port, env: full });
      return instance;
    }),
  );
  await Promise.all(instances.map((i) => i.waitForPeersUp(instances.filter((o) => o !== i).map((o) => o.nodeId), 10_000)));
  return instances;
}

/** Environment that runs an instance's Date.now() `ms` off the real clock (a node with a wrong clock). */
function skewedClock(ms: number): Record<string, string> {
  return { NODE_OPTIONS: `--import=data:text/javascript,const%20real=Date.now;Date.now=()=>real()+(${ms});` };
}

/** Starts an instance again on the same port with the same environment. */
async function restart(instance: Instance): Promise<Instance> {
  const { port, env } = started.get(instance)!;
  const again = await Instance.start({ port, env });
  started.set(again, { port, env });
  return again;
}

interface Reply {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/**
 * A REST call on a fresh connection (no keep-alive pool: instances are killed and restarted on
 * the same port, and a pooled socket to a dead process would fail the next request).
 * A JSON body unless `body` is a string; a string body is sent as is, with only the given headers.
 */
async function call(instance: Instance, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const all: Record<string, string | number> = { ...headers };
  let payload: string | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    if (typeof body !== 'string' && all['content-type'] === undefined) all['content-type'] = 'application/json';
    all['content-length'] = Buffer.byteLength(payload);
  }
  const res = await send(instance, method, path, all, payload);
  let parsed: unknown = null;
  try {
    parsed = res.text === '' ? null : JSON.parse(res.text);
  } catch {
    parsed = { unparsable: res.text };
  }
  const h = new Headers();
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
  return { status: res.status, headers: h, body: parsed, text: res.text };
}

/** One request through node:http on its own connection (no URL normalisation; streams a big body). */
function send(instance: Instance, method: string, path: string, headers: Record<string, string | number>, body?: Buffer | string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: instance.port, method, path, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    }),
    10_000,
    `${method} ${path} on :${instance.port}`,
  );
}

interface Message {
  id: string;
  sender: string;
  content: string;
  timestamp: number;
}

async function createConversation(instance: Instance): Promise<string> {
  const res = await call(instance, 'POST', '/api/conversations');
  expect(res.status, res.text).to.equal(201);
  return res.body.id as string;
}

async function postMessage(instance: Instance, conversation: string, content: string, extra: Record<string, unknown> = {}): Promise<Message> {
  const res = await call(instance, 'POST', `/api/conversations/${conversation}/messages`, { sender: 'customer', content, ...extra });
  expect(res.status, `POST message on :${instance.port}: ${res.text}`).to.equal(201);
  return res.body as Message;
}

async function history(instance: Instance, conversation: string): Promise<Message[] | null> {
  const res = await call(instance, 'GET', `/api/conversations/${encodeURIComponent(conversation)}`);
  if (res.status === 404) return null;
  expect(res.status, res.text).to.equal(200);
  expect(res.body.id).to.equal(conversation);
  return res.body.messages as Message[];
}

async function storeStats(instance: Instance): Promise<{ conversations: number; messages: number; tombstones: number }> {
  const { status, body } = await instance.health();
  expect(status).to.equal(200);
  return (body as unknown as { store: { conversations: number; messages: number; tombstones: number } }).store;
}

/** An HTTP request written byte for byte on a raw socket; resolves with the status line, headers and body. */
function rawRequest(instance: Instance, head: string, body: Buffer | string = ''): Promise<{ status: number; headers: Record<string, string>; body: any }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = net.connect(instance.port, '127.0.0.1');
      sockets.push(socket);
      let data = Buffer.alloc(0);
      const tryParse = (): boolean => {
        const end = data.indexOf('\r\n\r\n');
        if (end === -1) return false;
        const lines = data.subarray(0, end).toString().split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (data.length < end + 4 + length) return false;
        const text = data.subarray(end + 4, end + 4 + length).toString();
        resolve({ status: Number(lines[0].split(' ')[1]), headers, body: text === '' ? null : JSON.parse(text) });
        socket.destroy();
        return true;
      };
      socket.on('data', (chunk) => {
        data = Buffer.concat([data, chunk]);
        tryParse();
      });
      socket.on('error', (err) => {
        if (!tryParse()) reject(err);
      });
      socket.on('close', () => {
        if (!tryParse()) reject(new Error(`connection closed before a full response: ${JSON.stringify(data.toString())}`));
      });
      socket.write(head);
      if (body.length > 0) socket.write(body, () => {});
    }),
    10_000,
    'a raw HTTP response',
  );
}

/** Like `call`, with the body and headers exactly as given (e.g. chunked, or no content-type). */
async function httpRequest(instance: Instance, method: string, path: string, headers: Record<string, string | number>, body?: Buffer | string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
  const res = await send(instance, method, path, headers, body);
  return { status: res.status, headers: res.headers, body: res.text === '' ? null : JSON.parse(res.text) };
}

function expectError(res: { status: number; body: any; headers?: unknown }, status: number, code: string, what: string): void {
  expect(res.status, `${what}: status (body ${JSON.stringify(res.body)})`).to.equal(status);
  expect(res.body, `${what}: body`).to.be.an('object');
  expect(res.body.error, `${what}: error object`).to.be.an('object');
  expect(res.body.error.code, `${what}: code`).to.equal(code);
  expect(res.body.error.message, `${what}: message`).to.be.a('string').and.not.equal('');
}

function rssBytes(instance: Instance): number {
  const status = readFileSync(`/proc/${instance.proc.pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!kb) throw new Error(`no VmRSS for pid ${instance.proc.pid}`);
  return Number(kb[1]) * 1024;
}

const byTimestampThenId = (a: Message, b: Message) => a.timestamp - b.timestamp || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

// ---------------------------------------------------------------------------------------------

describe('conversations: three instances, full mesh', () => {
  it('a write is readable on every other instance right after its 201/204', async () => {
    const [a, b, c] = await fullMesh(3);

    const created = await call(a, 'POST', '/api/conversations');
    expect(created.status).to.equal(201);
    expect(created.body).to.have.keys(['id']);
    const id = created.body.id as string;
    expect(id).to.be.a('string').and.match(/^[A-Za-z0-9_-]+$/);
    expect(created.headers.get('location')).to.equal(`/api/conversations/${id}`);
    expect(created.headers.get('content-type')).to.match(/^application\/json/);

    const m1 = await postMessage(a, id, 'first');
    const m2 = await postMessage(a, id, 'second', { sender: 'agent' });
    expect(m1).to.have.keys(['id', 'sender', 'content', 'timestamp']);
    expect(m1).to.include({ sender: 'customer', content: 'first' });
    expect(m2).to.include({ sender: 'agent', content: 'second' });
    expect(Number.isSafeInteger(m1.timestamp)).to.equal(true);
    // The default timestamp is the node's wall time, give or take.
    expect(Math.abs(m1.timestamp - Date.now())).to.be.below(60_000);

    // No sleep, no poll: the 201 came after every linked peer acknowledged.
    expect(await history(b, id)).to.deep.equal([m1, m2]);
    expect(await history(c, id)).to.deep.equal([m1, m2]);

    const del = await call(b, 'DELETE', `/api/conversations/${id}/messages/${m1.id}`);
    expect(del.status, del.text).to.equal(204);
    expect(del.text).to.equal('');
    expect(await history(a, id)).to.deep.equal([m2]);
    expect(await history(c, id)).to.deep.equal([m2]);
    expect(await history(b, id)).to.deep.equal([m2]);

    // A message with a client-given timestamp goes where its timestamp says, everywhere.
    const early = await postMessage(c, id, 'back-dated', { timestamp: m2.timestamp - 1000 });
    expect(early.timestamp).to.equal(m2.timestamp - 1000);
    for (const node of [a, b, c]) expect(await history(node, id), `on :${node.port}`).to.deep.equal([early, m2]);

    for (const node of [a, b, c]) expect(await storeStats(node), `store on :${node.port}`).to.deep.equal({ conversations: 1, messages: 2, tombstones: 1 });
  });

  it('a write answers after every linked peer acknowledged it, or after REPLICATION_ACK_TIMEOUT_MS', async () => {
    const [a, b, c] = await fullMesh(3, { REPLICATION_ACK_TIMEOUT_MS: '800' });
    const id = await createConversation(a);
    // Control: with every peer answering, a write is much quicker than the ack timeout.
    let t = Date.now();
    await postMessage(a, id, 'quick');
    expect(Date.now() - t, 'a write with every peer answering (ms)').to.be.below(700);

    // B stops answering but stays linked (the peer timeout is 4 s): A waits for it, then answers anyway.
    b.signal('SIGSTOP');
    t = Date.now();
    const late = await postMessage(a, id, 'waits for B');
    const postMs = Date.now() - t;
    expect(postMs, 'POST with a silent peer (ms)').to.be.at.least(750).and.below(3000);
    // C acknowledged it: it is there already.
    expect((await history(c, id))!.map((m) => m.content)).to.deep.equal(['quick', 'waits for B']);
    t = Date.now();
    expect((await call(a, 'DELETE', `/api/conversations/${id}/messages/${late.id}`)).status).to.equal(204);
    expect(Date.now() - t, 'DELETE with a silent peer (ms)').to.be.at.least(750).and.below(3000);
    t = Date.now();
    const other = await createConversation(a);
    expect(Date.now() - t, 'create with a silent peer (ms)').to.be.at.least(750).and.below(3000);
    expect(await history(c, id)).to.deep.equal(await history(a, id));
    expect(await history(c, other)).to.deep.equal([]);

    // B resumes and has everything.
    b.signal('SIGCONT');
    await poll(async () => JSON.stringify(await history(b, id)) === JSON.stringify(await history(a, id)), { timeoutMs: 5000, what: 'B to catch up after SIGCONT' });
    expect(await history(b, other)).to.deep.equal([]);
  });

  it('keeps causal order across instances with skewed clocks: m1 on one, then m2 on another, never swap (50 rounds)', async () => {
    // Node 1 runs 3 s slow, node 2 runs 2 s fast: wall clocks alone would swap m1 and m2.
    const nodes = await fullMesh(3, {}, (i) => (i === 1 ? skewedClock(-3000) : i === 2 ? skewedClock(2000) : {}));
    // Control: the skew is in effect (node 1 has observed nothing yet, so its clock is its own).
    const probe = await createConversation(nodes[1]);
    expect((await postMessage(nodes[1], probe, 'clock probe')).timestamp - Date.now(), 'skew of node 1 (ms)').to.be.below(-2000);
    const id = await createConversation(nodes[0]);
    const posted: Message[] = [];
    for (let round = 0; round < 50; round++) {
      const first = nodes[round % 3];
      const second = nodes[(round + 1) % 3];
      const reader = nodes[(round + 2) % 3];
      const m1 = await postMessage(first, id, `r${round}-1`);
      const m2 = await postMessage(second, id, `r${round}-2`);
      posted.push(m1, m2);
      const seen = (await history(reader, id))!;
      const i1 = seen.findIndex((m) => m.id === m1.id);
      const i2 = seen.findIndex((m) => m.id === m2.id);
      expect(i1, `round ${round}: m1 on :${reader.port}`).to.be.at.least(0);
      expect(i2, `round ${round}: m1 before m2 on :${reader.port}`).to.be.greaterThan(i1);
      expect(byTimestampThenId(m1, m2), `round ${round}: (timestamp, id) of m2 after m1`).to.be.below(0);
    }
    for (const node of nodes) expect((await history(node, id))!.map((m) => m.content), `on :${node.port}`).to.deep.equal(posted.map((m) => m.content));
  });
});

describe('conversations: errors', () => {
  it('answers every bad request with its status and code, never a 500, and stays up', async () => {
    const node = await Instance.start({ env: { LOG_LEVEL: 'info', MAX_MESSAGES_PER_CONVERSATION: '3' } });
    const id = await createConversation(node);
    const messages = `/api/conversations/${id}/messages`;
    const good = { sender: 'customer', content: 'hello' };

    // 415: a body that is not JSON by its content type, or no body where one is needed.
    expectError(await call(node, 'POST', messages, JSON.stringify(good), { 'content-type': 'text/plain' }), 415, 'unsupported_media_type', 'text/plain message');
    expectError(await httpRequest(node, 'POST', messages, {}, JSON.stringify(good)), 415, 'unsupported_media_type', 'message without content-type');
    expectError(await call(node, 'POST', messages, JSON.stringify(good), { 'content-type': 'application/jsonp' }), 415, 'unsupported_media_type', 'application/jsonp');
    expectError(await call(node, 'POST', '/api/conversations', '{}', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type', 'text/plain create');
    expectError(await call(node, 'POST', messages), 415, 'unsupported_media_type', 'message without a body');
    expectError(await call(node, 'POST', messages, '', { 'content-type': 'application/json' }), 415, 'unsupported_media_type', 'message with an empty body');

    // 400 bad_json.
    for (const text of ['{', '{"sender":"customer",', 'nope', '{"a":1}}']) {
      expectError(await call(node, 'POST', messages, text, { 'content-type': 'application/json' }), 400, 'bad_json', `message body ${text}`);
    }
    expectError(await call(node, 'POST', '/api/conversations', '{', { 'content-type': 'application/json; charset=utf-8' }), 400, 'bad_json', 'create with bad JSON');

    // 400 invalid_field: each field, and bodies that are not objects.
    const invalid: Array<[string, unknown]> = [
      ['sender missing', { content: 'x' }],
      ['sender bot', { sender: 'bot', content: 'x' }],
      ['sender upper case', { sender: 'Customer', content: 'x' }],
      ['sender a number', { sender: 1, content: 'x' }],
      ['content missing', { sender: 'agent' }],
      ['content empty', { sender: 'agent', content: '' }],
      ['content blank', { sender: 'agent', content: ' \n\t ' }],
      ['content not a string', { sender: 'agent', content: 42 }],
      ['content too long', { sender: 'agent', content: 'x'.repeat(8001) }],
      ['timestamp -1', { ...good, timestamp: -1 }],
      ['timestamp 1.5', { ...good, timestamp: 1.5 }],
      ['timestamp "x"', { ...good, timestamp: 'x' }],
      ['timestamp "1000"', { ...good, timestamp: '1000' }],
      ['timestamp null', { ...good, timestamp: null }],
      ['timestamp 1e300', { ...good, timestamp: 1e300 }],
      ['body an array', [good]],
      ['body a string', 'hello'],
      ['body null', null],
    ];
    for (const [what, body] of invalid) {
      expectError(await call(node, 'POST', messages, JSON.stringify(body), { 'content-type': 'application/json' }), 400, 'invalid_field', what);
    }
    const sneaky = [
      ['__proto__ key', '{"sender":"customer","content":"x","__proto__":{"isAdmin":true}}'],
      ['constructor key', '{"sender":"customer","content":"x","constructor":{"prototype":{}}}'],
      ['unpaired surrogate', '{"sender":"customer","content":"a\\ud800b"}'],
    ];
    for (const [what, text] of sneaky) {
      expectError(await call(node, 'POST', messages, text, { 'content-type': 'application/json' }), 400, 'invalid_field', what);
    }
    expectError(await call(node, 'POST', '/api/conversations', '{"__proto__":{}}', { 'content-type': 'application/json' }), 400, 'invalid_field', 'create with __proto__');
    expectError(await call(node, 'POST', '/api/conversations', '[]', { 'content-type': 'application/json' }), 400, 'invalid_field', 'create with an array');

    // 404: unknown conversation, unknown message, unknown route.
    expectError(await call(node, 'POST', '/api/conversations/no-such-thing/messages', good), 404, 'not_found', 'POST message to unknown conversation');
    expectError(await call(node, 'GET', '/api/conversations/no-such-thing'), 404, 'not_found', 'GET unknown conversation');
    expectError(await call(node, 'DELETE', '/api/conversations/no-such-thing/messages/0loyw3v280000-x'), 404, 'not_found', 'DELETE in unknown conversation');
    expectError(await call(node, 'DELETE', `${messages}/0loyw3v280000-x`), 404, 'not_found', 'DELETE unknown message');
    expectError(await call(node, 'DELETE', `${messages}/garbage`), 404, 'not_found', 'DELETE message id that is no id');
    for (const path of ['/api/nope', '/api/conversations/x/y', `/api/conversations/${id}/messages/a/b`, '/nothing', '/api']) {
      expectError(await call(node, 'GET', path), 404, 'not_found', `GET ${path}`);
    }
    const deletedOnce = await postMessage(node, id, 'to delete');
    expect((await call(node, 'DELETE', `${messages}/${deletedOnce.id}`)).status).to.equal(204);
    expectError(await call(node, 'DELETE', `${messages}/${deletedOnce.id}`), 404, 'not_found', 'DELETE a deleted message');

    // 405 with Allow.
    const wrongMethods: Array<[string, string, string]> = [
      ['PUT', '/api/conversations', 'GET, HEAD, POST'],
      ['DELETE', '/api/conversations', 'GET, HEAD, POST'],
      ['GET', messages, 'POST'],
      ['DELETE', `/api/conversations/${id}`, 'GET, HEAD, PATCH'],
      ['POST', `${messages}/${deletedOnce.id}`, 'PATCH, DELETE'],
      ['POST', '/health', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of wrongMethods) {
      const res = await call(node, method, path);
      expectError(res, 405, 'method_not_allowed', `${method} ${path}`);
      expect(res.headers.get('allow'), `Allow of ${method} ${path}`).to.equal(allow);
    }

    // 413: a 70 KB body, and a Content-Length that declares more than allowed (no body sent).
    const big = JSON.stringify({ sender: 'customer', content: 'y'.repeat(70 * 1024) });
    expectError(await httpRequest(node, 'POST', messages, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(big) }, big), 413, 'payload_too_large', '70 KB message');
    expectError(await httpRequest(node, 'POST', '/api/conversations', { 'content-type': 'application/json', 'content-length': Buffer.byteLength(big) }, big), 413, 'payload_too_large', '70 KB create');
    // Chunked (no Content-Length): the limit holds while reading.
    expectError(await httpRequest(node, 'POST', messages, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, big), 413, 'payload_too_large', '70 KB chunked');
    const declared = await rawRequest(node, `POST ${messages} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n`);
    expectError(declared, 413, 'payload_too_large', 'declared Content-Length 10 MB');

    // A percent-encoding error in the path.
    for (const path of ['/api/conversations/%E0%A4%A', `/api/conversations/%zz/messages`, `${messages}/%`]) {
      const method = path.endsWith('/messages') ? 'POST' : path.includes('/messages/') ? 'DELETE' : 'GET';
      const res = await httpRequest(node, method, path, method === 'POST' ? { 'content-type': 'application/json' } : {}, method === 'POST' ? JSON.stringify(good) : undefined);
      expectError(res, 400, 'invalid_field', `${method} ${path}`);
    }

    // 409: a full conversation (MAX_MESSAGES_PER_CONVERSATION=3) refuses a timestamp older than all it keeps.
    const full = await createConversation(node);
    const fullMessages = `/api/conversations/${full}/messages`;
    const base = Date.now() - 10 * 24 * 3600_000; // ten days back: inside the accepted window
    for (const ts of [3000, 1000, 2000]) await postMessage(node, full, `at ${ts}`, { timestamp: base + ts });
    expectError(await call(node, 'POST', fullMessages, { ...good, timestamp: base + 999 }), 409, 'outside_history', 'timestamp older than a full history');
    const inside = await postMessage(node, full, 'at 1500', { timestamp: base + 1500 });
    expect(inside.timestamp).to.equal(base + 1500);
    expect((await history(node, full))!.map((m) => m.timestamp - base)).to.deep.equal([1500, 2000, 3000]);
    // Timestamps are accepted from 30 days before to 60 s after the server's clock, as they are.
    const soon = Date.now() + 30_000;
    expect((await postMessage(node, full, 'latest', { timestamp: soon })).timestamp).to.equal(soon);
    // Outside that window: 400, whatever the history (0, far past, far future).
    for (const ts of [0, Date.now() - 31 * 24 * 3600_000, Date.now() + 120_000, 9_999_999_999_999]) {
      expectError(await call(node, 'POST', fullMessages, { ...good, timestamp: ts }), 400, 'invalid_field', `timestamp ${ts}`);
    }
    expectError(await call(node, 'POST', fullMessages, { ...good, timestamp: 10_000_000_000_000 }), 400, 'invalid_field', 'timestamp after 2286');

    // After all that: alive, healthy, and nothing the bad requests carried was stored.
    expect(node.alive).to.equal(true);
    const health = await node.health();
    expect(health.status).to.equal(200);
    expect(health.body.status).to.equal('ok');
    expect(await history(node, id)).to.deep.equal([]);
    expect((await history(node, full))!.map((m) => m.content)).to.deep.equal(['at 2000', 'at 3000', 'latest']);
    expect(await storeStats(node)).to.deep.equal({ conversations: 2, messages: 3, tombstones: 1 });
    expect(node.logs.filter((l) => l.level === 'error'), 'error log lines').to.deep.equal([]);
  });
});

describe('conversations: WebSocket ↔ REST bridge', () => {
  it('carries messages and deletes both ways across instances, and a WS join creates the conversation', async () => {
    const [a, b] = await fullMesh(2);
    const id = await createConversation(a);
    const before = await postMessage(a, id, 'before anyone joined');

    // joined carries the history, as {id, user, text, ts}.
    const alice = await connect(b);
    const joined = await alice.join(id, 'alice');
    expect(joined.history).to.deep.equal([{ id: before.id, user: before.sender, text: before.content, ts: before.timestamp }]);

    // REST on A → live frame on B.
    const [live, posted] = await Promise.all([
      alice.next((f) => f.type === 'message' && f.room === id, 5000, 'the REST message on B'),
      postMessage(a, id, 'from REST', { sender: 'agent' }),
    ]);
    expect(live).to.deep.equal({ type: 'message', id: posted.id, room: id, user: 'agent', text: 'from REST', ts: posted.timestamp });

    // WS on B → stored, and readable on A (WS messages are not acknowledged before the echo: poll).
    const echo = await alice.say(id, 'from WebSocket');
    const wsMessage = { id: echo.id as string, sender: 'alice', content: 'from WebSocket', timestamp: echo.ts as number };
    const onA = await poll(async () => (await history(a, id))?.find((m) => m.id === wsMessage.id), { timeoutMs: 5000, what: 'the WS message in GET on A' });
    expect(onA).to.deep.equal(wsMessage);
    expect(await history(a, id)).to.deep.equal([before, posted, wsMessage]);

    // REST delete on A → `deleted` frame on B.
    const [deletedFrame, del] = await Promise.all([
      alice.next((f) => f.type === 'deleted', 5000, 'the deleted frame on B'),
      call(a, 'DELETE', `/api/conversations/${id}/messages/${wsMessage.id}`),
    ]);
    expect(del.status).to.equal(204);
    expect(deletedFrame).to.have.keys(['type', 'room', 'id', 'ts', 'at']);
    // `ts` is the deleted message's timestamp (its place in the order).
    expect(deletedFrame).to.include({ type: 'deleted', room: id, id: wsMessage.id, ts: wsMessage.timestamp });
    expect(deletedFrame.at).to.be.a('string').and.not.equal('');
    expect(await history(b, id)).to.deep.equal([before, posted]);

    // A WS join on A to a room that does not exist creates the conversation everywhere.
    const room = `room-${Math.random().toString(36).slice(2)}`;
    expect(await history(b, room)).to.equal(null);
    const bob = await connect(a);
    const joinedNew = await bob.join(room, 'bob');
    expect(joinedNew.history).to.deep.equal([]);
    expect(await poll(async () => (await history(b, room)) !== null, { timeoutMs: 5000, what: `GET /api/conversations/${room} on B` })).to.equal(true);
    expect(await history(b, room)).to.deep.equal([]);
    // And REST can post to it (it is a real conversation), reaching the WS member on A.
    const [toRoom, inRoom] = await Promise.all([
      bob.next((f) => f.type === 'message' && f.room === room, 5000, 'REST message in the WS-created room'),
      postMessage(b, room, 'hello room'),
    ]);
    expect(toRoom).to.include({ id: inRoom.id, user: 'customer', text: 'hello room', ts: inRoom.timestamp });
  });
});

describe('conversations: catch-up after a restart', () => {
  it('a restarted instance gets exactly the history written while it was down', async () => {
    const [a, b] = await fullMesh(2);
    const earlier = await createConversation(a);
    const kept = await postMessage(b, earlier, 'before the crash');

    await b.kill('SIGKILL');
    await poll(async () => !(await a.health()).body.peers.some((p) => p.id === b.nodeId && p.state === 'up'), { timeoutMs: 10_000, what: 'A to see B down' });

    const id = await createConversation(a);
    const m = [await postMessage(a, id, 'one'), await postMessage(a, id, 'two'), await postMessage(a, id, 'three')];
    expect((await call(a, 'DELETE', `/api/conversations/${id}/messages/${m[1].id}`)).status).to.equal(204);
    const expectedOnA = (await history(a, id))!;
    expect(expectedOnA.map((x) => x.content)).to.deep.equal(['one', 'three']);

    const b2 = await restart(b);
    await b2.waitForPeersUp([a.nodeId], 10_000);
    await poll(async () => JSON.stringify(await history(b2, id)) === JSON.stringify(expectedOnA), { timeoutMs: 10_000, what: 'the history of A on the restarted B' });
    expect(await history(b2, id)).to.deep.equal(expectedOnA);
    // The conversation from before the crash came back too (B lost it with its memory).
    await poll(async () => (await history(b2, earlier)) !== null, { timeoutMs: 5000, what: 'the older conversation on B' });
    expect(await history(b2, earlier)).to.deep.equal([kept]);
    // Tombstones included: the counts agree.
    await poll(async () => JSON.stringify(await storeStats(b2)) === JSON.stringify(await storeStats(a)), { timeoutMs: 5000, what: 'equal store counts' });
    expect(await storeStats(a)).to.deep.equal({ conversations: 2, messages: 3, tombstones: 1 });
    expect(await storeStats(b2)).to.deep.equal(await storeStats(a));
  });
});

describe('conversations: catch-up of deletes after a restart', () => {
  it('a deleted message does not reappear on an instance that catches up after a restart', async () => {
    // A window of 3: in one conversation the delete stays in the window, in the other the
    // deleted message is pushed out (and its tombstone dropped) while B is down.
    const [a, b] = await fullMesh(2, { MAX_MESSAGES_PER_CONVERSATION: '3' });
    const id = await createConversation(a);
    const doomed = await postMessage(a, id, 'deleted while B was down');
    const before = await postMessage(a, id, 'before the crash');
    const pushed = await createConversation(a);
    const old = await postMessage(a, pushed, 'deleted, then pushed out of the window');
    // B holds both messages (read-your-writes after the 201).
    expect(await history(b, id)).to.deep.equal([doomed, before]);
    expect(await history(b, pushed)).to.deep.equal([old]);

    await b.kill('SIGKILL');
    await poll(async () => !(await a.health()).body.peers.some((p) => p.id === b.nodeId && p.state === 'up'), { timeoutMs: 10_000, what: 'A to see B down' });

    expect((await call(a, 'DELETE', `/api/conversations/${id}/messages/${doomed.id}`)).status).to.equal(204);
    const after = await postMessage(a, id, 'after the delete');
    expect((await call(a, 'DELETE', `/api/conversations/${pushed}/messages/${old.id}`)).status).to.equal(204);
    const newer = [await postMessage(a, pushed, 'p1'), await postMessage(a, pushed, 'p2'), await postMessage(a, pushed, 'p3')];
    expect(await history(a, id)).to.deep.equal([before, after]);
    expect(await history(a, pushed)).to.deep.equal(newer);
    // One tombstone: the delete in `id` (its placeholder holds a slot); the one in `pushed` left the window.
    expect(await storeStats(a)).to.deep.equal({ conversations: 2, messages: 5, tombstones: 1 });

    const b2 = await restart(b);
    await b2.waitForPeersUp([a.nodeId], 10_000);
    await poll(
      async () => {
        for (const conv of [id, pushed]) if (JSON.stringify(await history(b2, conv)) !== JSON.stringify(await history(a, conv))) return false;
        return true;
      },
      { timeoutMs: 10_000, what: "B's GET to equal A's after the restart" },
    );
    for (const node of [a, b2]) {
      const inId = (await history(node, id))!;
      const inPushed = (await history(node, pushed))!;
      expect(inId, `${id} on :${node.port}`).to.deep.equal([before, after]);
      expect(inPushed, `${pushed} on :${node.port}`).to.deep.equal(newer);
      const ids = [...inId, ...inPushed].map((m) => m.id);
      expect(ids, `deleted message on :${node.port}`).to.not.include(doomed.id);
      expect(ids, `deleted and pushed-out message on :${node.port}`).to.not.include(old.id);
      expect([...inId, ...inPushed].filter((m) => m.content === ''), `empty-content messages on :${node.port}`).to.deep.equal([]);
    }
    await poll(async () => JSON.stringify(await storeStats(b2)) === JSON.stringify(await storeStats(a)), { timeoutMs: 5000, what: 'equal store counts' });
    expect(await storeStats(b2)).to.deep.equal({ conversations: 2, messages: 5, tombstones: 1 });
  });
});

describe('conversations: TTL', () => {
  it('an expired conversation disappears on every instance and catch-up never brings it back', async () => {
    const [a, b] = await fullMesh(2, { CONVERSATION_TTL_MS: '1500' });
    const id = await createConversation(a);
    const m = await postMessage(a, id, 'short-lived');
    expect(await history(b, id)).to.deep.equal([m]);

    await poll(async () => (await history(a, id)) === null && (await history(b, id)) === null, { timeoutMs: 5000, what: 'the conversation to expire on both' });
    await poll(async () => (await storeStats(a)).conversations === 0 && (await storeStats(b)).conversations === 0, { timeoutMs: 2000, what: 'the sweep on both' });

    await b.kill('SIGKILL');
    const b2 = await restart(b);
    await Promise.all([a.waitForPeersUp([b2.nodeId], 10_000), b2.waitForPeersUp([a.nodeId], 10_000)]);
    // Positive controls: writes on the relinked pair replicate both ways (each goes over the link
    // after that side's catch-up summary).
    const fromB = await createConversation(b2);
    expect(await history(a, fromB)).to.deep.equal([]);
    const fromA = await createConversation(a);
    expect(await history(b2, fromA)).to.deep.equal([]);
    // Only then: the expired one is still gone on both.
    expect(await history(a, id)).to.equal(null);
    expect(await history(b2, id)).to.equal(null);
    expectError(await call(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'agent', content: 'x' }), 404, 'not_found', 'POST to the expired conversation');
  });
});

describe('conversations: write storm against small bounds', () => {
  it('stays within MAX_CONVERSATIONS and MAX_MESSAGES_PER_CONVERSATION, identical on both nodes, with bounded memory; a full store refuses (507), never evicts what was written', async () => {
    const nodes = await fullMesh(2, { MAX_MESSAGES_PER_CONVERSATION: '20', MAX_CONVERSATIONS: '5' });
    const rssBefore = nodes.map(rssBytes);
    const CONVERSATIONS = 5;
    const PER_CONVERSATION = 50;
    const BATCH = 10;
    const ids: string[] = [];
    const posted = new Map<string, Message[]>();
    for (let k = 0; k < CONVERSATIONS; k++) {
      const id = await createConversation(nodes[k % 2]);
      ids.push(id);
      const list: Message[] = [];
      for (let start = 0; start < PER_CONVERSATION; start += BATCH) {
        const batch = Array.from({ length: BATCH }, (_, j) => start + j);
        list.push(...(await Promise.all(batch.map((n) => postMessage(nodes[n % 2], id, `c${k}-m${n}-${'z'.repeat(200)}`, { sender: n % 3 === 0 ? 'agent' : 'customer' })))));
      }
      posted.set(id, list);
    }
    // Every place holds a conversation with messages: more are refused on both nodes, and
    // none of the five is evicted to make room.
    for (let k = 0; k < 25; k++) {
      const res = await call(nodes[k % 2], 'POST', '/api/conversations');
      expectError(res, 507, 'store_full', `conversation ${CONVERSATIONS + k}`);
    }

    const expected = new Map(ids.map((id) => [id, [...posted.get(id)!].sort(byTimestampThenId).slice(-20)]));
    await poll(
      async () => {
        for (const id of ids) for (const node of nodes) if (JSON.stringify(await history(node, id)) !== JSON.stringify(expected.get(id))) return false;
        return true;
      },
      { timeoutMs: 5000, what: 'the 5 conversations with their newest 20 messages on both nodes' },
    );
    for (const node of nodes) {
      const stats = await storeStats(node);
      expect(stats).to.deep.equal({ conversations: 5, messages: 100, tombstones: 0 });
      for (const id of ids) expect(await history(node, id), `${id} on :${node.port}`).to.deep.equal(expected.get(id));
    }

    const rssAfter = nodes.map(rssBytes);
    for (const [i, node] of nodes.entries()) {
      const growth = rssAfter[i] - rssBefore[i];
      expect(growth, `RSS growth of :${node.port} (${rssBefore[i]} → ${rssAfter[i]} bytes)`).to.be.below(100 * 1024 * 1024);
    }
    expect(nodes.every((n) => n.alive)).to.equal(true);
  });
});
