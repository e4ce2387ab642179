/**
 * GET /metrics on real processes (127.0.0.1, static peers): the Prometheus text is well
 * formed (every sample's metric has HELP and TYPE, valid names), the counters move by
 * exactly what clients did, peer states and RTT follow the links, default process metrics
 * are there, and two nodes in one process each answer with their own registry.
 * Never a sleep: every wait polls with a deadline or waits for a frame.
 */
import { expect } from 'chai';
import { ChatNode } from '../../lib/chat-node.js';
import { TestClient } from '../helpers/client.js';
import { Instance, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';
import { tellsPresence } from '../helpers/presence.js';

// ---------------------------------------------------------------------------------------------
// A small parser for the Prometheus text format 0.0.4.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  samples: Sample[];
  help: Map<string, string>;
  type: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Parses an exposition, throwing on any line that is not a comment, a HELP/TYPE or `name{labels} value`. */
function parseMetrics(text: string): Exposition {
  const out: Exposition = { samples: [], help: new Map(), type: new Map() };
  for (const [i, line] of text.split('\n').entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (!m) continue; // another comment
      const [, kind, name, rest] = m;
      expect(name, where).to.match(NAME);
      if (kind === 'HELP') {
        expect(rest.trim(), `HELP text, ${where}`).not.to.equal('');
        out.help.set(name, rest);
      } else {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped'], where).to.include(rest);
        out.type.set(name, rest);
      }
      continue;
    }
    const m = /^([^\s{]+)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample: ${where}`);
    const [, name, rawLabels, rawValue] = m;
    expect(name, where).to.match(NAME);
    const labels = rawLabels === undefined ? {} : parseLabels(rawLabels, where);
    // As Prometheus reads them (Go's ParseFloat): Inf and NaN in any case (prom-client writes "Nan").
    const special: Record<string, number> = { '+inf': Infinity, inf: Infinity, '-inf': -Infinity, nan: NaN };
    const value = rawValue.toLowerCase() in special ? special[rawValue.toLowerCase()] : Number(rawValue);
    if (Number.isNaN(value) && rawValue.toLowerCase() !== 'nan') throw new Error(`bad value: ${where}`);
    out.samples.push({ name, labels, value });
  }
  return out;
}

function parseLabels(raw: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([^=\s,]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  let pos = 0;
  while (pos < raw.length) {
    re.lastIndex = pos;
    const m = re.exec(raw);
    if (!m) throw new Error(`bad labels at ${pos}: ${where}`);
    expect(m[1], where).to.match(LABEL_NAME);
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    pos = re.lastIndex;
  }
  return labels;
}

/** The metric family a sample belongs to (histogram and summary samples have suffixes). */
function familyOf(e: Exposition, name: string): string | undefined {
  if (e.type.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return ['histogram', 'summary'].includes(e.type.get(base) ?? '') ? base : undefined;
}

/** Every sample's metric has HELP and TYPE; counters end in _total; chatmesh's own are prefixed. */
function expectWellFormed(e: Exposition): void {
  expect(e.samples.length).to.be.above(20);
  for (const s of e.samples) {
    const family = familyOf(e, s.name);
    expect(family, `# TYPE for ${s.name}`).to.be.a('string');
    expect(e.help.has(family!), `# HELP for ${s.name}`).to.equal(true);
  }
  for (const [name, type] of e.type) {
    expect(e.help.has(name), `# HELP for ${name}`).to.equal(true);
    if (type === 'counter') expect(name, 'a counter name').to.match(/_total$/);
  }
  const ours = [...e.type.keys()].filter((n) => n.startsWith('chatmesh_'));
  expect(ours.length).to.be.above(20);
}

/** The value of one sample (labels must all match), or undefined. */
function value(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const s = e.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

/** Like value, but the sample must be there. */
function get(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const v = value(e, name, labels);
  if (v === undefined) throw new Error(`no sample ${name}${JSON.stringify(labels)}`);
  return v;
}

async function scrape(base: string): Promise<Exposition> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

// ---------------------------------------------------------------------------------------------

const clients = new ClientPool();
const connect = (instance: Instance) => clients.connect(instance);
const nodes: ChatNode[] = [];

afterEach(async () => {
  await clients.closeAll();
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  await stopAll();
});

async function linkedPair(): Promise<[Instance, Instance]> {
  const [a, b] = await fullMesh(2);
  return [a, b];
}

describe('metrics: GET /metrics', () => {
  it('is well-formed Prometheus text with default process metrics, peer states and RTT', async () => {
    const [a, b] = await linkedPair();
    for (const [self, other] of [[a, b], [b, a]] as const) {
      const e = await poll(
        async () => {
          const x = await scrape(self.httpUrl);
          return value(x, 'chatmesh_mesh_peer_rtt_seconds', { peer: other.nodeId }) !== undefined ? x : null;
        },
        { what: `an rtt for ${other.nodeId} at :${self.port}` },
      );
      expectWellFormed(e);
      expect(get(e, 'chatmesh_node_info', { node: self.nodeId })).to.equal(1);
      expect(get(e, 'chatmesh_mesh_peers', { state: 'up' })).to.equal(1);
      for (const state of ['connecting', 'down', 'rejected']) expect(get(e, 'chatmesh_mesh_peers', { state }), state).to.equal(0);
      const rtt = get(e, 'chatmesh_mesh_peer_rtt_seconds', { peer: other.nodeId });
      expect(rtt).to.be.at.least(0).and.below(1);
      expect(e.type.get('chatmesh_replication_lag_seconds')).to.equal('histogram');
      // prom-client's default metrics, in the node's own registry.
      expect(e.type.get('process_cpu_user_seconds_total')).to.equal('counter');
      expect(get(e, 'process_cpu_user_seconds_total')).to.be.above(0);
      expect(e.type.get('nodejs_eventloop_lag_seconds')).to.equal('gauge');
      expect(get(e, 'nodejs_eventloop_lag_seconds')).to.be.at.least(0);
      expect(get(e, 'process_resident_memory_bytes')).to.be.above(0);
    }

    // Only GET (and HEAD).
    const post = await fetch(`${a.httpUrl}/metrics`, { method: 'POST', signal: AbortSignal.timeout(3000) });
    expect(post.status).to.equal(405);
    expect(post.headers.get('allow')).to.equal('GET, HEAD');
    expect(((await post.json()) as { error: { code: string } }).error.code).to.equal('method_not_allowed');
    const head = await fetch(`${a.httpUrl}/metrics`, { method: 'HEAD', signal: AbortSignal.timeout(3000) });
    expect(head.status).to.equal(200);
    expect(await head.text()).to.equal('');

    // A peer that goes away shows as down, and its RTT series goes with its link.
    await b.kill();
    const after = await poll(
      async () => {
        const x = await scrape(a.httpUrl);
        return get(x, 'chatmesh_mesh_peers', { state: 'down' }) === 1 ? x : null;
      },
      { timeoutMs: 10_000, what: 'the peer down in /metrics' },
    );
    expect(get(after, 'chatmesh_mesh_peers', { state: 'up' })).to.equal(0);
    expect(value(after, 'chatmesh_mesh_peer_rtt_seconds', { peer: b.nodeId })).to.equal(undefined);
  });

  it('counts messages, deliveries, errors, connections and replication by exactly what happened', async () => {
    const [a, b] = await linkedPair();
    const alice = await connect(a);
    await alice.join('lobby', 'alice');
    // The room's creation has reached B before bob joins there (so B creates nothing itself).
    await poll(async () => get(await scrape(b.httpUrl), 'chatmesh_store_conversations') === 1, { what: 'the conversation at B' });
    const bob = await connect(b);
    await bob.join('lobby', 'bob');
    await alice.waitFor((f) => tellsPresence(f, 'join', 'bob'));

    const [a0, b0] = await Promise.all([scrape(a.httpUrl), scrape(b.httpUrl)]);
    const delta = (now: Exposition, before: Exposition, name: string, labels: Record<string, string> = {}) =>
      get(now, name, labels) - get(before, name, labels);

    for (let i = 0; i < 3; i++) alice.send({ type: 'message', room: 'lobby', text: `a${i}` });
    for (let i = 0; i < 2; i++) bob.send({ type: 'message', room: 'lobby', text: `b${i}` });
    const texts = ['a0', 'a1', 'a2', 'b0', 'b1'];
    for (const c of [alice, bob]) {
      await poll(() => texts.every((t) => c.messages('lobby').some((f) => f.text === t)), { what: 'every message at every client' });
    }
    const bad = await alice.request('this is not json', (f) => f.type === 'error');
    expect(bad.code).to.equal('bad_json');

    const [a1, b1] = await Promise.all([scrape(a.httpUrl), scrape(b.httpUrl)]);
    // Frames and messages from each node's own clients.
    expect(delta(a1, a0, 'chatmesh_client_frames_received_total')).to.equal(4);
    expect(delta(b1, b0, 'chatmesh_client_frames_received_total')).to.equal(2);
    expect(delta(a1, a0, 'chatmesh_client_messages_received_total')).to.equal(3);
    expect(delta(b1, b0, 'chatmesh_client_messages_received_total')).to.equal(2);
    // Each of the five messages written once to the one member on each node (echoes included).
    expect(delta(a1, a0, 'chatmesh_client_deliveries_total')).to.equal(5);
    expect(delta(b1, b0, 'chatmesh_client_deliveries_total')).to.equal(5);
    expect(delta(a1, a0, 'chatmesh_client_errors_total', { code: 'bad_json' })).to.equal(1);
    expect(delta(b1, b0, 'chatmesh_client_errors_total', { code: 'bad_json' })).to.equal(0);
    expect(get(a1, 'chatmesh_client_errors_total', { code: 'not_joined' })).to.equal(0);
    // Replication: writes made here, writes applied from the peer, and their lag.
    expect(delta(a1, a0, 'chatmesh_replication_writes_committed_total')).to.equal(3);
    expect(delta(b1, b0, 'chatmesh_replication_writes_committed_total')).to.equal(2);
    expect(delta(a1, a0, 'chatmesh_replication_writes_from_peers_total')).to.equal(2);
    expect(delta(b1, b0, 'chatmesh_replication_writes_from_peers_total')).to.equal(3);
    expect(delta(a1, a0, 'chatmesh_replication_lag_seconds_count')).to.equal(2);
    expect(delta(b1, b0, 'chatmesh_replication_lag_seconds_count')).to.equal(3);
    expect(get(b1, 'chatmesh_replication_lag_seconds_bucket', { le: '+Inf' })).to.equal(get(b1, 'chatmesh_replication_lag_seconds_count'));
    expect(get(b1, 'chatmesh_replication_lag_seconds_sum')).to.be.at.least(0).and.below(10);
    // The mesh: one hop in a pair, nothing forwarded, nothing seen twice.
    expect(delta(a1, a0, 'chatmesh_mesh_events_received_total')).to.equal(2);
    expect(delta(b1, b0, 'chatmesh_mesh_events_received_total')).to.equal(3);
    for (const e of [a1, b1]) {
      expect(get(e, 'chatmesh_mesh_duplicates_total')).to.equal(0);
      expect(get(e, 'chatmesh_mesh_forwarded_total')).to.equal(0);
      // One per link that came up (a pair that dialled each other may have seen two).
      expect(get(e, 'chatmesh_replication_summaries_sent_total')).to.be.at.least(1);
      // The same store on both.
      expect(get(e, 'chatmesh_store_conversations')).to.equal(1);
      expect(get(e, 'chatmesh_store_messages')).to.equal(5);
      expect(get(e, 'chatmesh_store_tombstones')).to.equal(0);
      expect(get(e, 'chatmesh_client_connections')).to.equal(1);
      expect(get(e, 'chatmesh_rooms')).to.equal(1);
    }

    // A connection opened and closed.
    const carol = await connect(a);
    await carol.close();
    const a2 = await poll(
      async () => {
        const x = await scrape(a.httpUrl);
        return delta(x, a0, 'chatmesh_client_connections_closed_total') === 1 ? x : null;
      },
      { what: 'the closed connection counted' },
    );
    expect(delta(a2, a0, 'chatmesh_client_connections_opened_total')).to.equal(1);
    expect(get(a2, 'chatmesh_client_connections')).to.equal(1);
  });

  it('gives every node of one process a registry of its own', async () => {
    for (let i = 0; i < 2; i++) {
      const node = new ChatNode({ port: 0, host: '127.0.0.1', discovery: 'off', logLevel: 'silent' });
      nodes.push(node);
      await node.start();
    }
    const [e0, e1] = await Promise.all(nodes.map((n) => scrape(`http://127.0.0.1:${n.port}`)));
    for (const [e, node] of [[e0, nodes[0]], [e1, nodes[1]]] as const) {
      expectWellFormed(e);
      const info = e.samples.filter((s) => s.name === 'chatmesh_node_info');
      expect(info.map((s) => s.labels.node)).to.deep.equal([node.id]);
    }
    const client = clients.track(await TestClient.connect(`ws://127.0.0.1:${nodes[0].port}`));
    await client.join('r', 'u');
    const [f0, f1] = await Promise.all(nodes.map((n) => scrape(`http://127.0.0.1:${n.port}`)));
    expect(get(f0, 'chatmesh_client_connections')).to.equal(1);
    expect(get(f1, 'chatmesh_client_connections')).to.equal(0);
  });
});
