/**
 * History paging (GET /api/conversations/:id?limit=&before=|after=, lib/core/history-page.ts):
 * 2,500 messages walked backward and forward on two instances, none skipped or repeated, a
 * back-dated message stored in the middle of a walk, and with DATA_DIR and a memory window of
 * 100 after kill -9 of both instances (the older pages come from the disk). Bad cursors and
 * limits get a clear error.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Instance, freePort, stopAll } from '../helpers/instance.js';
import { fullMesh } from '../helpers/mesh.js';
import { api } from '../helpers/rest.js';

interface Message {
  id: string;
  content: string;
  timestamp: number;
}
interface Page {
  id: string;
  messages: Message[];
  prev: string | null;
  next: string | null;
}

const byTimestampThenId = (a: Message, b: Message) => a.timestamp - b.timestamp || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

let root = '';
afterEach(async () => {
  await stopAll();
  if (root) rmSync(root, { recursive: true, force: true });
  root = '';
});

/** Posts `count` messages, 100 at a time spread over the instances; returns them in history order. */
async function postMany(nodes: Instance[], room: string, count: number): Promise<Message[]> {
  const posted: Message[] = [];
  for (let n = 0; n < count; n += 100) {
    const answers = await Promise.all(
      Array.from({ length: Math.min(100, count - n) }, (_, j) => api(nodes[j % nodes.length], 'POST', `/api/conversations/${room}/messages`, { sender: 'customer', content: `m${n + j}` })),
    );
    for (const a of answers) {
      expect(a.status, JSON.stringify(a.body)).to.equal(201);
      posted.push(a.body as unknown as Message);
    }
  }
  return posted.sort(byTimestampThenId);
}

async function page(node: Instance, room: string, query: string): Promise<Page> {
  const answer = await api(node, 'GET', `/api/conversations/${room}?${query}`);
  expect(answer.status, `GET ?${query}: ${JSON.stringify(answer.body).slice(0, 200)}`).to.equal(200);
  return answer.body as unknown as Page;
}

/** Newest page first, then `before=prev` until prev is null; returns the ids oldest first, and the oldest page. */
async function walkBackward(node: Instance, room: string, limit: number): Promise<{ ids: string[]; oldest: Page }> {
  let p = await page(node, room, `limit=${limit}`);
  expect(p.next, 'the newest page has no next').to.equal(null);
  const pages = [p];
  while (p.prev !== null) {
    expect(p.messages.length).to.equal(limit);
    p = await page(node, room, `limit=${limit}&before=${p.prev}`);
    pages.unshift(p);
    expect(pages.length, 'a backward walk that ends').to.be.below(1000);
  }
  return { ids: pages.flatMap((x) => x.messages.map((m) => m.id)), oldest: p };
}

/** From `start` (a page), `after=next` until next is null; returns the ids. */
async function walkForward(node: Instance, room: string, limit: number, start: Page): Promise<string[]> {
  const ids = start.messages.map((m) => m.id);
  let p = start;
  while (p.next !== null) {
    p = await page(node, room, `limit=${limit}&after=${p.next}`);
    ids.push(...p.messages.map((m) => m.id));
    expect(ids.length, 'a forward walk that ends').to.be.below(100_000);
  }
  return ids;
}

describe('history paging', function () {
  this.timeout(120_000);

  it('2,500 messages walked backward and forward on both instances: none skipped or repeated, cursors null at the ends; bad paging input gets its code', async () => {
    const nodes = await fullMesh(2, { MAX_MESSAGES_PER_CONVERSATION: '5000', LOG_LEVEL: 'info' });
    const room = (await api(nodes[0], 'POST', '/api/conversations')).body.id as string;
    const expected = (await postMany(nodes, room, 2500)).map((m) => m.id);

    for (const [k, node] of nodes.entries()) {
      const whole = (await api(node, 'GET', `/api/conversations/${room}`)).body;
      // No paging parameters: the answer as before (with the desk's fields, issue 13), no cursors.
      expect(whole, 'no paging parameters: the answer as before').to.include.keys('id', 'messages', 'status');
      expect(whole, 'no paging parameters: no cursors').to.not.have.any.keys('prev', 'next');
      expect((whole.messages as Message[]).map((m) => m.id)).to.deep.equal(expected);
      const limit = k === 0 ? 97 : 1000;
      const back = await walkBackward(node, room, limit);
      expect(back.ids, `backward walk on instance ${k}`).to.deep.equal(expected);
      expect(back.oldest.prev).to.equal(null);
      expect(await walkForward(node, room, limit, back.oldest), `forward walk on instance ${k}`).to.deep.equal(expected);
    }
    // The default limit is 100; after the last message: an empty page, both cursors null.
    expect((await page(nodes[1], room, 'limit=100')).messages.map((m) => m.id)).to.deep.equal(expected.slice(-100));
    expect((await page(nodes[1], room, `before=${expected[150]}`)).messages.map((m) => m.id)).to.deep.equal(expected.slice(50, 150));
    expect(await page(nodes[0], room, `after=${expected[2499]}`)).to.include({ id: room, prev: null, next: null }).and.to.have.property('messages').that.deep.equals([]);

    // A message back-dated into the middle while a walk is under way: the walk sees every other message once.
    const first = await page(nodes[0], room, 'limit=500');
    const middle = (await api(nodes[0], 'GET', `/api/conversations/${room}`)).body.messages as Message[];
    const inserted = await api(nodes[1], 'POST', `/api/conversations/${room}/messages`, { sender: 'agent', content: 'back-dated', timestamp: middle[1000].timestamp });
    expect(inserted.status).to.equal(201);
    const rest: string[] = [];
    for (let p = first; p.prev !== null; ) {
      p = await page(nodes[0], room, `limit=500&before=${p.prev}`);
      rest.unshift(...p.messages.map((m) => m.id));
    }
    const walked = [...rest, ...first.messages.map((m) => m.id)].filter((id) => id !== inserted.body.id);
    expect(walked).to.deep.equal(expected);

    // Bad input: a clear code, never a 500.
    const bad: Array<[string, number, string]> = [
      ['limit=0', 400, 'invalid_field'],
      ['limit=1001', 400, 'invalid_field'],
      ['limit=abc', 400, 'invalid_field'],
      ['limit=1.5', 400, 'invalid_field'],
      ['before=garbage', 400, 'invalid_cursor'],
      ['after=%00%01', 400, 'invalid_cursor'],
      [`before=${'x'.repeat(300)}`, 400, 'invalid_field'],
      [`before=${expected[5]}&after=${expected[9]}`, 400, 'invalid_field'],
      ['before=0loyw3v280000-nosuchnode', 404, 'cursor_not_found'],
    ];
    for (const [query, status, code] of bad) {
      const answer = await api(nodes[0], 'GET', `/api/conversations/${room}?${query}`);
      expect({ status: answer.status, code: answer.body.error?.code }, query).to.deep.equal({ status, code });
    }
    // A cursor from another conversation is not this one's.
    const other = (await api(nodes[0], 'POST', '/api/conversations')).body.id as string;
    expect((await api(nodes[0], 'GET', `/api/conversations/${other}?before=${expected[3]}`)).body.error?.code).to.equal('cursor_not_found');
    expect((await api(nodes[0], 'GET', `/api/conversations/no-such-room?limit=5`)).status).to.equal(404);
  });

  it('DATA_DIR with a memory window of 100: after kill -9 of both instances, 2,500 messages walked both ways on both, older pages from the disk; a deleted message still works as a cursor while memory holds it', async () => {
    root = mkdtempSync(join(tmpdir(), 'chatmesh-paging-'));
    const ports = await Promise.all([0, 1].map(() => freePort()));
    const start = (k: number) =>
      Instance.start({
        port: ports[k],
        env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${ports[1 - k]}`, DATA_DIR: join(root, `h${k}`), MAX_MESSAGES_PER_CONVERSATION: '100', LOG_LEVEL: 'info' },
      });
    let nodes = await Promise.all([0, 1].map(start));
    await nodes[0].waitForPeersUp([nodes[1].nodeId], 10_000);
    const room = (await api(nodes[0], 'POST', '/api/conversations')).body.id as string;
    const posted = await postMany(nodes, room, 2500);
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    nodes = await Promise.all([0, 1].map(start));
    const expected = posted.map((m) => m.id);

    for (const [k, node] of nodes.entries()) {
      const back = await walkBackward(node, room, k === 0 ? 100 : 333);
      expect(back.ids, `backward walk on instance ${k}`).to.deep.equal(expected);
      expect(await walkForward(node, room, k === 0 ? 100 : 333, back.oldest), `forward walk on instance ${k}`).to.deep.equal(expected);
    }
    // A page that straddles memory's window and the disk's.
    expect((await page(nodes[0], room, `limit=30&before=${expected[2410]}`)).messages.map((m) => m.id)).to.deep.equal(expected.slice(2380, 2410));

    // Delete a message in memory's window: as a cursor it still places the page.
    const gone = expected[2450];
    expect((await api(nodes[0], 'DELETE', `/api/conversations/${room}/messages/${gone}`)).status).to.equal(204);
    const after = await page(nodes[1], room, `limit=3&after=${gone}`);
    expect(after.messages.map((m) => m.id)).to.deep.equal(expected.slice(2451, 2454));
  });
});
