/**
 * Resume never claims more than it gives (property): three nodes (mesh + replicator + store)
 * over in-memory links, messages written on random nodes, partitions that come and heal, and
 * clients that lose their node and resume on another with `since`. Whatever the interleaving,
 * a client never misses a message that sorts before its newest one unless a `joined` told it
 * `gap`: the answer is either complete or says so.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ConversationStore, type StoredMessage } from '../../lib/core/conversation-store.js';
import type { Logger } from '../../lib/log.js';
import { Mesh } from '../../lib/mesh/mesh.js';
import { Replicator } from '../../lib/replication/replicator.js';
import { SyncChannel } from '../../lib/replication/sync-channel.js';
import { MemoryNetwork, MemoryPartitions, type MemoryTransport } from '../helpers/memory-transport.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const ROOM = 'r';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const before = (a: { ts: number; id: string }, b: { ts: number; id: string }) => a.ts < b.ts || (a.ts === b.ts && a.id < b.id);

interface Node {
  id: string;
  transport: MemoryTransport;
  mesh: Mesh;
  store: ConversationStore;
  replicator: Replicator;
  sync: SyncChannel;
}

/** A client: where it is attached, what it got (all connections together), and what it was excused. */
interface Client {
  at: Node | null;
  got: Map<string, { ts: number; id: string }>;
  /** Messages sorting before this were excused by a `gap` answer. */
  excusedBefore: { ts: number; id: string } | null;
  listener: ((room: string, payload: Buffer) => void) | null;
}

type Op =
  | { kind: 'write'; node: number; backdateMs: number }
  | { kind: 'split'; a: number; b: number }
  | { kind: 'heal' }
  | { kind: 'move'; client: number; to: number }
  | { kind: 'wait'; turns: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('write' as const), node: fc.nat(2), backdateMs: fc.oneof(fc.constant(0), fc.constant(0), fc.nat(3000)) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('split' as const), a: fc.nat(2), b: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('heal' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('move' as const), client: fc.nat(1), to: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('wait' as const), turns: fc.integer({ min: 1, max: 6 }) }) },
);

function makeNode(network: MemoryNetwork, id: string, port: number): Node {
  const transport = network.transport(id, port);
  const mesh = new Mesh(
    { nodeId: id, hopLimit: 2, seenTtlMs: 60_000, seenMax: 10_000, peerTimeoutMs: 4000, redialBaseMs: 1, redialMaxMs: 5, rejectedRetryMs: 1000 },
    transport,
    silent,
  );
  const store = new ConversationStore({ conversationTtlMs: 3600_000, maxMessagesPerConversation: 100_000, maxConversations: 100, maxStoreBytes: Number.MAX_SAFE_INTEGER }, id);
  const sync = new SyncChannel(mesh, silent);
  const replicator = new Replicator(store, mesh, sync, { replicationAckTimeoutMs: 50, conversationTtlMs: 3600_000, sweepIntervalMs: 60_000, maxNameLength: 128, maxTextLength: 8000, maxPeerPayloadBytes: 1024 * 1024 }, silent);
  return { id, transport, mesh, store, replicator, sync };
}

function attach(client: Client, node: Node): void {
  client.at = node;
  client.listener = (room, payload) => {
    if (room !== ROOM) return;
    const w = JSON.parse(payload.toString()) as { type: string; id: string; ts: number };
    if (w.type === 'message') client.got.set(w.id, { ts: w.ts, id: w.id });
  };
  node.replicator.on('deliver', client.listener);
}

function detach(client: Client): void {
  if (client.at && client.listener) client.at.replicator.off('deliver', client.listener);
  client.at = null;
  client.listener = null;
}

/** The client's newest message (its `since`), by (ts, id). */
function newest(client: Client): { ts: number; id: string } | null {
  let best: { ts: number; id: string } | null = null;
  for (const m of client.got.values()) if (!best || before(best, m)) best = m;
  return best;
}

/** Resumes on `node` the way the gateway answers a join with since. */
function resume(client: Client, node: Node): void {
  const since = newest(client);
  const take = (list: StoredMessage[]) => list.forEach((m) => client.got.set(m.id, { ts: m.timestamp, id: m.id }));
  if (since) {
    const answer = node.store.resumeAfter(ROOM, since.id);
    if (answer.complete) take(answer.messages);
    else {
      const recent = node.store.recent(ROOM, 50);
      take(recent);
      const first = recent[0] ? { ts: recent[0].timestamp, id: recent[0].id } : since;
      client.excusedBefore = client.excusedBefore && before(first, client.excusedBefore) ? client.excusedBefore : first;
    }
  } else {
    take(node.store.recent(ROOM, 50));
  }
  attach(client, node);
}

async function settle(nodes: Node[]): Promise<void> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const digests = new Set(nodes.map((n) => n.store.digestOf(ROOM)));
    const linked = nodes.every((n) => n.mesh.status().filter((p) => p.state === 'up').length === nodes.length - 1);
    if (digests.size === 1 && linked) return;
    if (Date.now() > deadline) throw new Error('the nodes did not converge after the partitions healed');
    await sleep(2);
  }
}

async function run(ops: Op[]): Promise<void> {
  const network = new MemoryNetwork();
  const nodes = ['n0', 'n1', 'n2'].map((id, i) => makeNode(network, id, 2000 + i));
  const partitions = new MemoryPartitions(network);
  const clients: Client[] = [0, 1].map(() => ({ at: null, got: new Map(), excusedBefore: null, listener: null }));
  try {
    for (const a of nodes) for (const b of nodes) if (a !== b) a.mesh.addTarget(b.transport.address, 'test');
    for (const n of nodes) n.replicator.commit({ type: 'created', room: ROOM, id: n.store.nextId() });
    await settle(nodes);
    clients.forEach((c, i) => resume(c, nodes[i]));
    let k = 0;
    for (const op of ops) {
      switch (op.kind) {
        case 'write': {
          const node = nodes[op.node];
          const stamp = node.store.nextStamp();
          node.replicator.commit({ type: 'message', id: stamp.id, room: ROOM, user: 'u', text: `m${k++}`, ts: stamp.wall - op.backdateMs }, false);
          break;
        }
        case 'split':
          if (op.a !== op.b) partitions.split(nodes[op.a].transport, nodes[op.b].transport);
          break;
        case 'heal':
          partitions.healAll();
          break;
        case 'move':
          detach(clients[op.client]);
          resume(clients[op.client], nodes[op.to]);
          break;
        case 'wait':
          for (let i = 0; i < op.turns; i++) await new Promise((resolve) => setImmediate(resolve));
          break;
      }
    }
    partitions.healAll();
    await settle(nodes);
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    const final = nodes[0].store.history(ROOM)!.map((m) => ({ ts: m.timestamp, id: m.id }));
    for (const [i, c] of clients.entries()) {
      const cursor = newest(c);
      if (!cursor) continue;
      const missed = final.filter((m) => !c.got.has(m.id) && !before(cursor, m) && !(c.excusedBefore && before(m, c.excusedBefore)));
      expect(missed.map((m) => m.id), `client ${i} (cursor ${cursor.id}) missed messages without a gap`).to.deep.equal([]);
    }
  } finally {
    clients.forEach(detach);
    await Promise.all(nodes.map(async (n) => {
      n.replicator.close();
      n.sync.close();
      await n.mesh.close(20);
    }));
  }
}

describe('resume (property): never gap:false while missing a message, across partitions and moves', function () {
  this.timeout(120_000);

  it('holds for random interleavings of writes, partitions, heals and client moves between three nodes', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40 }), (ops) => run(ops)), { numRuns: 150 });
  });
});
