/**
 * Presence snapshots on the wire: whole tables in old-style frames, a table too big for a
 * frame in parts applied together once complete, and an old-style single frame still applied. In memory: ClusterPresence over the mesh on
 * in-memory links.
 */
import { expect } from 'chai';
import type { Logger } from '../../lib/log.js';
import { PresenceTable, type PresenceMember, type PresenceSnapshot } from '../../lib/core/presence-table.js';
import { Mesh } from '../../lib/mesh/mesh.js';
import { ClusterPresence } from '../../lib/replication/cluster-presence.js';
import { SnapshotParts, snapshotFrames } from '../../lib/replication/presence-snapshots.js';
import { SyncChannel } from '../../lib/replication/sync-channel.js';
import type { PresencePart } from '../../lib/replication/sync-codec.js';
import { MemoryNetwork, type MemoryTransport } from '../helpers/memory-transport.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

const member = (i: number, room = `room-${i % 100}-${'r'.repeat(110)}`): PresenceMember => ({ conn: Math.floor(i / 100), room, user: `user-${Math.floor(i / 100)}-${'u'.repeat(100)}` });
const bigTable = (origin: string, n: number, version = 5): PresenceSnapshot => ({ origin, version, members: Array.from({ length: n }, (_, i) => member(i)) });

describe('presence snapshots on the wire', () => {
  it('sends small tables whole, several per old-style frame, and a table too big for a frame in numbered parts, every frame within the budget', () => {
    const small = [{ origin: 'n1', version: 1, members: [member(0)] }, { origin: 'n2', version: 2, members: [] }];
    const frames = snapshotFrames([...small, bigTable('n3', 2000)], 16 * 1024, () => 9);
    expect(frames[frames.length - 1]).to.deep.equal({ k: 'presence', tables: small });
    const parts = frames.filter((f): f is PresencePart => f.k === 'presence-part');
    expect(parts.length).to.be.above(10);
    expect(parts.map((p) => p.n)).to.deep.equal(parts.map((_, i) => i));
    expect(parts.map((p) => p.last)).to.deep.equal(parts.map((_, i) => i === parts.length - 1));
    expect(new Set(parts.map((p) => `${p.id}/${p.origin}/${p.version}`))).to.deep.equal(new Set(['9/n3/5']));
    for (const f of frames) expect(Buffer.byteLength(JSON.stringify(f))).to.be.at.most(16 * 1024);
    expect(parts.flatMap((p) => p.members)).to.deep.equal(bigTable('n3', 2000).members);
  });

  it('puts parts back together only when the last came, in order, and drops a sequence out of order', () => {
    const parts = snapshotFrames([bigTable('n3', 500)], 8 * 1024, () => 1) as PresencePart[];
    const assembler = new SnapshotParts(128);
    for (const p of parts.slice(0, -1)) expect(assembler.add('peer', p)).to.equal(null);
    expect(assembler.add('peer', parts[parts.length - 1])).to.deep.equal(bigTable('n3', 500));
    expect(assembler.size).to.equal(0);
    // A part skipped, a forged version mid-way, a name over the limit: the sequence is dropped.
    expect(assembler.add('peer', parts[0])).to.equal(null);
    expect(assembler.add('peer', parts[2])).to.equal('invalid');
    expect(assembler.add('peer', parts[1])).to.equal('invalid');
    expect(assembler.add('peer', { ...parts[0], version: 1e300 })).to.equal('invalid');
    expect(assembler.add('peer', { ...parts[0], members: [{ conn: 1, room: 'x'.repeat(129), user: 'u' }] })).to.equal('invalid');
    // Two peers' sequences with the same id do not mix.
    expect(assembler.add('p1', parts[0])).to.equal(null);
    expect(assembler.add('p2', parts[0])).to.equal(null);
    expect(assembler.size).to.equal(2);
    assembler.forget('p1');
    expect(assembler.size).to.equal(1);
  });
});

describe('ClusterPresence over in-memory links: snapshots at link-up', () => {
  let network: MemoryNetwork;
  const closers: Array<() => Promise<void>> = [];
  let port = 3000;

  beforeEach(() => {
    network = new MemoryNetwork();
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()));
  });

  function node(id: string, maxPeerPayloadBytes = 64 * 1024) {
    const transport: MemoryTransport = network.transport(id, port++);
    const mesh = new Mesh({ nodeId: id, hopLimit: 1, seenTtlMs: 60_000, seenMax: 10_000, peerTimeoutMs: 4000, redialBaseMs: 5000, redialMaxMs: 5000, rejectedRetryMs: 1000 }, transport, silent);
    const sync = new SyncChannel(mesh, silent);
    const presence = new ClusterPresence(new PresenceTable(id), mesh, sync, { maxNameLength: 128, maxPeerPayloadBytes }, silent);
    closers.push(async () => {
      presence.close();
      sync.close();
      await mesh.close(50);
    });
    return { id, mesh, transport, sync, presence, table: presence.table };
  }

  async function until(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 2000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  it('a table bigger than the peer frame limit crosses in frames under the limit and is applied whole, at once', async () => {
    const a = node('a');
    const b = node('b');
    for (let i = 0; i < 2000; i++) a.table.localJoin(member(i).conn, member(i).room, member(i).user);
    const seen: number[] = [];
    b.presence.on('change', () => seen.push(b.table.members(member(99).room).length));
    a.mesh.addTarget(b.transport.address, 'test');
    await until(() => b.table.members(member(99).room).length === 20, 'all 20 members of A known at B');
    // Applied as one snapshot: no one saw a room with part of A's members.
    expect(new Set(seen)).to.deep.equal(new Set([20]));
    const sent = a.transport.linksTo('b')[0].sent;
    expect(sent.length).to.be.above(10);
    for (const frame of sent) expect(frame.length).to.be.below(64 * 1024 / 2);
    expect(b.mesh.counters.invalid).to.equal(0);
  });

  it('still applies an old-style snapshot: every table in one presence frame', async () => {
    const a = node('a');
    const b = node('b');
    a.mesh.addTarget(b.transport.address, 'test');
    await until(() => a.mesh.status().some((p) => p.id === 'b' && p.state === 'up') && b.mesh.reachableNodes().has('a'), 'linked');
    // Newer than what A's link-up snapshot said (A's versions start at its clock, in microseconds).
    const version = (Date.now() + 1000) * 1000;
    a.sync.send('b', { k: 'presence', tables: [{ origin: 'a', version, members: [{ conn: 1, room: 'lobby', user: 'ann' }, { conn: 2, room: 'lobby', user: 'bob' }] }] });
    await until(() => b.table.members('lobby').length === 2, 'the old-style snapshot applied');
    expect(b.table.members('lobby')).to.deep.equal(['ann', 'bob']);
    // A table with a forged version or an oversized name is dropped and counted.
    a.sync.send('b', { k: 'presence', tables: [{ origin: 'a', version: Number.MAX_SAFE_INTEGER, members: [] }] });
    a.sync.send('b', { k: 'presence', tables: [{ origin: 'a', version: version + 1, members: [{ conn: 1, room: 'lobby', user: 'u'.repeat(129) }] }] });
    await until(() => b.mesh.counters.invalid === 2, 'two invalid snapshots counted');
    expect(b.table.members('lobby')).to.deep.equal(['ann', 'bob']);
  });
});
