/**
 * Network partitions between hosts, in private network namespaces (see test/helpers/netns.ts
 * and /work/shared/ENVIRONMENT.md): three hosts on one bridge, one instance each, static
 * peers and one MESH_SECRET. A host is cut off with `ip link set eth0 down` (this kernel has
 * no netem) and reconnected; the store must converge (README "Replication, in plain words")
 * and the links must come back by themselves, one per pair.
 *
 * While a host is cut off the test process cannot reach it over the bridge either, so
 * requests to the partitioned host run inside its namespace, against 127.0.0.1.
 *
 * These tests FAIL when namespaces are unavailable (not root, no iproute2) unless
 * CHATMESH_SKIP_NETNS=1 is set.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { promisify } from 'node:util';
import { TestClient, type Frame } from '../helpers/client.js';
import { Instance, stopAll, type Health, type PeerRow } from '../helpers/instance.js';
import { TestNetwork, requireNetns, type NetHost, dumpInstanceOutput, distinctPorts } from '../helpers/netns.js';
import { poll } from '../helpers/wait.js';
import { tellsPresence } from '../helpers/presence.js';

const run = promisify(execFile);

/** Small timeouts so a partition is noticed, and healed, within a couple of seconds. */
const MESH_ENV = {
  DISCOVERY: 'static',
  MESH_SECRET: 'partition-test-secret',
  PEER_HEARTBEAT_MS: '250',
  PEER_TIMEOUT_MS: '1500',
  PEER_REDIAL_MAX_MS: '1000',
};
/** The default REPLICATION_ACK_TIMEOUT_MS: a write answers after this at the latest. */
const ACK_TIMEOUT_MS = 1000;

interface ApiMessage {
  id: string;
  sender: string;
  content: string;
  timestamp: number;
}
interface ApiResponse {
  status: number;
  text: string;
  /** Time the request itself took (measured where it was made). */
  ms: number;
}
type HealthWithStore = Health & { store: { conversations: number; messages: number; tombstones: number } };

/** (timestamp, id) order, as the README promises for every history. */
function byTimestampThenId(a: ApiMessage, b: ApiMessage): number {
  if (a.timestamp !== b.timestamp) return a.timestamp - b.timestamp;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Runs in the partitioned host's namespace: one fetch, its status, body and duration as JSON. */
const INSIDE_FETCH = `
const [url, method, body] = JSON.parse(process.argv[1]);
const t0 = performance.now();
const res = await fetch(url, {
  method,
  headers: body === null ? {} : { 'content-type': 'application/json' },
  body: body === null ? undefined : JSON.stringify(body),
  signal: AbortSignal.timeout(8000),
});
const text = await res.text();
process.stdout.write(JSON.stringify({ status: res.status, text, ms: Math.round(performance.now() - t0) }));
`;

describe('network partitions (network namespaces)', function () {
  this.timeout(40_000);

  let net: TestNetwork | null = null;
  let started: Instance[] = [];
  let clients: TestClient[] = [];

  before(async function () {
    await requireNetns(this);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') dumpInstanceOutput(started, 60);
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    clients = [];
    await stopAll();
    started = [];
    await net?.destroy();
    net = null;
  });

  const ports = distinctPorts;

  interface Cluster {
    hosts: [NetHost, NetHost, NetHost];
    nodes: [Instance, Instance, Instance];
  }

  /** Three hosts, one instance each, every instance statically peered with the other two, all links up. */
  async function cluster(): Promise<Cluster> {
    net = await TestNetwork.create();
    const hosts = [await net.addHost(), await net.addHost(), await net.addHost()] as [NetHost, NetHost, NetHost];
    const ps = ports(3);
    const addressOf = (k: number) => `ws://${hosts[k]!.address}:${ps[k]}`;
    const nodes = (await Promise.all(
      hosts.map(async (h, k) => {
        const peers = [0, 1, 2].filter((j) => j !== k).map(addressOf).join(',');
        const instance = await Instance.start({ netns: h.name, host: h.address, port: ps[k], env: { ...MESH_ENV, PEERS: peers } });
        started.push(instance);
        return instance;
      }),
    )) as [Instance, Instance, Instance];
    await Promise.all(nodes.map((n) => n.waitForPeersUp(nodes.filter((o) => o !== n).map((o) => o.nodeId), 10_000)));
    return { hosts, nodes };
  }

  /** A REST call from the test process, over the bridge. */
  async function api(node: Instance, method: string, path: string, body: unknown = null): Promise<ApiResponse> {
    const t0 = performance.now();
    const res = await fetch(`${node.httpUrl}${path}`, {
      method,
      headers: body === null ? {} : { 'content-type': 'application/json' },
      body: body === null ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(8000),
    });
    const text = await res.text();
    return { status: res.status, text, ms: Math.round(performance.now() - t0) };
  }

  /** A REST call made inside the host's namespace to 127.0.0.1 (works while the host is cut off). */
  async function apiInside(host: NetHost, node: Instance, method: string, path: string, body: unknown = null): Promise<ApiResponse> {
    const arg = JSON.stringify([`http://127.0.0.1:${node.port}${path}`, method, body]);
    const { stdout } = await run('ip', ['netns', 'exec', host.name, process.execPath, '--input-type=module', '-e', INSIDE_FETCH, arg], { timeout: 15_000 });
    return JSON.parse(stdout) as ApiResponse;
  }

  async function healthOf(node: Instance): Promise<HealthWithStore> {
    return (await node.health()).body as HealthWithStore;
  }

  async function healthInside(host: NetHost, node: Instance): Promise<HealthWithStore> {
    const res = await apiInside(host, node, 'GET', '/health');
    return JSON.parse(res.text) as HealthWithStore;
  }

  function expectStatus(res: ApiResponse, status: number, what: string): void {
    expect(res.status, `${what}: ${res.text}`).to.equal(status);
  }

  async function createConversation(post: (method: string, path: string, body?: unknown) => Promise<ApiResponse>): Promise<string> {
    const res = await post('POST', '/api/conversations');
    expectStatus(res, 201, 'create a conversation');
    return (JSON.parse(res.text) as { id: string }).id;
  }

  /** Cuts the host off and waits until both others show it as down (and, if asked, it shows them down). */
  async function partition(c: Cluster, k: number, alsoInside = false): Promise<void> {
    const host = c.hosts[k];
    const node = c.nodes[k];
    const others = c.nodes.filter((n) => n !== node);
    await net!.partition(host);
    await Promise.all(
      others.map((o) =>
        poll(async () => (await healthOf(o)).peers.some((p) => p.id === node.nodeId && p.state === 'down'), {
          timeoutMs: 8000,
          intervalMs: 100,
          what: `${o.nodeId} to show the partitioned ${node.nodeId} as down`,
        }),
      ),
    );
    if (alsoInside) {
      await poll(
        async () => {
          const peers = (await healthInside(host, node)).peers;
          return others.every((o) => peers.some((p) => p.id === o.nodeId && p.state === 'down'));
        },
        { timeoutMs: 8000, intervalMs: 100, what: `the partitioned ${node.nodeId} to show both others as down` },
      );
    }
  }

  /** Every node lists exactly the two others, one row each, each up, at its real address. */
  function linkProblems(c: Cluster, healths: HealthWithStore[]): string[] {
    const problems: string[] = [];
    c.nodes.forEach((node, k) => {
      const rows: PeerRow[] = healths[k]!.peers;
      for (const [j, other] of c.nodes.entries()) {
        if (j === k) continue;
        const mine = rows.filter((p) => p.id === other.nodeId || p.address === other.peerAddress);
        if (mine.length !== 1) problems.push(`${node.nodeId} has ${mine.length} rows for ${other.nodeId}: ${JSON.stringify(mine)}`);
        else if (mine[0]!.state !== 'up' || mine[0]!.address !== other.peerAddress || mine[0]!.id !== other.nodeId) {
          problems.push(`${node.nodeId} lists ${other.nodeId} as ${JSON.stringify(mine[0])}, want up at ${other.peerAddress}`);
        }
      }
      if (rows.length !== 2) problems.push(`${node.nodeId} has ${rows.length} peer rows, want 2: ${JSON.stringify(rows)}`);
    });
    return problems;
  }

  it('partition heals and both sides converge', async () => {
    const c = await cluster();
    const [n1, n2, n3] = c.nodes;
    const h3 = c.hosts[2];
    const on = (n: Instance) => (method: string, path: string, body?: unknown) => api(n, method, path, body ?? null);
    const inside3 = (method: string, path: string, body?: unknown) => apiInside(h3, n3, method, path, body ?? null);
    const post = async (call: ReturnType<typeof on>, conv: string, sender: string, content: string): Promise<ApiResponse & { message: ApiMessage }> => {
      const res = await call('POST', `/api/conversations/${conv}/messages`, { sender, content });
      expectStatus(res, 201, `post "${content}"`);
      return { ...res, message: JSON.parse(res.text) as ApiMessage };
    };

    // Before: a conversation on h1 with two messages, visible on h3 as soon as they are acknowledged.
    const conv = await createConversation(on(n1));
    const before = [await post(on(n1), conv, 'customer', 'before 1'), await post(on(n1), conv, 'agent', 'before 2')].map((r) => r.message);
    const onH3 = await api(n3, 'GET', `/api/conversations/${conv}`);
    expectStatus(onH3, 200, 'GET on h3 before the partition');
    expect((JSON.parse(onH3.text) as { messages: ApiMessage[] }).messages).to.deep.equal(before);

    await partition(c, 2);

    // Majority side (h1, h2): three new messages and a delete.
    const majority: ApiMessage[] = [];
    for (const text of ['during 1 (h1)', 'during 2 (h1)', 'during 3 (h1)']) majority.push((await post(on(n1), conv, 'agent', text)).message);
    const deleted = before[0]!;
    expectStatus(await api(n2, 'DELETE', `/api/conversations/${conv}/messages/${deleted.id}`), 204, 'delete on h2');

    // Minority side (h3): two messages in the same conversation and a new conversation.
    const minority: ApiMessage[] = [];
    for (const text of ['during 1 (h3)', 'during 2 (h3)']) {
      const res = await post(inside3, conv, 'customer', text);
      // Its peers are unreachable: it answers at once if it knows, or after the ack timeout.
      expect(res.ms, `time for h3's 201 to "${text}"`).to.be.below(ACK_TIMEOUT_MS + 2000);
      minority.push(res.message);
    }
    const conv3 = await createConversation(inside3);
    const only3 = (await post(inside3, conv3, 'customer', 'new conversation on h3')).message;

    // The sides really were apart: neither saw the other's writes.
    const h1During = JSON.parse((await api(n1, 'GET', `/api/conversations/${conv}`)).text) as { messages: ApiMessage[] };
    expect(h1During.messages.map((m) => m.id), 'h1 during the partition').to.not.include.members([minority[0]!.id]);
    expectStatus(await api(n1, 'GET', `/api/conversations/${conv3}`), 404, "h3's new conversation on h1 during the partition");
    const h3During = JSON.parse((await inside3('GET', `/api/conversations/${conv}`)).text) as { messages: ApiMessage[] };
    expect(h3During.messages.map((m) => m.id), 'h3 during the partition').to.include(deleted.id).and.not.include(majority[0]!.id);

    await net!.heal(h3);

    // Converged: both conversations read the same on all three instances.
    let last: string[][] = [];
    try {
      await poll(
        async () => {
          last = await Promise.all(c.nodes.map((n) => Promise.all([conv, conv3].map(async (id) => (await api(n, 'GET', `/api/conversations/${id}`)).text))));
          return last.every((texts) => texts.join('\n') === last[0]!.join('\n'));
        },
        { timeoutMs: 15_000, intervalMs: 100, what: 'both conversations to read the same on h1, h2 and h3' },
      );
    } catch (err) {
      const detail = c.nodes.map((n, k) => `  ${n.nodeId} (h${k + 1}):\n    ${(last[k] ?? ['?']).join('\n    ')}`).join('\n');
      throw new Error(`${(err as Error).message}\nlast reads:\n${detail}`);
    }

    const expected = [...before.filter((m) => m.id !== deleted.id), ...majority, ...minority].sort(byTimestampThenId);
    const merged = JSON.parse(last[0]![0]!) as { id: string; messages: ApiMessage[] };
    expect(merged.id).to.equal(conv);
    expect(merged.messages, 'merged history: the union, in (timestamp, id) order, without the deleted message').to.deep.equal(expected);
    const merged3 = JSON.parse(last[0]![1]!) as { id: string; messages: ApiMessage[] };
    expect({ id: merged3.id, messages: merged3.messages }).to.deep.equal({ id: conv3, messages: [only3] });

    const stores = (await Promise.all(c.nodes.map(healthOf))).map((h) => h.store);
    expect(stores[1], 'store counts on h2 vs h1').to.deep.equal(stores[0]);
    expect(stores[2], 'store counts on h3 vs h1').to.deep.equal(stores[0]);
    expect(stores[0]).to.deep.equal({ conversations: 2, messages: expected.length + 1, tombstones: 1 });
  });

  it('WebSocket members get what they missed after heal', async () => {
    const c = await cluster();
    const [n1, n2, n3] = c.nodes;
    const room = `room-${randomInt(1 << 30).toString(36)}`;

    const bob = await TestClient.connect(`ws://${c.hosts[2].address}:${n3.port}`);
    clients.push(bob);
    const joined = (f: Frame) => f.type === 'joined' && f.room === room;
    await bob.request({ type: 'join', room, user: 'bob' }, joined, 10_000);
    const alice = await TestClient.connect(n1.url);
    clients.push(alice);
    await alice.request({ type: 'join', room, user: 'alice' }, joined, 10_000);
    // The link works before the cut: bob hears alice join.
    await bob.waitFor((f) => tellsPresence(f, 'join', 'alice'), 10_000, "alice's join at bob");

    await partition(c, 2, true);

    const sent: Frame[] = [];
    // Each is acknowledged by its echo (generous deadlines throughout: the machine may be busy).
    for (const text of ['missed 1', 'missed 2', 'missed 3']) {
      sent.push(await alice.request({ type: 'message', room, text }, (f) => f.type === 'message' && f.room === room && f.text === text, 10_000));
    }
    const ids = sent.map((f) => f.id as string);
    expect(bob.messages(room).filter((f) => ids.includes(f.id as string)), 'bob got them during the partition').to.deep.equal([]);

    await net!.heal(c.hosts[2]);

    await poll(() => ids.every((id) => bob.messages(room).some((f) => f.id === id)), {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: `bob (on h3) to receive ${ids.join(', ')} after the heal`,
    });
    for (const f of sent) {
      expect(bob.messages(room).find((m) => m.id === f.id), `bob's copy of "${String(f.text)}"`).to.deep.equal(f);
    }

    // Flush: once every link is back and the stores agree, a marker from each side of the
    // cut (REST: answered after h3 acknowledged it, i.e. after h3 handed it to bob) comes
    // after anything catch-up could still deliver on that link. A link is "back" when /health
    // shows a live link (a direction) to the peer; its `state` label is test 3's subject.
    await poll(
      async () => {
        const healths = await Promise.all(c.nodes.map(healthOf));
        return c.nodes.every((node, k) => c.nodes.every((o) => o === node || healths[k]!.peers.some((p) => p.id === o.nodeId && p.direction !== null)));
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'every link back' },
    );
    await poll(
      async () => {
        const texts = await Promise.all(c.nodes.map(async (n) => (await api(n, 'GET', `/api/conversations/${room}`)).text));
        return texts.every((t) => t === texts[0]);
      },
      { timeoutMs: 10_000, intervalMs: 100, what: `room ${room} to read the same everywhere` },
    );
    const markers: string[] = [];
    for (const n of [n1, n2]) {
      const res = await api(n, 'POST', `/api/conversations/${room}/messages`, { sender: 'agent', content: `marker from ${n.nodeId}` });
      expectStatus(res, 201, 'marker');
      markers.push((JSON.parse(res.text) as ApiMessage).id);
    }
    await poll(() => markers.every((id) => bob.messages(room).some((f) => f.id === id)), { timeoutMs: 5000, what: 'both markers at bob' });

    for (const id of ids) {
      expect(bob.messages(room).filter((f) => f.id === id), `copies of ${id} at bob`).to.have.length(1);
    }
    const all = bob.messages(room).map((f) => f.id as string);
    expect(new Set(all).size, `bob got a duplicate: ${JSON.stringify(all)}`).to.equal(all.length);
  });

  /** Time of a log line, and of the redial it announces ("dial failed" ... retryInMs). */
  function lastRedial(node: Instance, address: string): { at: number; next: number } | null {
    for (let i = node.logs.length - 1; i >= 0; i--) {
      const l = node.logs[i]!;
      if (l.msg === 'dial failed' && l.address === address && typeof l.time === 'string' && typeof l.retryInMs === 'number') {
        const at = Date.parse(l.time);
        return { at, next: at + l.retryInMs };
      }
    }
    return null;
  }

  /**
   * Waits (at most ~8 s, then goes on anyway) for a moment to heal at that is ordinary for a
   * real partition, and that matters: h1 is in the middle of a redial of h3 (its SYN went
   * out more than a second ago, so the kernel will not retransmit it before the 2 s
   * handshake timeout) and h3's own next redial of h1 is due after the heal but before h1's
   * dial times out. So h3's link reaches h1 first, and h1's own dial fails after that.
   * Needs the debug log (the Instance default): "dial failed" lines carry retryInMs.
   */
  async function awaitRedialRace(c: Cluster): Promise<void> {
    const [n1, , n3] = c.nodes;
    const handshakeTimeoutMs = 2000; // PEER_HANDSHAKE_TIMEOUT_MS default
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline) {
      const now = Date.now();
      const dial1 = lastRedial(n1, n3.peerAddress); // h1's current dial started at dial1.next
      const dial3 = lastRedial(n3, n1.peerAddress); // h3's next dial of h1 is at dial3.next
      if (dial1 && dial3 && now > dial1.next + 1150 && now < dial1.next + 1700 && dial3.next > now + 30 && dial3.next < dial1.next + handshakeTimeoutMs - 150) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  it('presence of links after heal', async () => {
    const c = await cluster();
    expect(linkProblems(c, await Promise.all(c.nodes.map(healthOf))), 'links before the partition').to.deep.equal([]);

    await partition(c, 2, true);
    await awaitRedialRace(c);
    const healedAt = Date.now();
    await net!.heal(c.hosts[2]);

    // Up within 10 s, and still so once every dial that was in flight at the heal has ended
    // (a dial lasts at most PEER_HANDSHAKE_TIMEOUT_MS, 2 s): a snapshot taken the moment the
    // links come up would miss a row that an older dial's failure turns to 'down' afterwards.
    const stableMs = 3000;
    let last: string[] = [];
    let upSince: number | null = null;
    let firstUpAt: number | null = null;
    let flapped: string[] = [];
    try {
      await poll(
        async () => {
          last = linkProblems(c, await Promise.all(c.nodes.map(healthOf)));
          if (last.length > 0) {
            if (upSince !== null) flapped = last;
            upSince = null;
            return false;
          }
          firstUpAt ??= Date.now();
          upSince ??= Date.now();
          return Date.now() - upSince >= stableMs;
        },
        { timeoutMs: 10_000 + stableMs, intervalMs: 100, what: `every node to show exactly the two others up, one row each, for ${stableMs} ms` },
      );
    } catch (err) {
      const history = firstUpAt === null ? 'never all up' : `all up ${firstUpAt - healedAt} ms after the heal, then:\n  ${flapped.join('\n  ')}\nand at the end:`;
      throw new Error(`${(err as Error).message}\n${history}\n  ${last.join('\n  ')}`);
    }
    expect(firstUpAt! - healedAt, 'ms from heal to every link up').to.be.below(10_000);
    for (const [k, node] of c.nodes.entries()) {
      const peers = (await healthOf(node)).peers;
      expect(peers.map((p) => p.id).sort(), `peer ids at h${k + 1}`).to.deep.equal(c.nodes.filter((o) => o !== node).map((o) => o.nodeId).sort());
      expect(peers.every((p) => p.state === 'up'), `all up at h${k + 1}: ${JSON.stringify(peers)}`).to.equal(true);
    }
  });
});
