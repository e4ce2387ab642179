/**
 * The inbox feed on real processes (127.0.0.1, static peers): `{"type":"inbox"}` subscribes a
 * socket to the inbox items of conversations changed by writes stored on its instance (here
 * or on a peer), as GET /api/conversations gives them; pushes are coalesced; with AUTH=jwt a
 * customer is refused and an agent's items carry its unread count; bad frames get error
 * frames; an unsubscribed socket gets nothing more.
 * No sleeps: a later frame on the same connection proves an earlier one did not come.
 */
import { expect } from 'chai';
import { ChatClient, type InboxFrame } from 'chatmesh/client';
import { AUDIENCE, ISSUER, TEST_SECRET, authApi, connectWithHeader, mint } from '../helpers/auth.js';
import type { Frame, TestClient } from '../helpers/client.js';
import { Instance, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { api } from '../helpers/rest.js';
import { poll } from '../helpers/wait.js';

const JWT_ENV = { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_CLOCK_TOLERANCE_SEC: '0' };

interface Item {
  id: string;
  status: string;
  updatedAt: number;
  unread?: number;
  lastMessage: { id: string; content: string } | null;
}

const itemOf = (id: string, check: (item: Item) => boolean = () => true) => (f: Frame) => f.type === 'inbox' && (f.item as Item | undefined)?.id === id && check(f.item as Item);
const itemsOf = (client: TestClient, id: string) => client.frames.filter(itemOf(id)).map((f) => f.item as Item);

async function subscribe(client: TestClient, subscribe?: boolean): Promise<Frame> {
  const frame = subscribe === undefined ? { type: 'inbox' } : { type: 'inbox', subscribe };
  return client.request(frame, (f) => f.type === 'error' || (f.type === 'inbox' && 'subscribed' in f));
}

/** The conversation's item in GET /api/conversations on `instance`. */
async function listed(instance: Instance, id: string): Promise<Item | undefined> {
  const res = await api(instance, 'GET', '/api/conversations?limit=200');
  return (res.body.items as Item[]).find((i) => i.id === id);
}

describe('inbox feed', function () {
  this.timeout(20_000);
  const clients = new ClientPool();

  afterEach(async () => {
    await clients.closeAll();
    await stopAll();
  });

  describe('on two instances', () => {
    let a: Instance;
    let b: Instance;
    beforeEach(async () => {
      [a, b] = await fullMesh(2);
    });

    it('pushes the item of a conversation created, written to and changed on the other instance, as GET /api/conversations gives it', async () => {
      const agent = await clients.connect(b);
      expect(await subscribe(agent)).to.deep.equal({ type: 'inbox', subscribed: true });

      const created = await api(a, 'POST', '/api/conversations');
      expect(created.status).to.equal(201);
      const id = created.body.id as string;
      await agent.waitFor(itemOf(id), 5000, 'the new conversation on B');

      expect((await api(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'hello from A' })).status).to.equal(201);
      const pushed = (await agent.waitFor(itemOf(id, (i) => i.lastMessage?.content === 'hello from A'), 5000, 'the message on B')).item as Item;
      expect(pushed).to.deep.equal(await listed(b, id));
      expect(pushed.status).to.equal('open');

      expect((await api(a, 'PATCH', `/api/conversations/${id}`, { status: 'pending' })).status).to.equal(200);
      const changed = (await agent.waitFor(itemOf(id, (i) => i.status === 'pending'), 5000, 'the status on B')).item as Item;
      expect(changed).to.deep.equal(await listed(b, id));
      expect(changed.lastMessage?.content).to.equal('hello from A');
    });

    it('coalesces a storm: far fewer pushes than messages, the last carrying the last message', async () => {
      const agent = await clients.connect(b);
      await subscribe(agent);
      const id = (await api(a, 'POST', '/api/conversations')).body.id as string;
      await agent.waitFor(itemOf(id));
      const before = itemsOf(agent, id).length;
      const started = Date.now();
      for (let batch = 0; batch < 5; batch++) {
        const posts = Array.from({ length: 10 }, (_, i) => api(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: `m${batch * 10 + i}` }));
        for (const res of await Promise.all(posts)) expect(res.status).to.equal(201);
      }
      const last = (await listed(b, id))!.lastMessage!;
      await agent.waitFor(itemOf(id, (i) => i.lastMessage?.id === last.id), 5000, 'the last message on B');
      const elapsed = Date.now() - started;
      const pushes = itemsOf(agent, id).length - before;
      // At most one push per 250 ms (the first may come at once), and far fewer than 50.
      expect(pushes).to.be.at.least(1).and.at.most(Math.ceil(elapsed / 250) + 1).and.below(25);
      // The last item pushed carries the last message (after a round trip: anything pending came first).
      const after = await agent.request({ type: 'inbox' }, (f) => f.type === 'inbox' && 'subscribed' in f);
      expect(after.subscribed).to.equal(true);
      expect(itemsOf(agent, id).at(-1)!.lastMessage!.id).to.equal(last.id);
    });

    it('answers bad inbox frames with error frames and keeps the socket open', async () => {
      const client = await clients.connect(a);
      expect(await subscribe(client, 'yes' as unknown as boolean)).to.include({ type: 'error', code: 'invalid_field' });
      const extra = await client.request({ type: 'inbox', room: 'x' }, (f) => f.type === 'error');
      expect(extra.code).to.equal('invalid_field');
      const extra2 = await client.request({ type: 'inbox', subscribe: true, filter: 'open' }, (f) => f.type === 'error');
      expect(extra2.code).to.equal('invalid_field');
      expect(await subscribe(client)).to.deep.equal({ type: 'inbox', subscribed: true });
      expect(client.closeCode).to.equal(null);
    });

    it('stops pushing to a socket that unsubscribed', async () => {
      const stays = await clients.connect(b);
      const leaves = await clients.connect(b);
      await subscribe(stays);
      await subscribe(leaves);
      const id = (await api(a, 'POST', '/api/conversations')).body.id as string;
      await Promise.all([stays.waitFor(itemOf(id)), leaves.waitFor(itemOf(id))]);
      expect(await subscribe(leaves, false)).to.deep.equal({ type: 'inbox', subscribed: false });
      const seen = leaves.frames.length;

      await api(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'after the unsubscribe' });
      await stays.waitFor(itemOf(id, (i) => i.lastMessage?.content === 'after the unsubscribe'));
      // A round trip on the unsubscribed socket: a push written before it would have come first.
      await subscribe(leaves, false);
      expect(leaves.frames.slice(seen).filter((f) => f.type === 'inbox' && !('subscribed' in f))).to.deep.equal([]);
    });
  });

  it('says removed when a conversation expires', async () => {
    const [a] = await fullMesh(1, { CONVERSATION_TTL_MS: '1500' });
    const agent = await clients.connect(a);
    await subscribe(agent);
    const id = (await api(a, 'POST', '/api/conversations')).body.id as string;
    await agent.waitFor(itemOf(id));
    await agent.waitFor((f) => f.type === 'inbox' && f.removed === id, 5000, 'removed');
    expect((await api(a, 'GET', `/api/conversations/${id}`)).status).to.equal(404);
  });

  it('chatmesh/client: inbox() subscribes, again after a reconnect, and emits the items', async () => {
    const [a, b] = await fullMesh(2);
    const client = new ChatClient({ urls: [b.url], user: 'agent', backoff: { initialMs: 20, maxMs: 100 } });
    const frames: InboxFrame[] = [];
    client.on('inbox', (frame) => frames.push(frame));
    const errors: string[] = [];
    client.on('error', (err) => errors.push(err.code));
    try {
      client.connect();
      client.inbox();
      await poll(() => frames.some((f) => f.subscribed === true), { what: 'subscribed' });
      const id = (await api(a, 'POST', '/api/conversations')).body.id as string;
      await poll(() => frames.some((f) => f.item?.id === id), { what: 'the item' });

      // B restarts on the same port: the client connects again and follows the inbox again.
      const port = b.port;
      await b.stop();
      const again = await Instance.start({ port, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${a.port}` } });
      await again.waitForPeersUp([a.nodeId], 10_000);
      await poll(() => frames.filter((f) => f.subscribed === true).length === 2, { timeoutMs: 10_000, what: 'subscribed again' });
      expect((await api(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'after the restart' })).status).to.equal(201);
      await poll(() => frames.some((f) => f.item?.lastMessage?.content === 'after the restart'), { what: 'the item after the restart' });
      expect(errors).to.deep.equal([]);
    } finally {
      client.close();
    }
  });

  describe('with AUTH=jwt', () => {
    it('refuses a customer (forbidden) and gives an agent items with its unread count', async () => {
      const [a, b] = await fullMesh(2, JWT_ENV);
      const customerToken = await mint({ sub: 'cus-1', role: 'customer' });
      const agentToken = await mint({ sub: 'agent-1', role: 'agent' });
      const customer = clients.track(await connectWithHeader(b.url, customerToken));
      const refused = await subscribe(customer);
      expect(refused).to.include({ type: 'error', code: 'forbidden' });
      expect(customer.closeCode).to.equal(null);

      const agent = clients.track(await connectWithHeader(b.url, agentToken));
      expect(await subscribe(agent)).to.deep.equal({ type: 'inbox', subscribed: true });
      const created = await authApi(a.httpUrl, customerToken, 'POST', '/api/conversations');
      expect(created.status).to.equal(201);
      const id = created.body.id as string;
      expect((await authApi(a.httpUrl, customerToken, 'POST', `/api/conversations/${id}/messages`, { content: 'help' })).status).to.equal(201);
      const pushed = (await agent.waitFor(itemOf(id, (i) => i.lastMessage?.content === 'help'), 5000, 'the message on B')).item as Item;
      expect(pushed.unread).to.equal(1);
      const inbox = await authApi(b.httpUrl, agentToken, 'GET', '/api/conversations');
      expect(pushed).to.deep.equal((inbox.body.items as Item[]).find((i) => i.id === id));
      // The customer's socket got no push (it is not subscribed): a round trip proves it.
      await customer.request({ type: 'inbox', subscribe: false }, (f) => f.type === 'inbox');
      expect(customer.frames.filter((f) => f.type === 'inbox' && 'item' in f)).to.deep.equal([]);

      // A read cursor moves one reader's unread: pushed to that agent's sockets only.
      const other = clients.track(await connectWithHeader(b.url, await mint({ sub: 'agent-2', role: 'agent' })));
      await subscribe(other);
      const seenByOther = other.frames.length;
      const read = agent.next(itemOf(id, (i) => i.unread === 0 && i.lastMessage?.content === 'help'), 5000, 'unread 0 for agent-1 on B');
      expect((await authApi(a.httpUrl, agentToken, 'POST', `/api/conversations/${id}/read`, { upTo: pushed.lastMessage!.id })).status).to.equal(200);
      await read;
      await subscribe(other);
      expect(other.frames.slice(seenByOther).filter((f) => f.type === 'inbox' && 'item' in f)).to.deep.equal([]);
    });
  });
});
