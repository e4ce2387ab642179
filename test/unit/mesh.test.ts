/**
 * The mesh (peer table + router) over in-memory links: no sockets, no processes.
 */
import { expect } from 'chai';
import type { Logger } from '../../lib/log.js';
import { Mesh, type MeshOptions } from '../../lib/mesh/mesh.js';
import { MemoryNetwork, type MemoryTransport } from '../helpers/memory-transport.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

interface Node {
  id: string;
  mesh: Mesh;
  transport: MemoryTransport;
  address: string;
  /** Room events delivered here, as "room:payload". */
  rooms: string[];
  /** Writes delivered here, as "room:payload". */
  writes: string[];
  /** Typing events delivered here, as "room:payload". */
  typing: string[];
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Polls `condition` until it holds; the deadline is generous because a loaded CI machine can stall a process for longer than a link takes here. */
async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

describe('mesh over in-memory links', () => {
  let network: MemoryNetwork;
  let nodes: Node[];
  let nextPort: number;

  beforeEach(() => {
    network = new MemoryNetwork();
    nodes = [];
    nextPort = 1000;
  });

  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.mesh.close(50)));
  });

  function node(id: string, options: Partial<MeshOptions> = {}): Node {
    const transport = network.transport(id, nextPort++);
    const mesh = new Mesh(
      { nodeId: id, hopLimit: 2, seenTtlMs: 60_000, seenMax: 10_000, peerTimeoutMs: 4000, redialBaseMs: 5, redialMaxMs: 20, rejectedRetryMs: 1000, ...options },
      transport,
      silent,
    );
    const n: Node = { id, mesh, transport, address: transport.address, rooms: [], writes: [], typing: [] };
    mesh.on('typing', (room, payload) => n.typing.push(`${room}:${payload}`));
    mesh.on('room', (room, payload) => n.rooms.push(`${room}:${payload}`));
    mesh.on('write', (room, payload) => n.writes.push(`${room}:${payload}`));
    nodes.push(n);
    return n;
  }

  const linked = (a: Node, b: Node) => a.mesh.status().some((p) => p.id === b.id && p.state === 'up');
  const upRows = (a: Node) => a.mesh.status().filter((p) => p.state === 'up');

  /** Links each pair (the first dials the second) and waits until both ends are up and advertised. */
  async function link(...pairs: [Node, Node][]): Promise<void> {
    for (const [a, b] of pairs) a.mesh.addTarget(b.address, 'test');
    await until(() => pairs.every(([a, b]) => linked(a, b) && linked(b, a)), 'links up');
    for (let i = 0; i < 5; i++) await turn(); // the links advertisements arrive
  }

  it('in a line A-B-C, hop limit 1 stops at B and hop limit 2 reaches C, never back to the sender', async () => {
    for (const hops of [1, 2]) {
      const [a, b, c] = ['a', 'b', 'c'].map((id) => node(`${id}${hops}`, { hopLimit: hops }));
      await link([a, b], [b, c]);
      a.mesh.publish('lobby', `e${hops}`, Buffer.from('hello'));
      await until(() => b.rooms.length === 1, 'B delivers');
      for (let i = 0; i < 5; i++) await turn();
      expect(b.rooms).to.deep.equal(['lobby:hello']);
      expect(c.rooms).to.deep.equal(hops === 1 ? [] : ['lobby:hello']);
      expect(a.rooms).to.deep.equal([]);
      expect(a.mesh.counters.received, 'nothing came back to the origin').to.equal(0);
      expect(b.mesh.counters.forwarded).to.equal(hops === 1 ? 0 : 1);
    }
  });

  it('a desk-only write or room event goes to no peer of the previous protocol, neither from its origin nor forwarded', async () => {
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => node(id, { hopLimit: 2 }));
    await link([a, b], [b, c], [a, d]);
    // C and D did not announce `desk`: B's link to C, A's link to D.
    b.transport.linksTo('c')[0].desk = false;
    a.transport.linksTo('d')[0].desk = false;
    a.mesh.publishWrite('r', 'desk-1', Buffer.from('{"type":"read"}'), null, true);
    a.mesh.publishWrite('r', 'plain-1', Buffer.from('{"type":"message"}'), null);
    // A room event too (typing): desk-only, then a plain one.
    a.mesh.publish('r', 'desk-room-1', Buffer.from('typing'), undefined, true);
    a.mesh.publish('r', 'plain-room-1', Buffer.from('presence'));
    await until(() => c.writes.length === 1 && d.writes.length === 1 && b.writes.length === 2 && c.rooms.length === 1 && d.rooms.length === 1, 'the plain ones everywhere');
    for (let i = 0; i < 5; i++) await turn();
    expect(b.rooms).to.deep.equal(['r:typing', 'r:presence']);
    expect(c.rooms).to.deep.equal(['r:presence']);
    expect(d.rooms).to.deep.equal(['r:presence']);
    expect(b.writes).to.deep.equal(['r:{"type":"read"}', 'r:{"type":"message"}']);
    expect(c.writes).to.deep.equal(['r:{"type":"message"}']);
    expect(d.writes).to.deep.equal(['r:{"type":"message"}']);
  });

  it('delivers once per event id: copies that come another way are dropped as duplicates', async () => {
    // A ring A-B-C-D-A: C hears A's event from B and from D.
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => node(id, { hopLimit: 3 }));
    await link([a, b], [b, c], [c, d], [d, a]);
    a.mesh.publish('r', 'x1', Buffer.from('once'));
    await until(() => c.rooms.length === 1 && b.rooms.length === 1 && d.rooms.length === 1, 'everyone delivers');
    for (let i = 0; i < 10; i++) await turn();
    for (const n of [b, c, d]) expect(n.rooms, n.id).to.deep.equal(['r:once']);
    const duplicates = [b, c, d].reduce((sum, n) => sum + n.mesh.counters.duplicates, 0);
    expect(duplicates).to.be.greaterThan(0);
    expect(a.rooms).to.deep.equal([]);
  });

  it('does not forward to peers the origin is linked to (smart forwarding)', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((id) => node(id, { hopLimit: 2 }));
    await link([a, b], [b, c], [a, c]);
    a.mesh.publish('r', 'x2', Buffer.from('hi'));
    await until(() => b.rooms.length === 1 && c.rooms.length === 1, 'B and C deliver');
    for (let i = 0; i < 5; i++) await turn();
    for (const n of [b, c]) {
      expect(n.mesh.counters.forwarded, n.id).to.equal(0);
      expect(n.mesh.counters.skippedForwards, n.id).to.equal(1);
      expect(n.mesh.counters.duplicates, n.id).to.equal(0);
    }
  });

  for (const [first, second] of [['a', 'z'], ['z', 'a']]) {
    it(`keeps the link dialled by the smaller id on both sides when ${first} and ${second} dial each other at once`, async () => {
      const x = node(first);
      const y = node(second);
      // Both dials must be under way before either completes: otherwise the second node may
      // find itself linked already when its dial timer fires, and rightly not dial at all.
      network.holdConnects();
      x.mesh.addTarget(y.address, 'test');
      y.mesh.addTarget(x.address, 'test');
      await until(() => network.heldConnects === 2, 'both dials under way');
      network.releaseConnects();
      await until(() => linked(x, y) && linked(y, x), 'links up');
      await until(() => x.transport.links.length === 2 && y.transport.links.length === 2, 'both dials done');
      for (let i = 0; i < 5; i++) await turn();
      const small = x.id < y.id ? x : y;
      const large = small === x ? y : x;
      expect(upRows(small).map((p) => p.direction)).to.deep.equal(['out']);
      expect(upRows(large).map((p) => p.direction)).to.deep.equal(['in']);
      // Only the kept link carries new frames, so an event arrives once.
      small.mesh.publish('r', 'dup-1', Buffer.from('one'));
      large.mesh.publish('r', 'dup-2', Buffer.from('two'));
      await until(() => large.rooms.length === 1 && small.rooms.length === 1, 'both deliver');
      const kept = small.transport.linksTo(large.id).find((l) => l.dialerId === small.id)!;
      const lost = small.transport.linksTo(large.id).find((l) => l.dialerId === large.id)!;
      expect(kept.sent.some((f) => f.includes('dup-1'))).to.equal(true);
      expect(lost.sent.some((f) => f.includes('dup-1'))).to.equal(false);
    });
  }

  it('resolves publishWrite once the linked peers acknowledged, and each peer applies the write once', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((id) => node(id));
    await link([a, b], [a, c]);
    const started = Date.now();
    const result = await a.mesh.publishWrite('r', 'w1', Buffer.from('{"w":1}'), 10_000);
    expect(result).to.deep.equal({ acked: 2, expected: 2 });
    expect(Date.now() - started).to.be.below(500);
    expect(b.writes).to.deep.equal(['r:{"w":1}']);
    expect(c.writes).to.deep.equal(['r:{"w":1}']);
    // Without a timeout, nobody is asked for an acknowledgement.
    expect(await a.mesh.publishWrite('r', 'w2', Buffer.from('{}'), null)).to.deep.equal({ acked: 0, expected: 0 });
  });

  it('stops waiting for a peer that vanishes mid-flood, without waiting for the ack timeout', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((id) => node(id));
    await link([a, b], [a, c]);
    for (const l of c.transport.linksTo('a')) l.deaf = true; // C stops reading: it will never acknowledge
    const started = Date.now();
    const pending = a.mesh.publishWrite('r', 'w3', Buffer.from('{}'), 10_000);
    await until(() => b.writes.length === 1, 'B applies the write');
    c.transport.vanish();
    const result = await pending;
    // Resolved by the close, long before the 10 s timeout. (A link that closed is no longer
    // outstanding, so `acked` counts it: expected − still waiting, as it always has.)
    expect(result.expected).to.equal(2);
    expect(Date.now() - started).to.be.below(500);
    expect(a.mesh.status().find((p) => p.id === 'c')?.state).to.equal('down');
  });

  it('marks a vanished peer down, leaves it out of the reachable nodes, and links again when it is back', async () => {
    const [a, b] = ['a', 'b'].map((id) => node(id));
    const downs: string[] = [];
    a.mesh.on('peer-down', (id) => downs.push(id));
    await link([a, b]);
    expect([...a.mesh.reachableNodes()]).to.deep.equal(['b']);
    b.transport.vanish();
    await until(() => downs.length === 1, 'peer-down');
    expect([...a.mesh.reachableNodes()]).to.deep.equal([]);
    const again = network.transport('b', Number(new URL(b.address).port), 'b-2');
    const b2 = new Mesh({ nodeId: 'b', hopLimit: 2, seenTtlMs: 60_000, seenMax: 100, peerTimeoutMs: 4000, redialBaseMs: 5, redialMaxMs: 20, rejectedRetryMs: 1000 }, again, silent);
    nodes.push({ id: 'b', mesh: b2, transport: again, address: b.address, rooms: [], writes: [], typing: [] });
    await until(() => a.mesh.status().some((p) => p.id === 'b' && p.state === 'up'), 'redialled', 1000);
  });

  it('drops an address that turns out to be this node itself', async () => {
    const a = node('a');
    a.mesh.addTarget(a.address, 'test');
    await until(() => a.mesh.status().length === 0 && a.transport.links.length === 0, 'self address dropped');
    for (let i = 0; i < 5; i++) await turn();
    expect(a.mesh.status()).to.deep.equal([]);
  });

  it('lists an inbound node claiming the address of a live linked node apart, and keeps the linked one at its address', async () => {
    const [a, b] = ['a', 'b'].map((id) => node(id));
    await link([a, b]);
    // x dials a from b's address (its hello would claim b's port).
    const x = network.transport('x', Number(new URL(b.address).port));
    x.connect(a.address, () => {});
    await until(() => a.mesh.status().some((p) => p.id === 'x' && p.state === 'up'), 'x listed');
    expect(a.mesh.status().filter((p) => p.address === b.address).map((p) => [p.id, p.state])).to.deep.equal([['b', 'up']]);
    expect(a.mesh.status().find((p) => p.id === 'x')?.address).to.equal(`${b.address}#x`);
    expect(a.transport.linksTo('b').length).to.equal(1);
  });

  it('refuses another incarnation of a linked node while its link is alive, from its own address too', async () => {
    const [a, b] = ['a', 'b'].map((id) => node(id));
    await link([a, b]);
    const impostor = network.transport('b', Number(new URL(b.address).port), 'b-impostor');
    let closed: number | null = null;
    impostor.connect(a.address, (err, l) => l?.on('close', (code) => (closed = code)));
    await until(() => closed !== null, 'the impostor refused');
    expect(closed).to.equal(4003);
    expect(a.transport.linksTo('b').map((l) => l.incarnation)).to.deep.equal(['b-1']);
    expect(a.mesh.status().map((p) => [p.id, p.address, p.state])).to.deep.equal([['b', b.address, 'up']]);
  });
  it('typing goes straight to the nodes with members when all are linked, and is never sent to a node without desk', async () => {
    const [a, b, c, old] = ['ta', 'tb', 'tc', 'told'].map((id) => node(id));
    old.transport.desk = false;
    await link([a, b], [a, c], [b, c], [a, old]);
    a.mesh.publishTyping('lobby', 't1', Buffer.from('typing'), new Set([c.id, old.id]));
    await until(() => c.typing.length === 1, 'C gets it');
    for (let i = 0; i < 5; i++) await turn();
    expect(c.typing).to.deep.equal(['lobby:typing']);
    expect(b.typing, 'B has no member: nothing sent to it').to.deep.equal([]);
    expect(old.typing).to.deep.equal([]);
    const toOld = old.transport.linksTo(a.id)[0];
    expect(a.transport.linksTo(old.id).flatMap((l) => l.sent).map(String).filter((f) => f.startsWith('{"t":"typing"'))).to.deep.equal([]);
    expect(toOld.closed).to.equal(false);
  });

  it('typing to a node not linked is flooded with hops, and forwarded only to nodes with desk', async () => {
    const [a, b, c, old] = ['fa', 'fb', 'fc', 'fold'].map((id) => node(id));
    old.transport.desk = false;
    await link([a, b], [b, c], [b, old]);
    a.mesh.publishTyping('lobby', 't2', Buffer.from('typing'), new Set([c.id, old.id]));
    await until(() => c.typing.length === 1, 'C gets it through B');
    for (let i = 0; i < 5; i++) await turn();
    expect(b.typing).to.deep.equal(['lobby:typing']);
    expect(old.typing).to.deep.equal([]);
    expect(b.transport.linksTo(old.id).flatMap((l) => l.sent).map(String).filter((f) => f.startsWith('{"t":"typing"'))).to.deep.equal([]);
  });
});
