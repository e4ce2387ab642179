/**
 * Hostile clients against the store, on real processes (issue: "hostile clients and peers
 * lose no one's data"): room creation cannot evict anyone's conversation, the store is
 * bounded in bytes and refuses (never silently drops) what does not fit, client timestamps
 * are bounded, an acknowledgement always reflects what the store did, and a resume reply
 * is paged instead of holding megabytes for one client.
 */
import { expect } from 'chai';
import net from 'node:net';
import { type Frame } from '../helpers/client.js';
import { Instance, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';
import { api, type ApiAnswer } from '../helpers/rest.js';

const clients = new ClientPool();
const connect = (instance: Instance) => clients.connect(instance);

afterEach(async () => {
  await clients.closeAll();
  await stopAll();
});


const create = (i: Instance) => api(i, 'POST', '/api/conversations');
const post = (i: Instance, id: string, content: string, extra: Record<string, unknown> = {}) =>
  api(i, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content, ...extra });
const historyIds = async (i: Instance, id: string): Promise<string[] | null> => {
  const answer = await api(i, 'GET', `/api/conversations/${id}`);
  return answer.status === 200 ? (answer.body.messages as Array<{ id: string }>).map((m) => m.id) : null;
};

describe('store limits: room creation cannot evict anyone (MAX_CONVERSATIONS)', function () {
  this.timeout(30_000);

  it('a client joining and leaving more new rooms than MAX_CONVERSATIONS evicts no conversation with messages, on any instance', async () => {
    const [a, b] = await fullMesh(2, { MAX_CONVERSATIONS: '20', NEW_CONVERSATIONS_PER_MIN: '100000', MAX_NEW_CONVERSATIONS_PER_CONNECTION: '100000' });
    const created = await create(a);
    expect(created.status).to.equal(201);
    const id = created.body.id as string;
    const message = await post(a, id, 'acknowledged before the storm');
    expect(message.status).to.equal(201);
    const attacker = await connect(b);
    for (let i = 0; i < 30; i++) {
      await attacker.join(`storm-${i}`, 'mallory');
      await attacker.request({ type: 'leave', room: `storm-${i}` }, (f) => f.type === 'left');
    }
    for (const instance of [a, b]) expect(await historyIds(instance, id), `the conversation at :${instance.port}`).to.deep.equal([message.body.id]);
  });

  it('when every place holds a conversation with messages, a new one is refused with 507 store_full (REST) or store_full (WebSocket), and nothing is evicted', async () => {
    const [a] = await fullMesh(1, { MAX_CONVERSATIONS: '5', NEW_CONVERSATIONS_PER_MIN: '100000' });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await create(a);
      expect(c.status).to.equal(201);
      ids.push(c.body.id as string);
      expect((await post(a, ids[i], `m${i}`)).status).to.equal(201);
    }
    const refused = await create(a);
    expect(refused.status).to.equal(507);
    expect(refused.body.error?.code).to.equal('store_full');
    const client = await connect(a);
    const error = await client.request({ type: 'join', room: 'one-too-many', user: 'u' }, (f) => f.type === 'error' || f.type === 'joined');
    expect(error).to.include({ type: 'error', code: 'store_full' });
    for (const [i, id] of ids.entries()) expect(await historyIds(a, id)).to.have.length(1, `conversation ${i}`);
  });

  it('creating conversations is limited per client address (NEW_CONVERSATIONS_PER_MIN) and per connection (MAX_NEW_CONVERSATIONS_PER_CONNECTION)', async () => {
    const [a] = await fullMesh(1, { NEW_CONVERSATIONS_PER_MIN: '10', MAX_NEW_CONVERSATIONS_PER_CONNECTION: '1000' });
    const client = await connect(a);
    const replies: Frame[] = [];
    for (let i = 0; i < 12; i++) replies.push(await client.request({ type: 'join', room: `new-${i}`, user: 'u' }, (f) => f.type === 'error' || (f.type === 'joined' && f.room === `new-${i}`)));
    expect(replies.slice(0, 10).map((r) => r.type)).to.deep.equal(Array(10).fill('joined'));
    expect(replies.slice(10).map((r) => r.code)).to.deep.equal(['rate_limited', 'rate_limited']);
    // The same address over REST shares the budget: 429 with Retry-After.
    const res = await fetch(`${a.httpUrl}/api/conversations`, { method: 'POST' });
    expect(res.status).to.equal(429);
    expect(Number(res.headers.get('retry-after'))).to.be.above(0);
    expect(((await res.json()) as ApiAnswer['body']).error?.code).to.equal('rate_limited');
    // Joining a room that exists is not a creation: never limited.
    const other = await connect(a);
    expect((await other.join('new-0', 'v')).type).to.equal('joined');
    expect(client.closeCode).to.equal(null);

    const [b] = await fullMesh(1, { NEW_CONVERSATIONS_PER_MIN: '1000', MAX_NEW_CONVERSATIONS_PER_CONNECTION: '3' });
    const c2 = await connect(b);
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await c2.request({ type: 'join', room: `c-${i}`, user: 'u' }, (f) => f.type === 'error' || (f.type === 'joined' && f.room === `c-${i}`));
      codes.push(r.type === 'joined' ? 'joined' : String(r.code));
      await c2.request({ type: 'leave', room: `c-${i}` }, (f) => f.type === 'left' || f.type === 'error');
    }
    expect(codes).to.deep.equal(['joined', 'joined', 'joined', 'rate_limited']);
  });
});

describe('store limits: a byte budget (MAX_STORE_BYTES)', function () {
  this.timeout(30_000);

  it('refuses writes past the budget with 507 store_full (and store_full on WebSocket, no echo), keeps every acknowledged one, and takes writes again once space is freed', async () => {
    const [a, b] = await fullMesh(2, { MAX_STORE_BYTES: '400000', MAX_TEXT_LENGTH: '8000' });
    const conv = (await create(a)).body.id as string;
    const text = 'x'.repeat(7900);
    const acked: string[] = [];
    let refused: ApiAnswer | null = null;
    for (let i = 0; i < 100 && !refused; i++) {
      const answer = await post(a, conv, `${i}:${text}`);
      if (answer.status === 201) acked.push(answer.body.id as string);
      else refused = answer;
    }
    expect(refused, 'a refusal before 100 messages of 16 KB in a 400 KB budget').to.not.equal(null);
    expect(refused!.status).to.equal(507);
    expect(refused!.body.error?.code).to.equal('store_full');
    expect(acked.length).to.be.above(5);
    // Every acknowledged message is kept, on both instances.
    for (const instance of [a, b]) {
      await poll(async () => JSON.stringify(await historyIds(instance, conv)) === JSON.stringify(acked), { what: `every acked message at :${instance.port}` });
    }
    // WebSocket: an error frame, never a silent drop.
    const client = await connect(a);
    await client.join(conv, 'alice');
    const reply = await client.request({ type: 'message', room: conv, text: `ws:${text}` }, (f) => f.type === 'error' || f.type === 'message');
    expect(reply).to.include({ type: 'error', code: 'store_full' });
    // /health says how full the store is.
    const health = (await a.health()).body as unknown as { memory: { storeBytes: number; maxStoreBytes: number } };
    expect(health.memory.maxStoreBytes).to.equal(400000);
    expect(health.memory.storeBytes).to.be.at.most(400000);
    // Deleting frees the space: writes are taken again.
    for (const id of acked.slice(0, 5)) expect((await api(a, 'DELETE', `/api/conversations/${conv}/messages/${id}`)).status).to.equal(204);
    expect((await post(a, conv, 'fits again')).status).to.equal(201);
  });
});

describe('store limits: client timestamps', function () {
  this.timeout(30_000);

  it('a timestamp far in the future (or past) is refused with 400, and cannot push acknowledged messages out of a full conversation', async () => {
    const [a, b] = await fullMesh(2, { MAX_MESSAGES_PER_CONVERSATION: '5' });
    const conv = (await create(a)).body.id as string;
    const acked: string[] = [];
    for (let i = 0; i < 5; i++) acked.push((await post(a, conv, `m${i}`)).body.id as string);
    const tenYears = Date.now() + 10 * 365 * 24 * 3600_000;
    const future = await post(a, conv, 'from the future', { timestamp: tenYears });
    expect(future.status).to.equal(400);
    expect(future.body.error?.code).to.equal('invalid_field');
    const past = await post(a, conv, 'from long ago', { timestamp: Date.now() - 400 * 24 * 3600_000 });
    expect(past.status).to.equal(400);
    // Within the window: taken.
    const recent = await post(a, conv, 'a minute ago', { timestamp: Date.now() - 60_000 });
    expect([201, 409]).to.include(recent.status); // 409: older than every message a full conversation keeps
    const now = await post(b, conv, 'now');
    expect(now.status).to.equal(201);
    // A WebSocket send still goes through and is echoed.
    const client = await connect(b);
    await client.join(conv, 'alice');
    const echo = await client.say(conv, 'still heard');
    expect(echo.type).to.equal('message');
    const kept = await historyIds(a, conv);
    expect(kept).to.include(now.body.id as string);
  });
});

describe('store limits: resume replies are paged (MAX_REPLY_BYTES)', function () {
  this.timeout(60_000);

  it('a resume over MAX_REPLY_BYTES carries a page, "more": true and "next"; asking again with after = next gets the rest, none skipped', async () => {
    const [a] = await fullMesh(1, { MAX_REPLY_BYTES: '65536', RATE_LIMIT_PER_SEC: '100000', RATE_LIMIT_BURST: '100000' });
    const writer = await connect(a);
    await writer.join('big', 'writer');
    const first = await writer.say('big', 'first');
    const pad = 'p'.repeat(2000);
    const sent: string[] = [];
    for (let i = 0; i < 200; i++) sent.push((await writer.say('big', `${i}:${pad}`)).id as string);
    const reader = await connect(a);
    const since = first.id as string;
    let after: string | undefined;
    const got: string[] = [];
    for (let page = 0; page < 50; page++) {
      const joined = await reader.request({ type: 'join', room: 'big', user: 'reader', since, ...(after ? { after } : {}) }, (f) => f.type === 'joined' || f.type === 'error');
      expect(joined.type).to.equal('joined');
      expect(joined.gap).to.equal(false);
      const ids = (joined.history as Frame[]).map((m) => m.id as string);
      expect(JSON.stringify(joined).length, 'a joined frame within MAX_REPLY_BYTES').to.be.at.most(65536);
      for (const id of ids) if (!got.includes(id)) got.push(id);
      if (!joined.more) break;
      expect(ids.length).to.be.above(0);
      expect(joined.next).to.equal(ids[ids.length - 1]);
      after = joined.next as string;
    }
    // Every message after `first`, in order (the answer may also repeat a few just before
    // `since`: here only `first` itself could be one, and it is not after it).
    expect(got.filter((id) => id !== first.id)).to.deep.equal(sent);
  });

  it('unsent bytes across all connections stay within MAX_UNSENT_BYTES: the clients holding the most are cut (1013)', async () => {
    const env = {
      MAX_UNSENT_BYTES: String(4 * 1024 * 1024),
      MAX_CLIENT_BUFFER_BYTES: String(8 * 1024 * 1024),
      MAX_CLIENT_BUFFER_HARD_BYTES: String(64 * 1024 * 1024),
      CLIENT_WRITE_DEADLINE_MS: '600000',
      RATE_LIMIT_PER_SEC: '1000000',
      RATE_LIMIT_BURST: '1000000',
    };
    const [a] = await fullMesh(1, env);
    const writer = await connect(a);
    await writer.join('flood', 'writer');
    const sleepers = [];
    for (let i = 0; i < 4; i++) {
      const c = await connect(a);
      await c.join('flood', `sleeper-${i}`);
      (c.ws as unknown as { _socket: net.Socket })._socket.pause();
      sleepers.push(c);
    }
    const pad = 'z'.repeat(7900);
    // Leaves of one moment come in one frame (`left`), as when the budget cuts several at once.
    const cut = () => writer.frames.reduce((n, f) => n + (f.type !== 'presence' ? 0 : f.event === 'leave' ? 1 : ((f.left as string[] | undefined)?.length ?? 0)), 0);
    let sent = 0;
    // Each sleeper alone stays under its own limits (8 MiB soft, 10 min deadline): only the
    // global budget can cut them. 3,000 messages of 8 KB is ~24 MB each: four of them hold
    // far more than 4 MiB beyond what the kernel buffers. The budget is checked every second.
    while (sent < 3000 && cut() < 1) {
      for (let i = 0; i < 9; i++) writer.send({ type: 'message', room: 'flood', text: `${sent + i}:${pad}` });
      await writer.say('flood', `${sent + 9}:${pad}`);
      sent += 10;
    }
    await poll(() => cut() >= 1, { timeoutMs: 5000, what: `a sleeper cut by the budget after ${sent} messages` });
    expect(writer.closeCode).to.equal(null);
    for (const c of sleepers) (c.ws as unknown as { _socket: net.Socket })._socket.resume();
    const closed = await Promise.all(sleepers.map((c) => c.waitClose(10_000).catch(() => null)));
    expect(closed.filter((code) => code === 1013 || code === 1006).length).to.be.at.least(1);
    expect((await a.health()).status).to.equal(200);
  });
});
