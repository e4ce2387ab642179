/**
 * DATA_DIR beyond memory's window, on real processes (memory keeps 100 messages here, the
 * disk all of them): an instance that was down catches up the whole history from its peers'
 * disks (not only their memory window); a delete of a message older than memory's window is
 * taken, replicated to the peers' disks and kept across restarts; a resume whose `since` is
 * older than memory's window is answered from disk (gap:false); and hostile disk catch-up
 * frames are counted invalid, never crash the instance, never store garbage.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakePeer } from '../helpers/fake-peer.js';
import type { TestClient } from '../helpers/client.js';
import { Instance, freePort, stopAll } from '../helpers/instance.js';
import { ClientPool } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';
import { api } from '../helpers/rest.js';
import { timestampId } from '../../lib/core/hybrid-clock.js';
import { AUDIENCE, ISSUER, TEST_SECRET, authApi, mint } from '../helpers/auth.js';

const clients = new ClientPool();
let root = '';

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'chatmesh-diskcatch-'));
});

afterEach(async () => {
  FakePeer.closeAll();
  await clients.closeAll();
  await stopAll();
  rmSync(root, { recursive: true, force: true });
});

const ENV = { MAX_MESSAGES_PER_CONVERSATION: '100', RATE_LIMIT_PER_SEC: '100000', RATE_LIMIT_BURST: '100000', LOG_LEVEL: 'info' };

/** Starts instance k of a static mesh over `ports`, keeping its store in root/h<k>. */
function startAt(ports: number[], k: number, env: Record<string, string> = {}): Promise<Instance> {
  const peers = ports.filter((_, j) => j !== k).map((p) => `ws://127.0.0.1:${p}`).join(',');
  return Instance.start({ port: ports[k], env: { DISCOVERY: ports.length > 1 ? 'static' : 'off', PEERS: peers, DATA_DIR: join(root, `h${k}`), ...ENV, ...env } });
}

async function history(i: Instance, id: string): Promise<string[] | null> {
  const answer = await api(i, 'GET', `/api/conversations/${id}`);
  return answer.status === 200 ? (answer.body.messages as Array<{ id: string }>).map((m) => m.id) : null;
}

/** Sends `n` messages on a joined client and waits for the echo of the last: their ids, in order sent. */
async function storm(client: TestClient, room: string, n: number, tag: string): Promise<string[]> {
  for (let k = 0; k < n; k++) client.send({ type: 'message', room, text: `${tag}${k}` });
  await client.waitFor((f) => f.type === 'message' && f.text === `${tag}${n - 1}`, 20_000, `the echo of ${tag}${n - 1}`);
  const errors = client.frames.filter((f) => f.type === 'error');
  expect(errors, JSON.stringify(errors.slice(0, 3))).to.have.length(0);
  return client.messages(room).filter((f) => String(f.text).startsWith(tag)).map((f) => f.id as string);
}

describe('DATA_DIR: catch-up, deletes and resume beyond memory\'s window', function () {
  this.timeout(60_000);

  it('B stopped while A takes 600 messages: after B restarts, GET on B returns all of them in order; a resume on B from one of the oldest answers gap:false with everything after it, paged', async () => {
    const ports = await Promise.all([0, 1].map(() => freePort()));
    // Small peer frames and send buffers: the disk's catch-up goes in many frames, paced.
    const env = { MAX_REPLY_BYTES: '16384', MAX_PEER_PAYLOAD_BYTES: '65536', MAX_PEER_BUFFER_BYTES: '262144' };
    const nodes = await Promise.all([0, 1].map((k) => startAt(ports, k, env)));
    await nodes[0].waitForPeersUp([nodes[1].nodeId], 10_000);
    const writer = await clients.connect(nodes[0]);
    await writer.join('long', 'writer');
    const early = await storm(writer, 'long', 5, 'e');
    await poll(async () => (await history(nodes[1], 'long'))?.length === 5, { timeoutMs: 10_000, what: 'B to hold the first five' });
    await nodes[1].kill('SIGKILL');
    const late = await storm(writer, 'long', 600, 'm');
    const all = [...early, ...late];
    expect(await history(nodes[0], 'long')).to.deep.equal(all);

    nodes[1] = await startAt(ports, 1, env);
    await poll(async () => JSON.stringify(await history(nodes[1], 'long')) === JSON.stringify(all), { timeoutMs: 20_000, what: 'the whole history on B' }).catch(async (err) => {
      const got = (await history(nodes[1], 'long')) ?? [];
      throw new Error(`${(err as Error).message}: B has ${got.length} of ${all.length}, missing ${all.filter((id) => !got.includes(id)).length}`);
    });

    // Resume from the 4th message: far older than B's memory window (the newest 100).
    const since = all[3];
    const reader = await clients.connect(nodes[1]);
    const got: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 20; page++) {
      const joined = await reader.request({ type: 'join', room: 'long', user: 'reader', since, ...(after !== undefined && { after }) }, (f) => f.type === 'joined');
      expect(joined.gap, `page ${page}`).to.equal(false);
      got.push(...(joined.history as Array<{ id: string }>).map((m) => m.id));
      if (joined.more !== true) break;
      after = joined.next as string;
    }
    // What follows `since`, in order; before it at most the three written just before it (the resume window).
    const start = got.indexOf(all[4]);
    expect(start, 'the message after since').to.be.within(0, 3);
    expect(got.slice(start)).to.deep.equal(all.slice(4));
    expect(all.slice(0, 3)).to.include.members(got.slice(0, start));
    expect(got.length, 'more than one page').to.be.greaterThan(200);
  });

  it('a delete of the oldest message on B (long out of memory\'s window) is a 204, reaches A\'s disk and its members, and survives a restart of both', async () => {
    const ports = await Promise.all([0, 1].map(() => freePort()));
    let nodes = await Promise.all([0, 1].map((k) => startAt(ports, k)));
    await nodes[0].waitForPeersUp([nodes[1].nodeId], 10_000);
    const writer = await clients.connect(nodes[0]);
    await writer.join('old', 'writer');
    const ids = await storm(writer, 'old', 300, 'm');
    await poll(async () => (await history(nodes[1], 'old'))?.length === 300, { timeoutMs: 10_000, what: 'B to hold all 300' });

    const oldest = ids[0];
    const del = await api(nodes[1], 'DELETE', `/api/conversations/old/messages/${oldest}`);
    expect(del.status, JSON.stringify(del.body)).to.equal(204);
    await writer.waitFor((f) => f.type === 'deleted' && f.id === oldest, 5000, 'the deleted frame on A');
    await poll(async () => (await history(nodes[0], 'old'))?.[0] === ids[1], { timeoutMs: 5000, what: 'the delete on A' });
    expect((await api(nodes[0], 'DELETE', `/api/conversations/old/messages/${oldest}`)).status, 'deleted already').to.equal(404);
    expect((await api(nodes[0], 'DELETE', `/api/conversations/old/messages/${ids[1]}`)).status, 'another old one, on A').to.equal(204);

    await clients.closeAll();
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    // A alone first: what it shows comes from its own disk.
    nodes = [await startAt(ports, 0)];
    expect(await history(nodes[0], 'old')).to.deep.equal(ids.slice(2));
    nodes.push(await startAt(ports, 1));
    expect(await history(nodes[1], 'old')).to.not.include(oldest);
    await poll(async () => JSON.stringify(await history(nodes[1], 'old')) === JSON.stringify(ids.slice(2)), { timeoutMs: 10_000, what: 'B without both deleted' });
  });
});

describe('DATA_DIR: deletes beyond memory\'s window keep the ownership rules (AUTH=jwt)', function () {
  this.timeout(30_000);

  it('a customer deletes its own old message (204), not an agent\'s (403); an agent deletes any', async () => {
    const node = await startAt([await freePort()], 0, { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE });
    const ann = await mint({ sub: 'ann', role: 'customer' });
    const agent = await mint({ sub: 'agent7', role: 'agent' });
    const path = `/api/conversations/${(await authApi(node.httpUrl, ann, 'POST', '/api/conversations')).body.id as string}`;
    const own = (await authApi(node.httpUrl, ann, 'POST', `${path}/messages`, { content: 'mine' })).body.id as string;
    const theirs = (await authApi(node.httpUrl, agent, 'POST', `${path}/messages`, { content: 'the agent\'s' })).body.id as string;
    for (let n = 0; n < 120; n += 20) {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, k) => authApi(node.httpUrl, agent, 'POST', `${path}/messages`, { content: `later ${n + k}` })));
      expect(answers.map((a) => a.status)).to.deep.equal(Array(20).fill(201));
    }
    // Both are out of memory's window (100) now: only the disk has them.
    expect((await authApi(node.httpUrl, ann, 'DELETE', `${path}/messages/${theirs}`)).status).to.equal(403);
    expect((await authApi(node.httpUrl, ann, 'DELETE', `${path}/messages/${own}`)).status).to.equal(204);
    expect((await authApi(node.httpUrl, agent, 'DELETE', `${path}/messages/${theirs}`)).status).to.equal(204);
    await poll(async () => ((await authApi(node.httpUrl, agent, 'GET', path)).body.messages as unknown[]).length === 120, { timeoutMs: 5000, what: 'both deletes on disk' });
  });
});

describe('DATA_DIR: hostile disk catch-up frames', function () {
  this.timeout(30_000);

  it('counts garbage buckets, huge arrays and invalid writes as invalid, keeps the link, stores nothing of them; a valid old write is kept on disk', async () => {
    const [a] = await Promise.all([startAt([await freePort()], 0)]);
    const writer = await clients.connect(a);
    await writer.join('r', 'writer');
    const ids = await storm(writer, 'r', 150, 'm');
    const oldest = writer.messages('r')[0];
    const peer = await FakePeer.link(a);
    const sync = (frame: unknown) => peer.envelope({ t: 'sync' }, frame);
    const received = (kind: string) => peer.texts.filter((t) => t.includes(`"k":"${kind}"`));

    // A summary with a disk digest that differs: the instance sends its buckets (hsum).
    sync({ k: 'sum', entries: [{ c: 'r', d: '0', a: Date.now(), h: '0000000000000000' }], last: true });
    await poll(() => received('hsum').length > 0, { timeoutMs: 5000, what: 'an hsum from the instance' });
    // Buckets that all differ (we hold nothing): the instance gives everything it holds on disk
    // older than its memory window (the newest 100: those, the catch-up of memory gives).
    sync({ k: 'hsum', c: 'r', from: 0, to: 2 ** 40, b: [] });
    const given = () => received('hgive').reduce((n, t) => n + t.split('"type":"message"').length - 1, 0);
    await poll(() => given() >= 50, { timeoutMs: 5000, what: 'the 50 oldest messages in hgive' });
    expect(given(), 'none of memory\'s window').to.equal(50);

    const meshInvalid = async () => ((await a.health()).body.mesh as unknown as Record<string, number>).invalid ?? 0;
    const before = await meshInvalid();
    const now = Date.now();
    const stamp = (wall: number, counter = 0) => timestampId({ wall, counter }, peer.id);
    const good = { type: 'message', id: stamp(now), room: 'r', user: 'old', text: 'backdated, kept on disk', ts: (oldest.ts as number) - 1000 };
    const garbage = [
      { k: 'hsum', c: 'r', from: 0, to: 10, b: Array.from({ length: 5000 }, (_, k) => [k % 10, '0123456789abcdef']) },
      { k: 'hsum', c: 'r', from: 0, to: 10, b: [['x', 'y']] },
      { k: 'hsum', c: 'r', from: 0, to: 10, b: [[50, '0123456789abcdef']] },
      { k: 'hsum', c: 'r', from: 10, to: 0, b: [] },
      { k: 'hsum', c: 'x'.repeat(5000), from: 0, to: 10, b: [] },
      { k: 'hgive', c: 'r', writes: Array.from({ length: 2000 }, () => good) },
      { k: 'hgive', c: 5, writes: [] },
      {
        k: 'hgive',
        c: 'r',
        writes: [
          'not a write',
          { type: 'created', room: 'r', id: stamp(now + 1) },
          { ...good, id: stamp(now + 2), room: 'elsewhere', text: 'another room' },
          { ...good, id: stamp(now + 3), text: 'g'.repeat(100_000) },
          { ...good, id: stamp(now + 4), ts: now + 10 * 24 * 3600_000, text: 'ts from the future' },
          { ...good, id: stamp(now + 10 * 365 * 24 * 3600_000), text: 'clock from the future' },
          good,
        ],
      },
    ];
    for (const frame of garbage) sync(frame);
    sync({ k: 'hfuture', anything: 1 }); // a kind from a newer node: dropped, not invalid
    await poll(async () => (await meshInvalid()) - before >= 8, { timeoutMs: 5000, what: 'eight invalid frames counted' });
    expect(peer.closeCode, 'the link stays up').to.equal(null);
    expect((await a.health()).status).to.equal(200);
    // The valid write of the last frame: on disk once its commit lands.
    await poll(async () => (await history(a, 'r'))?.[0] === good.id, { timeoutMs: 5000, what: 'the valid old write on disk' });
    expect(await history(a, 'r')).to.deep.equal([good.id, ...ids]);
    expect(await history(a, 'elsewhere')).to.equal(null);
    await a.kill('SIGKILL');
    const again = await startAt([a.port], 0);
    expect(await history(again, 'r'), 'the old write is on disk').to.deep.equal([good.id, ...ids]);
  });
});
