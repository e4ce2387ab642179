/**
 * The pieces of the mesh view that need no sockets: the heartbeat payload (and that it stays
 * compatible with nodes that send the clock alone), the loopback check of /mesh/state, and the
 * state built from a peer table (a line A–B–C seen from A: C is known through B only).
 */
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { decodeHeartbeat, encodeHeartbeat } from '../../lib/links/heartbeat.js';
import { isLoopback } from '../../lib/http/mesh-state-api.js';
import { MeshStateView } from '../../lib/http/mesh-state.js';
import type { PeerView } from '../../lib/mesh/mesh.js';

describe('mesh view pieces', () => {
  it('heartbeat: the clock, then the load when given; the previous format reads as "load not reported"', () => {
    expect(encodeHeartbeat(1700000000000, null)).to.equal('1700000000000');
    expect(encodeHeartbeat(1700000000000, { connections: 3, rooms: 2 })).to.equal('1700000000000 3 2');
    expect(decodeHeartbeat(Buffer.from('1700000000000 3 2'))).to.deep.equal({ sentAt: 1700000000000, load: { connections: 3, rooms: 2 } });
    expect(decodeHeartbeat(Buffer.from('1700000000000'))).to.deep.equal({ sentAt: 1700000000000, load: null });
    for (const junk of ['', 'x', '1 2', '1 2 3 4', '-1', '1e3', '1 -2 3', '1'.repeat(16), '1 1234567890 1', ' 1', '1 2 3\n']) {
      expect(decodeHeartbeat(Buffer.from(junk)), JSON.stringify(junk)).to.equal(null);
    }
    // The largest payload is well within a ping's 125 bytes.
    expect(Buffer.byteLength(encodeHeartbeat(999999999999999, { connections: 999999999, rooms: 999999999 }))).to.be.below(126);
  });

  it('loopback: 127.0.0.0/8 and ::1, mapped or not; nothing else', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a), a).to.equal(true);
    for (const a of [undefined, '', '192.0.2.2', '::ffff:192.0.2.2', '10.0.0.1', '::', '128.0.0.1', '127.0.0.1.example']) expect(isLoopback(a), String(a)).to.equal(false);
  });

  it('state: itself, its peers (down ones too), nodes known only through a peer, links from both ends merged', () => {
    const now = Date.now();
    const row = (over: Partial<PeerView>): PeerView => ({
      id: null, address: '', state: 'up', since: now, lastSeen: now, rttMs: null, direction: 'out', clockOffsetMs: null, load: null, linkedTo: null, ...over,
    });
    const rows: PeerView[] = [
      row({ id: 'B', address: 'ws://b:1', rttMs: 3, clockOffsetMs: -2, load: { connections: 5, rooms: 1 }, linkedTo: ['A', 'C'] }),
      row({ id: 'D', address: 'ws://d:1', state: 'down', reason: 'gone' }),
      row({ id: null, address: 'ws://e:1', state: 'connecting' }),
      row({ id: 'B', address: 'ws://b-alias:1', state: 'down' }), // the same node under a second address
    ];
    const replicator = new EventEmitter<{ lag: [origin: string, ms: number] }>();
    const view = new MeshStateView({ nodeId: 'A', detectionMs: 4000, gateway: { connectionCount: 2, roomCount: 1 }, mesh: { view: () => rows }, replicator });
    replicator.emit('lag', 'B', 12);
    const s = view.state();
    const byKey = Object.fromEntries(s.nodes.map((n) => [n.key, n]));
    expect(Object.keys(byKey).sort()).to.deep.equal(['A', 'B', 'C', 'D', 'ws://e:1']);
    expect(byKey.A).to.include({ self: true, state: 'up', connections: 2, rooms: 1 });
    expect(byKey.B).to.include({ state: 'up', address: 'ws://b:1', rttMs: 3, clockSkewMs: -2, connections: 5, rooms: 1, replicationLagMs: 12 });
    expect(byKey.C).to.include({ state: 'indirect', address: null, connections: null });
    expect(byKey.D).to.include({ state: 'down', reason: 'gone', rttMs: null });
    expect(byKey['ws://e:1']).to.include({ id: null, state: 'connecting' });
    expect(s.links).to.deep.equal([
      { a: 'A', b: 'B', reportedBy: ['A', 'B'], rttMs: 3 },
      { a: 'B', b: 'C', reportedBy: ['B'], rttMs: null },
    ]);
  });
});
