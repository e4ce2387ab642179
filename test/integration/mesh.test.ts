/**
 * The mesh over real processes and real sockets on 127.0.0.1, with static peers (no multicast).
 */
import { expect } from 'chai';
import { TestClient, type Frame } from '../helpers/client.js';
import { Instance, freePort, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';
import { tellsPresence } from '../helpers/presence.js';

const clients = new ClientPool();
const connect = (instance: Instance) => clients.connect(instance);

afterEach(async () => {
  await clients.closeAll();
  await stopAll();
});

/**
 * Every client sends `count` messages; then, once it has all of them, a marker. When every
 * client holds every marker, every path through the mesh has been flushed (links are FIFO),
 * so any duplicate would already have arrived.
 */
async function exchangeAndCount(room: string, members: TestClient[], count: number): Promise<void> {
  const texts: string[] = [];
  members.forEach((c, i) => {
    for (let k = 0; k < count; k++) texts.push(`m-${i}-${k}`);
  });
  members.forEach((c, i) => {
    for (let k = 0; k < count; k++) c.send({ type: 'message', room, text: `m-${i}-${k}` });
  });
  const hasAll = (c: TestClient, list: string[]) => list.every((t) => c.messages(room).some((f) => f.text === t));
  await poll(() => members.every((c) => hasAll(c, texts)), { timeoutMs: 10_000, what: 'every message at every member' });
  members.forEach((c, i) => c.send({ type: 'message', room, text: `marker-${i}` }));
  const markers = members.map((_, i) => `marker-${i}`);
  await poll(() => members.every((c) => hasAll(c, markers)), { timeoutMs: 10_000, what: 'every marker at every member' });
  for (const [i, c] of members.entries()) {
    const ids = c.messages(room).map((f) => f.id as string);
    expect(new Set(ids).size, `client ${i} got a duplicate`).to.equal(ids.length);
    const ours = c.messages(room).filter((f) => texts.includes(f.text as string) || markers.includes(f.text as string));
    expect(ours.length, `client ${i} message count`).to.equal(texts.length + markers.length);
  }
}

describe('mesh: two instances, static peers', () => {
  it('links exactly once when both dial each other, and a message reaches both clients once', async () => {
    const [a, b] = await fullMesh(2);
    for (const [self, other] of [[a, b], [b, a]] as const) {
      const { body } = await self.health();
      expect(body.peers, `peers of ${self.port}`).to.have.length(1);
      expect(body.peers[0]).to.include({ id: other.nodeId, state: 'up', address: `ws://127.0.0.1:${other.port}` });
    }
    // The first ping goes out as the link comes up, so a round-trip time is known at once.
    await poll(async () => typeof (await a.health()).body.peers[0].rttMs === 'number', { what: 'an rtt' });
    // One link: the direction A sees is the opposite of what B sees.
    const [pa] = (await a.health()).body.peers;
    const [pb] = (await b.health()).body.peers;
    expect([pa.direction, pb.direction].sort()).to.deep.equal(['in', 'out']);

    const alice = await connect(a);
    const bob = await connect(b);
    await alice.join('lobby', 'alice');
    await bob.join('lobby', 'bob');
    await alice.waitFor((f) => tellsPresence(f, 'join', 'bob'));
    const echo = await alice.say('lobby', 'hello!');
    const atBob = await bob.waitFor((f) => f.type === 'message' && f.text === 'hello!');
    expect(atBob).to.deep.equal(echo);
    expect(atBob).to.include({ room: 'lobby', user: 'alice' });
    await exchangeAndCount('lobby', [alice, bob], 20);
  });

  it('carries presence across instances, including the leave of a closed connection', async () => {
    const [a, b] = await fullMesh(2);
    const alice = await connect(a);
    const bob = await connect(b);
    await alice.join('r', 'alice');
    await bob.join('r', 'bob');
    await alice.waitFor((f) => tellsPresence(f, 'join', 'bob'));
    await bob.request({ type: 'leave', room: 'r' }, (f) => f.type === 'left');
    await alice.waitFor((f) => tellsPresence(f, 'leave', 'bob'));
    await bob.join('r', 'bob');
    await bob.close();
    // The join and the leave may reach A in one event-loop turn: then alice gets them as one
    // batched frame (presence-batcher.ts), where bob ends the turn among those who `left`.
    const leaves = () => alice.frames.filter((f) => tellsPresence(f, 'leave', 'bob'));
    await poll(() => leaves().length === 2, { what: 'presence leave after bob disconnects' });
  });
});

describe('mesh: three instances, full mesh', () => {
  it('delivers every message exactly once to every member on every instance', async () => {
    const nodes = await fullMesh(3);
    const members: TestClient[] = [];
    for (const [i, node] of nodes.entries()) {
      for (let k = 0; k < 2; k++) {
        const c = await connect(node);
        await c.join('general', `u${i}-${k}`);
        members.push(c);
      }
    }
    await exchangeAndCount('general', members, 10);
  });

  it('keeps rooms apart: a member of another room gets nothing', async () => {
    const [a, b, c] = await fullMesh(3);
    const inA = await connect(a);
    const inB = await connect(b);
    const other = await connect(c);
    await inA.join('one', 'x');
    await inB.join('one', 'y');
    await other.join('two', 'z');
    await inA.say('one', 'for room one');
    await inB.waitFor((f) => f.text === 'for room one');
    // Positive control on the same connection: its own message comes back, and nothing of room one came before.
    await other.say('two', 'control');
    expect(other.frames.filter((f) => f.room === 'one')).to.deep.equal([]);
  });
});

describe('mesh: forwarding cost', () => {
  const meshCounters = async (nodes: Instance[]) => Promise.all(nodes.map(async (n) => (await n.health()).body.mesh));

  it('forwards nothing in a full mesh: the origin reached everyone itself, so no duplicates', async () => {
    const nodes = await fullMesh(3);
    const members = await Promise.all(nodes.map(async (n, i) => {
      const c = await connect(n);
      await c.join('cost', `u${i}`);
      return c;
    }));
    // Links are advertised right after they come up; wait until a message costs no forward.
    let k = 0;
    await poll(async () => {
      const before = await meshCounters(nodes);
      const text = `probe-${k++}`;
      await members[0].say('cost', text);
      await Promise.all(members.map((m) => m.waitFor((f) => f.text === text)));
      const after = await meshCounters(nodes);
      return after.every((c, i) => c.forwarded === before[i].forwarded);
    }, { timeoutMs: 5000, what: 'links advertised' });
    const before = await meshCounters(nodes);
    await exchangeAndCount('cost', members, 5);
    const after = await meshCounters(nodes);
    after.forEach((c, i) => {
      expect(c.forwarded - before[i].forwarded, `forwards at node ${i}`).to.equal(0);
      expect(c.duplicates - before[i].duplicates, `duplicates at node ${i}`).to.equal(0);
      expect(c.skippedForwards - before[i].skippedForwards, `skipped at node ${i}`).to.be.above(0);
    });
  });
});

describe('mesh: line topology A–B–C and the hop limit', () => {
  async function line(hops?: number): Promise<[Instance, Instance, Instance]> {
    const [pa, pb, pc] = await Promise.all([freePort(), freePort(), freePort()]);
    const extra = hops ? { MESH_HOPS: String(hops) } : {};
    // B knows nobody: A and C dial it. A and C never learn of each other.
    const b = await Instance.start({ port: pb, env: { DISCOVERY: 'off', ...extra } });
    const a = await Instance.start({ port: pa, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${pb}`, ...extra } });
    const c = await Instance.start({ port: pc, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${pb}`, ...extra } });
    await b.waitForPeersUp([a.nodeId, c.nodeId]);
    await a.waitForPeersUp([b.nodeId]);
    await c.waitForPeersUp([b.nodeId]);
    expect((await a.health()).body.peers.map((p) => p.id)).to.deep.equal([b.nodeId]);
    expect((await c.health()).body.peers.map((p) => p.id)).to.deep.equal([b.nodeId]);
    return [a, b, c];
  }

  it('delivers A → C through B, exactly once, with the default hop limit', async () => {
    const [a, b, c] = await line();
    const ca = await connect(a);
    const cb = await connect(b);
    const cc = await connect(c);
    await ca.join('line', 'a');
    await cb.join('line', 'b');
    await cc.join('line', 'c');
    await exchangeAndCount('line', [ca, cb, cc], 5);
    // B carried A's and C's messages across: it forwarded them, A and C forwarded nothing.
    const [ma, mb, mc] = await Promise.all([a, b, c].map(async (n) => (await n.health()).body.mesh));
    expect(mb.forwarded).to.be.at.least(12);
    expect([ma.forwarded, mc.forwarded]).to.deep.equal([0, 0]);
  });

  it('does not reach C with a hop limit of 1', async () => {
    const [a, b, c] = await line(1);
    const ca = await connect(a);
    const cb = await connect(b);
    const cc = await connect(c);
    await ca.join('line', 'a');
    await cb.join('line', 'b');
    await cc.join('line', 'c');
    await ca.say('line', 'from A');
    await cb.waitFor((f: Frame) => f.text === 'from A');
    // B → C is one link and FIFO: had B forwarded "from A", C would get it before B's own message.
    await cb.say('line', 'from B');
    await cc.waitFor((f) => f.text === 'from B');
    expect(cc.messages('line').map((f) => f.text)).to.deep.equal(['from B']);
    // And the other direction, to be sure the limit is symmetric.
    await cc.say('line', 'from C');
    await cb.waitFor((f) => f.text === 'from C');
    await cb.say('line', 'from B again');
    await ca.waitFor((f) => f.text === 'from B again');
    expect(ca.messages('line').map((f) => f.text)).to.deep.equal(['from A', 'from B', 'from B again']);
  });
});

describe('mesh: failures', () => {
  it('shows a kill -9 peer down within 5 s, keeps serving, and relinks a restart within 5 s', async () => {
    const [a, b, c] = await fullMesh(3);
    const oldId = c.nodeId;
    const killedAt = Date.now();
    await c.kill('SIGKILL');
    for (const survivor of [a, b]) {
      await survivor.waitForPeer((p) => p.id === oldId && p.state === 'down', 5000, 'the killed peer down');
    }
    expect(Date.now() - killedAt).to.be.below(5000);
    const ca = await connect(a);
    const cb = await connect(b);
    await ca.join('room', 'a');
    await cb.join('room', 'b');
    await ca.say('room', 'still here');
    await cb.waitFor((f) => f.text === 'still here');

    const restarted = await Instance.start({ port: c.port, env: c.options.env });
    const startedAt = Date.now();
    expect(restarted.nodeId).to.not.equal(oldId);
    await a.waitForPeersUp([restarted.nodeId], 5000);
    await b.waitForPeersUp([restarted.nodeId], 5000);
    expect(Date.now() - startedAt).to.be.below(5000);
    // The new node replaced the old one at that address: one row, the new id.
    const rows = (await a.health()).body.peers.filter((p) => p.address === `ws://127.0.0.1:${c.port}`);
    expect(rows.map((p) => [p.id, p.state])).to.deep.equal([[restarted.nodeId, 'up']]);
    const cc = await connect(restarted);
    await cc.join('room', 'c');
    await cc.say('room', 'back again');
    await ca.waitFor((f) => f.text === 'back again');
    await cb.waitFor((f) => f.text === 'back again');
  });

  it('marks a hung (SIGSTOP) peer down by heartbeat, and relinks after SIGCONT', async () => {
    const env = { PEER_HEARTBEAT_MS: '250', PEER_TIMEOUT_MS: '1500' };
    const [a, b] = await fullMesh(2, env);
    b.signal('SIGSTOP');
    const stoppedAt = Date.now();
    // TCP stays up: only the application heartbeat can notice.
    await a.waitForPeer((p) => p.id === b.nodeId && p.state === 'down', 5000, 'the hung peer down');
    expect(Date.now() - stoppedAt).to.be.at.least(1000);
    b.signal('SIGCONT');
    await a.waitForPeersUp([b.nodeId], 8000);
    await b.waitForPeersUp([a.nodeId], 8000);
    const ca = await connect(a);
    const cb = await connect(b);
    await ca.join('r', 'a');
    await cb.join('r', 'b');
    await cb.say('r', 'awake');
    await ca.waitFor((f) => f.text === 'awake');
  });

  it('stays up while a paused peer times out several redials mid-upgrade, and relinks after SIGCONT', async function () {
    this.timeout(30_000);
    // A stopped process still completes TCP connects (the kernel accepts into its backlog),
    // but never answers the upgrade: every redial ends at the handshake deadline, with the
    // socket still connecting. That once left an 'error' with no listener and killed A.
    const env = { PEER_HEARTBEAT_MS: '200', PEER_TIMEOUT_MS: '800', PEER_HANDSHAKE_TIMEOUT_MS: '300', REDIAL_BASE_MS: '50', REDIAL_MAX_MS: '200' };
    const [a, b] = await fullMesh(2, env);
    b.signal('SIGSTOP');
    try {
      await a.waitForPeer((p) => p.id === b.nodeId && p.state === 'down', 5000, 'the paused peer down');
      const timedOut = () => a.logs.filter((l) => l.msg === 'dial failed' && /timed out|closed before/i.test(String(l.reason))).length;
      await poll(() => timedOut() >= 4 || !a.alive, { timeoutMs: 15_000, what: 'several redials of the paused peer to time out' });
      expect(a.alive, `A exited (code ${a.exitCode}, signal ${a.exitSignal}):\n${a.output.slice(-20).join('\n')}`).to.equal(true);
      expect(timedOut()).to.be.at.least(4);
    } finally {
      b.signal('SIGCONT');
    }
    await a.waitForPeersUp([b.nodeId], 10_000);
    await b.waitForPeersUp([a.nodeId], 10_000);
    expect(a.alive && b.alive).to.equal(true);
    const ca = await connect(a);
    const cb = await connect(b);
    await ca.join('r', 'a');
    await cb.join('r', 'b');
    await cb.say('r', 'back');
    await ca.waitFor((f) => f.text === 'back');
  });

  it('cuts a peer link that stops draining (slow peer) at its buffer cap, and catch-up repairs what it missed', async function () {
    this.timeout(60_000);
    // The heartbeat would take 60 s: only the send-buffer cap can cut this link.
    const env = { MAX_PEER_BUFFER_BYTES: '262144', PEER_TIMEOUT_MS: '60000', RATE_LIMIT_PER_SEC: '100000', RATE_LIMIT_BURST: '100000' };
    const [a, b] = await fullMesh(2, env);
    const writer = await connect(a);
    await writer.join('flood', 'writer');
    const rssBefore = (await a.health()).body.memory.rssBytes;
    b.signal('SIGSTOP');
    try {
      // B reads nothing: once the kernel's socket buffers are full, A's unsent bytes grow.
      const pad = 'x'.repeat(7000);
      let sent = 0;
      await poll(async () => {
        for (let i = 0; i < 200; i++) writer.send({ type: 'message', room: 'flood', text: `${sent++}:${pad}` });
        await writer.waitFor((f) => f.text === `${sent - 1}:${pad}`, 10_000);
        return a.logs.some((l) => l.msg === 'peer down' && l.code === 4013);
      }, { timeoutMs: 30_000, intervalMs: 1, what: 'A to cut the link to the stopped peer at its buffer cap' });
      const row = (await a.health()).body.peers.find((p) => p.id === b.nodeId)!;
      expect(row.state).to.equal('down');
      expect((await a.health()).body.memory.rssBytes - rssBefore, 'RSS growth at A').to.be.below(96 * 1024 * 1024);
    } finally {
      b.signal('SIGCONT');
    }
    await a.waitForPeersUp([b.nodeId], 15_000);
    await b.waitForPeersUp([a.nodeId], 15_000);
    // Catch-up brings B every message it missed: its history of the room equals A's.
    const historyAt = async (n: Instance) => {
      const res = await fetch(`${n.httpUrl}/api/conversations/flood`);
      return ((await res.json()) as { messages: Array<{ id: string }> }).messages.map((m) => m.id);
    };
    await poll(async () => JSON.stringify(await historyAt(b)) === JSON.stringify(await historyAt(a)), { timeoutMs: 15_000, what: "B's history to equal A's after catch-up" });
    expect((await historyAt(b)).length).to.be.above(0);
  });

  it('links ten nodes started at once with exactly one link per pair', async function () {
    this.timeout(60_000);
    const nodes = await fullMesh(10);
    const ids = new Map(nodes.map((n) => [n.nodeId, n]));
    // Read every node's table until they agree (a snapshot can catch a link mid-handshake
    // on a loaded machine); what must hold in the end is one link per pair.
    let problems: string[] = [];
    const settled = await poll(
      async () => {
        const views = await Promise.all(nodes.map(async (n) => ({ n, peers: (await n.health()).body.peers })));
        problems = [];
        for (const { n, peers } of views) {
          if (peers.length !== 9 || new Set(peers.map((p) => p.id)).size !== 9) problems.push(`${n.port} has ${peers.length} rows`);
          for (const p of peers) {
            if (p.state !== 'up') problems.push(`${n.port} sees ${p.id} ${p.state}`);
            const back = views.find((v) => v.n === ids.get(p.id!))?.peers.find((q) => q.id === n.nodeId);
            // The other side holds the same single link, seen from the other end.
            if (!back || [p.direction, back.direction].sort().join() !== 'in,out') problems.push(`link ${n.port}-${p.id}: ${p.direction}/${back?.direction}`);
          }
        }
        return problems.length === 0;
      },
      { timeoutMs: 10_000, what: 'one link per pair' },
    ).catch(() => false);
    expect(problems, 'problems').to.deep.equal([]);
    expect(settled).to.equal(true);
  });
});

describe('mesh: simultaneous dial', () => {
  it('loses nothing sent after the link first shows up, while the duplicate link is resolved', async function () {
    this.timeout(60_000);
    for (let round = 0; round < 3; round++) {
      const [pa, pb] = await Promise.all([freePort(), freePort()]);
      const [a, b] = await Promise.all([
        Instance.start({ port: pa, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${pb}` } }),
        Instance.start({ port: pb, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${pa}` } }),
      ]);
      const sender = await connect(a);
      const receiver = await connect(b);
      await sender.join('race', 's');
      await receiver.join('race', 'r');
      // Publish every few ms from before the link exists until well after it settled.
      let upAt = Infinity;
      let n = 0;
      const sentAt: number[] = [];
      const timer = setInterval(() => {
        sentAt.push(Date.now());
        sender.send({ type: 'message', room: 'race', text: `n${n++}` });
      }, 3);
      try {
        await poll(async () => (await a.health()).body.peers.some((p) => p.state === 'up'), { intervalMs: 1, what: 'link up at A' });
        upAt = Date.now();
        await poll(() => Date.now() - upAt > 2500, { what: 'the duplicate grace to pass' });
      } finally {
        clearInterval(timer);
      }
      const last = `n${n - 1}`;
      await sender.waitFor((f) => f.text === last);
      await receiver.waitFor((f) => f.text === last, 5000, `the last message at B (round ${round})`);
      const got = new Set(receiver.messages('race').map((f) => f.text));
      const missing = sentAt.map((t, i) => [t, `n${i}`] as const).filter(([t, text]) => t > upAt + 50 && !got.has(text));
      expect(missing.map(([, text]) => text), `round ${round}: sent after the link was up but never arrived`).to.deep.equal([]);
      await clients.closeAll();
      await stopAll();
    }
  });
});

describe('mesh: authentication', () => {
  it('links peers that share MESH_SECRET', async () => {
    const [a, b] = await fullMesh(2, { MESH_SECRET: 'correct horse battery' });
    const ca = await connect(a);
    const cb = await connect(b);
    await ca.join('s', 'a');
    await cb.join('s', 'b');
    await ca.say('s', 'secret hello');
    await cb.waitFor((f) => f.text === 'secret hello');
  });

  it('refuses a peer with the wrong secret, shows it rejected, and retries slowly', async () => {
    const [pa, pb] = await Promise.all([freePort(), freePort()]);
    const common = { DISCOVERY: 'static', PEER_REJECTED_RETRY_MS: '400' };
    const a = await Instance.start({ port: pa, env: { ...common, MESH_SECRET: 'secret-number-one', PEERS: `ws://127.0.0.1:${pb}` } });
    const b = await Instance.start({ port: pb, env: { ...common, MESH_SECRET: 'secret-number-two', PEERS: `ws://127.0.0.1:${pa}` } });
    await a.waitForPeer((p) => p.state === 'rejected', 5000, 'a rejected peer');
    await b.waitForPeer((p) => p.state === 'rejected', 5000, 'a rejected peer');
    const refusals = () => a.logs.filter((l) => l.msg === 'peer rejected' && l.direction === 'out');
    await poll(() => refusals().length >= 3, { timeoutMs: 5000, what: 'three refusals' });
    const times = refusals().map((l) => Date.parse(l.time as string));
    for (let i = 1; i < 3; i++) expect(times[i] - times[i - 1], 'retry spacing').to.be.at.least(350);
    for (const [n, other] of [[a, b], [b, a]] as const) {
      const peers = (await n.health()).body.peers;
      expect(peers.some((p) => p.state === 'up')).to.equal(false);
      // Every row names the real peer: its id and its real port, never a made-up one.
      for (const p of peers) expect([p.id, p.address]).to.deep.equal([other.nodeId, `ws://127.0.0.1:${other.port}`]);
    }
    expect(a.alive && b.alive).to.equal(true);
  });

  it('refuses a second process claiming the id of a node that is linked and alive', async () => {
    const [pa, pb, pc] = await Promise.all([freePort(), freePort(), freePort()]);
    const a = await Instance.start({ port: pa, env: { DISCOVERY: 'off' } });
    const b = await Instance.start({ port: pb, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${pa}`, NODE_ID: 'same-id' } });
    await a.waitForPeersUp(['same-id']);
    const impostor = await Instance.start({ port: pc, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${pa}`, NODE_ID: 'same-id', PEER_REJECTED_RETRY_MS: '60000' } });
    await a.waitForLog((l) => l.msg === 'peer rejected' && l.reason === 'node id already linked from another address', 5000, 'the refusal');
    await impostor.waitForPeer((p) => p.state === 'rejected', 5000, 'the impostor refused');
    // The real one keeps its link, and messages still flow through it.
    const row = (await a.health()).body.peers.find((p) => p.state === 'up');
    expect(row).to.include({ id: 'same-id', address: `ws://127.0.0.1:${pb}` });
    const ca = await connect(a);
    const cb = await connect(b);
    await ca.join('r', 'a');
    await cb.join('r', 'b');
    await cb.say('r', 'from the real one');
    await ca.waitFor((f) => f.text === 'from the real one');
  });

  it('refuses a peer without a secret when this node has one', async () => {
    const [pa, pb] = await Promise.all([freePort(), freePort()]);
    const a = await Instance.start({ port: pa, env: { DISCOVERY: 'off', MESH_SECRET: 'only-with-secret' } });
    const b = await Instance.start({ port: pb, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${pa}` } });
    await b.waitForPeer((p) => p.state === 'rejected' && p.id === a.nodeId, 5000, 'the peer refusing us');
    await a.waitForPeer((p) => p.state === 'rejected' && p.id === b.nodeId && p.address === `ws://127.0.0.1:${pb}`, 5000, 'the refused peer');
  });
});
