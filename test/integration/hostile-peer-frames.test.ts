/**
 * Hostile peers on real processes: a peer (or anything that reaches /_mesh) is validated like
 * a client, cannot break the node's clock, cannot take over ids or addresses, cannot use a
 * browser page as a door, and cannot make catch-up of presence fail by its size.
 */
import { expect } from 'chai';
import { FakePeer } from '../helpers/fake-peer.js';
import { Instance, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';
import { api } from '../helpers/rest.js';
import { timestampId } from '../../lib/core/hybrid-clock.js';

const clients = new ClientPool();

afterEach(async () => {
  FakePeer.closeAll();
  await clients.closeAll();
  await stopAll();
});


const meshCounters = async (i: Instance) => (await i.health()).body.mesh as unknown as Record<string, number>;

describe('hostile peers: every field from a peer is bounded like a client\'s', function () {
  this.timeout(30_000);

  it('drops and counts writes with oversized names and texts, clocks far ahead or spent, and keeps storing local writes', async () => {
    const [a] = await fullMesh(1);
    const conv = (await api(a, 'POST', '/api/conversations')).body.id as string;
    const peer = await FakePeer.link(a);
    const now = Date.now();
    const id = (wall: number, counter = 0) => timestampId({ wall, counter }, peer.id);
    const bad = [
      { type: 'message', id: id(now), room: conv, user: 'u'.repeat(5000), text: 'long name', ts: now },
      { type: 'message', id: id(now + 1), room: conv, user: 'mallory', text: 't'.repeat(100_000), ts: now },
      { type: 'message', id: id(now + 2), room: conv, user: 'mallory', text: 'ts from the future', ts: now + 10 * 365 * 24 * 3600_000 },
      { type: 'message', id: id(now + 10 * 365 * 24 * 3600_000), room: conv, user: 'mallory', text: 'clock from the future', ts: now },
      { type: 'message', id: id(now + 3, 36 ** 4 - 1), room: conv, user: 'mallory', text: 'spent counter', ts: now },
    ];
    const before = (await meshCounters(a)).invalid ?? 0;
    for (const w of bad) peer.write(conv, w);
    await poll(async () => ((await meshCounters(a)).invalid ?? 0) - before >= 4, { what: 'the invalid writes counted in /health' });
    const history = (await api(a, 'GET', `/api/conversations/${conv}`)).body.messages as Array<{ content: string }>;
    expect(history.map((m) => m.content)).to.not.include.members(['long name', 'ts from the future', 'clock from the future']);
    expect(history.some((m) => m.content.length > 8000)).to.equal(false);
    // Whatever the spent counter did to the clock, local writes are still stored and readable.
    for (let i = 0; i < 3; i++) {
      const posted = await api(a, 'POST', `/api/conversations/${conv}/messages`, { sender: 'agent', content: `local ${i}` });
      expect(posted.status).to.equal(201);
    }
    const after = (await api(a, 'GET', `/api/conversations/${conv}`)).body.messages as Array<{ content: string }>;
    expect(after.map((m) => m.content)).to.include.members(['local 0', 'local 1', 'local 2']);
  });

  it('cuts a peer that keeps sending frames that fail validation', async () => {
    const [a] = await fullMesh(1);
    const peer = await FakePeer.link(a);
    for (let i = 0; i < 200 && peer.closeCode === null; i++) peer.raw(`not an envelope ${i}`);
    const code = await peer.waitClose(5000);
    expect(code).to.equal(4007);
    expect((await a.health()).status).to.equal(200);
  });

  it('drops a links advertisement of invented size and a presence event with a forged version', async () => {
    const [a] = await fullMesh(1);
    const peer = await FakePeer.link(a);
    const before = (await meshCounters(a)).invalid ?? 0;
    peer.envelope({ t: 'links' }, Array.from({ length: 5000 }, (_, i) => `ghost${i}`));
    peer.envelope({ t: 'room', id: 'p1', o: peer.id, h: 1, r: 'lobby', p: { c: 1, v: 1e300 } }, { type: 'presence', event: 'join', room: 'lobby', user: 'ghost' });
    peer.envelope({ t: 'room', id: 'p2', o: peer.id, h: 1, r: 'lobby', p: { c: 1, v: 1.5 } }, { type: 'presence', event: 'join', room: 'lobby', user: 'ghost2' });
    await poll(async () => ((await meshCounters(a)).invalid ?? 0) - before >= 3, { what: 'three invalid frames counted' });
    const client = await clients.connect(a);
    const joined = await client.join('lobby', 'alice');
    expect(joined.members).to.deep.equal(['alice']);
  });
});

describe('hostile peers: presence catch-up at scale', function () {
  this.timeout(60_000);

  it('a presence snapshot bigger than the peer frame limit is sent in chunks: the link stays up and every member is known', async () => {
    const env = { MAX_PEER_PAYLOAD_BYTES: '65536' };
    const [a] = await fullMesh(1, env);
    const long = (i: number) => `room-${i}-${'r'.repeat(110)}`;
    for (let c = 0; c < 20; c++) {
      const client = await clients.connect(a);
      for (let r = 0; r < 100; r++) client.send({ type: 'join', room: long(r), user: `user-${c}-${'u'.repeat(100)}` });
      await client.waitFor((f) => f.type === 'joined' && f.room === long(99), 10_000);
    }
    const b = await Instance.start({ env: { ...env, DISCOVERY: 'static', PEERS: a.peerAddress } });
    await b.waitForPeersUp([a.nodeId], 10_000);
    const probe = await clients.connect(b);
    await poll(async () => {
      const reply = await probe.request({ type: 'join', room: long(99), user: 'probe' }, (f) => f.type === 'joined' && f.room === long(99));
      return (reply.members as string[]).length === 21;
    }, { timeoutMs: 10_000, what: 'all 20 members of A known at B' });
    // The link never dropped while the snapshot went over.
    expect(b.logs.filter((l) => l.msg === 'peer down')).to.deep.equal([]);
    expect(a.logs.filter((l) => l.msg === 'peer down')).to.deep.equal([]);
  });
});
