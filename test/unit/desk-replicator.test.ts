/**
 * The replicator and the desk's writes over in-memory links (two nodes): `born` fires once,
 * on the node that committed the write, never for a duplicate or a peer's write; members get
 * frames built from the store (conversation, read, edited), on both nodes.
 */
import { expect } from 'chai';
import { ConversationStore, type StoreWrite } from '../../lib/core/conversation-store.js';
import type { Logger } from '../../lib/log.js';
import { Mesh } from '../../lib/mesh/mesh.js';
import { Replicator } from '../../lib/replication/replicator.js';
import { SyncChannel } from '../../lib/replication/sync-channel.js';
import { MemoryNetwork } from '../helpers/memory-transport.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

interface Node {
  mesh: Mesh;
  store: ConversationStore;
  replicator: Replicator;
  born: StoreWrite[];
  frames: Array<Record<string, unknown>>;
}

function makeNode(network: MemoryNetwork, id: string, port: number): Node {
  const transport = network.transport(id, port);
  const mesh = new Mesh({ nodeId: id, hopLimit: 2, seenTtlMs: 60_000, seenMax: 10_000, peerTimeoutMs: 4000, redialBaseMs: 1, redialMaxMs: 5, rejectedRetryMs: 1000 }, transport, silent);
  const store = new ConversationStore({ conversationTtlMs: 3600_000, maxMessagesPerConversation: 1000, maxConversations: 100, maxStoreBytes: Number.MAX_SAFE_INTEGER }, id);
  const replicator = new Replicator(store, mesh, new SyncChannel(mesh, silent), { replicationAckTimeoutMs: 50, conversationTtlMs: 3600_000, sweepIntervalMs: 60_000, maxNameLength: 128, maxTextLength: 8000, maxPeerPayloadBytes: 1024 * 1024 }, silent);
  const node: Node = { mesh, store, replicator, born: [], frames: [] };
  replicator.on('born', (w) => node.born.push(w));
  replicator.on('deliver', (_room, payload) => node.frames.push(JSON.parse(payload.toString())));
  return node;
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('replicator: the desk\'s writes between two nodes', () => {
  let a: Node;
  let b: Node;

  beforeEach(async () => {
    const network = new MemoryNetwork();
    a = makeNode(network, 'na', 1);
    b = makeNode(network, 'nb', 2);
    a.mesh.addTarget('ws://127.0.0.1:2', 'test');
    await until(() => a.mesh.linkedPeers().length === 1 && b.mesh.linkedPeers().length === 1, 'the link');
  });

  afterEach(async () => {
    for (const n of [a, b]) {
      n.replicator.close();
      await n.mesh.close(50);
    }
  });

  it('born fires once per write committed here; members on both nodes get the frames built from the store', async () => {
    const stamp = a.store.nextStamp();
    const message: StoreWrite = { type: 'message', id: stamp.id, room: 'r', user: 'ann', text: 'hello', ts: stamp.wall };
    const field: StoreWrite = { type: 'field', room: 'r', id: a.store.nextId(), f: 'assignee', v: 'agent-1' };
    a.replicator.commit({ type: 'created', room: 'r', id: a.store.nextId() });
    a.replicator.commit(message, false);
    a.replicator.commit(field, false);
    expect(a.replicator.commit(field, false).result).to.equal('duplicate');
    b.replicator.commit({ type: 'read', room: 'r', id: b.store.nextId(), user: 'bob', upTo: stamp.id, at: stamp.wall }, false);
    b.replicator.commit({ type: 'edited', room: 'r', id: b.store.nextId(), msg: stamp.id, text: 'hello!', ts: stamp.wall }, false);
    expect(a.born.map((w) => w.type)).to.deep.equal(['created', 'message', 'field']);
    expect(b.born.map((w) => w.type)).to.deep.equal(['read', 'edited']);
    // B edited the message before it arrived there (links deliver on a later turn): its members
    // get the message with the current text, and no edited frame; A's get both.
    await until(() => a.frames.length === 4 && b.frames.length === 3, 'the frames');
    expect(a.frames.map((f) => f.type)).to.deep.equal(['message', 'conversation', 'read', 'edited']);
    expect(b.frames.map((f) => f.type)).to.deep.equal(['read', 'message', 'conversation']);
    for (const n of [a, b]) {
      expect(n.frames.find((f) => f.type === 'conversation')).to.include({ room: 'r', id: 'r', status: 'open', assignee: 'agent-1' });
      expect(n.frames.find((f) => f.type === 'read')).to.deep.equal({ type: 'read', room: 'r', user: 'bob', upTo: stamp.id });
    }
    expect(a.frames.find((f) => f.type === 'message')).to.include({ text: 'hello' });
    expect(a.frames.find((f) => f.type === 'edited')).to.include({ room: 'r', id: stamp.id, text: 'hello!' });
    expect(b.frames.find((f) => f.type === 'message')).to.include({ text: 'hello!' });
    expect(a.born).to.have.length(3); // peers' writes are not born here
  });
});
