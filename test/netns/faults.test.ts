/**
 * Fault tests in private network namespaces (see test/helpers/netns.ts and
 * /work/shared/ENVIRONMENT.md): a slow and lossy link, a peer that flaps, presence across a
 * partition, and acknowledged REST writes across a kill -9. Each asserts what users see.
 *
 * This kernel has no netem, so the bad network is emulated:
 * - DELAY: a small TCP proxy in this process, on the bridge's root-namespace address
 *   (10.X.Y.254), delays every chunk by DELAY_MS in each direction (order kept). Instance A
 *   dials B only through it (A's PEERS is the proxy; B has DISCOVERY=off and never dials).
 * - LOSS: an nftables table inside B's namespace drops a random share of TCP packets, in and
 *   out (nf_tables with numgen; the table goes away with the namespace). Needs `nft`
 *   (Debian's nftables package; .ci/run installs it).
 *
 * These tests FAIL when namespaces are unavailable (not root, no iproute2) unless
 * CHATMESH_SKIP_NETNS=1 is set.
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { promisify } from 'node:util';
import { TestClient, type Frame } from '../helpers/client.js';
import { Instance, ROOT, stopAll, type Health, type PeerRow } from '../helpers/instance.js';
import { TestNetwork, requireNetns, type NetHost, dumpInstanceOutput, distinctPorts } from '../helpers/netns.js';
import { poll } from '../helpers/wait.js';
import { tellsPresence } from '../helpers/presence.js';

const run = promisify(execFile);

const MESH_SECRET = 'faults-test-secret';
/** Small timers, so that a dead or cut-off peer is noticed, and relinked, within a couple of seconds. */
const FAST_ENV = {
  DISCOVERY: 'static',
  MESH_SECRET,
  PEER_HEARTBEAT_MS: '250',
  PEER_TIMEOUT_MS: '1500',
  PEER_REDIAL_MAX_MS: '1000',
};
const DELAY_MS = 100;
const LOSS_PERCENT = 5;
const MiB = 1024 * 1024;

type FullHealth = Health & { memory: { rssBytes: number; heapUsedBytes: number } };

interface ApiMessage {
  id: string;
  sender: string;
  content: string;
  timestamp: number;
}

// ---------------------------------------------------------------------------------------
// A delaying TCP proxy

/**
 * Moves bytes from `from` to `to`, each chunk DELAY ms after it arrived, in order (one queue
 * per direction, one timer for its head). A half-close (FIN) is passed on in order too; an
 * abrupt close (error, reset) destroys the other side once the data before it has gone.
 */
function delayedPipe(from: net.Socket, to: net.Socket, delayMs: number): void {
  type Item = { at: number; chunk: Buffer | 'end' | 'destroy' };
  const queue: Item[] = [];
  let timer: NodeJS.Timeout | null = null;
  const schedule = () => {
    if (timer || queue.length === 0) return;
    timer = setTimeout(flush, Math.max(0, queue[0]!.at - Date.now()));
  };
  const flush = () => {
    timer = null;
    const now = Date.now();
    while (queue.length > 0 && queue[0]!.at <= now) {
      const { chunk } = queue.shift()!;
      if (to.destroyed) {
        queue.length = 0;
        return;
      }
      if (chunk === 'end') to.end();
      else if (chunk === 'destroy') to.destroy();
      else to.write(chunk);
    }
    schedule();
  };
  const push = (chunk: Item['chunk']) => {
    queue.push({ at: Date.now() + delayMs, chunk });
    schedule();
  };
  from.on('data', (chunk: Buffer) => push(chunk));
  from.on('end', () => push('end'));
  from.on('close', (hadError) => {
    if (hadError) push('destroy');
  });
  from.on('error', () => {});
}

class DelayProxy {
  /** Connections accepted so far. */
  connections = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly host: string,
    readonly port: number,
  ) {}

  /** Listens on host:ephemeral and forwards every connection to target, delayed both ways. */
  static async start(host: string, target: { host: string; port: number }, delayMs: number): Promise<DelayProxy> {
    const server = net.createServer({ allowHalfOpen: true });
    server.listen(0, host);
    await once(server, 'listening');
    const proxy = new DelayProxy(server, host, (server.address() as net.AddressInfo).port);
    server.on('connection', (client) => {
      proxy.connections++;
      const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.setNoDelay(true);
        s.on('close', () => proxy.sockets.delete(s));
      }
      delayedPipe(client, upstream, delayMs);
      delayedPipe(upstream, client, delayMs);
    });
    return proxy;
  }

  /** The address to give an instance as its peer. */
  get url(): string {
    return `ws://${this.host}:${this.port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------
// A client inside a namespace (reachable while its host is cut off)

/**
 * Runs in a host's namespace: one WebSocket to argv[1]; every frame received is a line on
 * stdout, every line on stdin is sent. `ws` resolves from the repository (cwd).
 */
const INSIDE_CLIENT = `
const WebSocket = require('ws');
const out = (f) => process.stdout.write(JSON.stringify(f) + '\\n');
const ws = new WebSocket(process.argv[1], { perMessageDeflate: false });
ws.on('open', () => out({ type: '__open__' }));
ws.on('message', (d) => process.stdout.write(d.toString() + '\\n'));
ws.on('error', (e) => out({ type: '__error__', message: e.message }));
ws.on('close', (code) => { out({ type: '__close__', code }); process.exit(0); });
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => {
  buf += c;
  let i;
  while ((i = buf.indexOf('\\n')) !== -1) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (ws.readyState === 1) ws.send(line);
  }
});
process.stdin.on('end', () => process.exit(0));
`;

/** What the tests need of a client, whether it runs here (TestClient) or in a namespace. */
interface ChatClient {
  readonly frames: Frame[];
  send(frame: unknown): void;
  request(frame: unknown, match: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  close(): Promise<void>;
}

class InsideClient implements ChatClient {
  readonly frames: Frame[] = [];
  readonly stderr: string[] = [];
  private exited = false;
  private readonly exit: Promise<unknown>;

  private constructor(private readonly proc: ChildProcess) {
    this.exit = once(proc, 'exit').then(() => {
      this.exited = true;
    });
    let buffer = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          this.frames.push(JSON.parse(line) as Frame);
        } catch {
          this.frames.push({ type: '__unparsable__', raw: line });
        }
      }
    });
    proc.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk.toString()));
    proc.stdin!.on('error', () => {});
  }

  static async connect(host: NetHost, port: number): Promise<InsideClient> {
    const proc = spawn('ip', ['netns', 'exec', host.name, process.execPath, '-e', INSIDE_CLIENT, `ws://127.0.0.1:${port}`], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const client = new InsideClient(proc);
    const first = await poll(() => client.frames.find((f) => f.type.startsWith('__')) ?? (client.exited ? { type: '__exited__' } : undefined), {
      timeoutMs: 10_000,
      what: `a client inside ${host.name} to connect`,
    }).catch((err: Error) => ({ type: '__timeout__', message: err.message }) as Frame);
    if (first.type !== '__open__') {
      await client.close();
      throw new Error(`client inside ${host.name} did not connect: ${JSON.stringify(first)} ${client.stderr.join('')}`);
    }
    return client;
  }

  send(frame: unknown): void {
    this.proc.stdin!.write(`${typeof frame === 'string' ? frame : JSON.stringify(frame)}\n`);
  }

  async request(frame: unknown, match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const from = this.frames.length;
    this.send(frame);
    return poll(() => this.frames.slice(from).find(match), { timeoutMs, intervalMs: 20, what: `reply to ${JSON.stringify(frame).slice(0, 80)} (inside)` });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    this.proc.kill('SIGKILL');
    await this.exit;
  }
}

// ---------------------------------------------------------------------------------------

describe('faults: delay, loss, flapping peers, partitions, kill -9 (network namespaces)', function () {
  this.timeout(60_000);

  let net_: TestNetwork | null = null;
  let started: Instance[] = [];
  let clients: ChatClient[] = [];
  let proxies: DelayProxy[] = [];
  let timers: NodeJS.Timeout[] = [];

  before(async function () {
    await requireNetns(this);
  });

  afterEach(async function () {
    for (const t of timers) clearInterval(t);
    timers = [];
    if (this.currentTest?.state === 'failed') dumpInstanceOutput(started, 60);
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    clients = [];
    await stopAll();
    started = [];
    await Promise.all(proxies.map((p) => p.close().catch(() => {})));
    proxies = [];
    await net_?.destroy();
    net_ = null;
  });

  const ports = distinctPorts;

  async function startIn(host: NetHost, port: number, env: Record<string, string>): Promise<Instance> {
    const instance = await Instance.start({ netns: host.name, host: host.address, port, env });
    started.push(instance);
    return instance;
  }

  async function connect(node: Instance, timeoutMs = 10_000): Promise<TestClient> {
    const client = await TestClient.connect(node.url, { timeoutMs });
    clients.push(client);
    return client;
  }

  async function connectInside(host: NetHost, node: Instance): Promise<InsideClient> {
    const client = await InsideClient.connect(host, node.port);
    clients.push(client);
    return client;
  }

  async function join(client: ChatClient, room: string, user: string): Promise<Frame> {
    return client.request({ type: 'join', room, user }, (f) => f.type === 'joined' && f.room === room, 10_000);
  }

  async function membersOf(client: ChatClient, room: string): Promise<string[]> {
    const reply = await client.request({ type: 'members', room }, (f) => f.type === 'members' && f.room === room, 5000);
    return reply.members as string[];
  }

  /** /health with a deadline of our own (a lossy link may need a retransmission or two). */
  async function healthOf(node: Instance, timeoutMs = 5000): Promise<FullHealth> {
    const res = await fetch(`${node.httpUrl}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    return (await res.json()) as FullHealth;
  }

  async function api(node: Instance, method: string, path: string, body: unknown = null): Promise<{ status: number; text: string }> {
    const res = await fetch(`${node.httpUrl}${path}`, {
      method,
      headers: body === null ? {} : { 'content-type': 'application/json' },
      body: body === null ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, text: await res.text() };
  }

  /** Resolves once the wall clock reaches `at` (pacing a scenario, not synchronising with anything). */
  function until(at: number): Promise<unknown> {
    return poll(() => Date.now() >= at, { timeoutMs: Math.max(0, at - Date.now()) + 1000, intervalMs: 20, what: 'pacing' });
  }

  /** nftables in the host's namespace: drop `percent`% of TCP packets, in and out, counted. */
  async function addLoss(host: NetHost, percent: number): Promise<void> {
    try {
      await run('nft', ['--version']);
    } catch {
      throw new Error('`nft` is not installed: apt-get install -y nftables (.ci/run installs it)');
    }
    const nft = (...args: string[]) => net_!.exec(host, 'nft', args);
    await nft('add', 'table', 'inet', 'chaos');
    await nft('add', 'chain', 'inet', 'chaos', 'in', '{ type filter hook input priority 0 ; policy accept ; }');
    await nft('add', 'chain', 'inet', 'chaos', 'out', '{ type filter hook output priority 0 ; policy accept ; }');
    for (const chain of ['in', 'out']) {
      await nft('add', 'rule', 'inet', 'chaos', chain, 'meta', 'l4proto', 'tcp', 'numgen', 'random', 'mod', '100', '<', String(percent), 'counter', 'drop');
    }
  }

  /** Packets the loss rules dropped so far. */
  async function droppedPackets(host: NetHost): Promise<number> {
    const listing = await net_!.exec(host, 'nft', ['list', 'table', 'inet', 'chaos']);
    return [...listing.matchAll(/packets (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  }

  interface Cluster {
    hosts: [NetHost, NetHost, NetHost];
    nodes: [Instance, Instance, Instance];
    ports: number[];
    env: (k: number) => Record<string, string>;
  }

  /** Three hosts, one instance each, every instance statically peered with the other two, all links up. */
  async function cluster(): Promise<Cluster> {
    net_ = await TestNetwork.create();
    const hosts = [await net_.addHost(), await net_.addHost(), await net_.addHost()] as [NetHost, NetHost, NetHost];
    const ps = ports(3);
    const env = (k: number) => ({
      ...FAST_ENV,
      PEERS: [0, 1, 2]
        .filter((j) => j !== k)
        .map((j) => `ws://${hosts[j]!.address}:${ps[j]}`)
        .join(','),
    });
    const nodes = (await Promise.all(hosts.map((h, k) => startIn(h, ps[k]!, env(k))))) as [Instance, Instance, Instance];
    await Promise.all(nodes.map((n) => n.waitForPeersUp(nodes.filter((o) => o !== n).map((o) => o.nodeId), 10_000)));
    return { hosts, nodes, ports: ps, env };
  }

  // Either shape: one event, or the batch of a moment (`joined` / `left`), as after a heal.
  /** What a presence frame says about `user`: one event, or a batch (joined/left lists, applied as leaves then joins). */
  const presenceEventsFor = (f: Frame, room: string, user: string): string[] => {
    if (f.type !== 'presence' || f.room !== room) return [];
    if (Array.isArray(f.joined) || Array.isArray(f.left)) {
      return [...((f.left as string[] | undefined)?.includes(user) ? ['leave'] : []), ...((f.joined as string[] | undefined)?.includes(user) ? ['join'] : [])];
    }
    return f.user === user ? [f.event as string] : [];
  };
  const isPresence = (event: 'join' | 'leave', user: string, room: string) => (f: Frame) => tellsPresence(f, event, user, room);

  // -------------------------------------------------------------------------------------

  it('delay 100 ms and 5% loss between peers: no false alarm, every message once, acknowledged writes readable', async () => {
    net_ = await TestNetwork.create();
    const [h1, h2] = [await net_.addHost(), await net_.addHost()] as [NetHost, NetHost];
    const [p1, p2] = ports(2) as [number, number];
    // Default heartbeat and timeout on purpose: a slow, lossy link must not look dead.
    const b = await startIn(h2, p2, { DISCOVERY: 'off', MESH_SECRET });
    await addLoss(h2, LOSS_PERCENT);
    const proxy = await DelayProxy.start(net_.gateway, { host: h2.address, port: p2 }, DELAY_MS);
    proxies.push(proxy);
    const a = await startIn(h1, p1, { DISCOVERY: 'static', MESH_SECRET, PEERS: proxy.url });

    const rowAt = (h: FullHealth, id: string) => h.peers.filter((p) => p.id === id);
    const [upA, upB] = await poll(
      async () => {
        const [ha, hb] = await Promise.all([healthOf(a, 8000), healthOf(b, 8000)]);
        const ra = rowAt(ha, b.nodeId);
        const rb = rowAt(hb, a.nodeId);
        return ra.length === 1 && ra[0]!.state === 'up' && rb.length === 1 && rb[0]!.state === 'up' ? ([ra[0]!, rb[0]!] as const) : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'the link A→proxy→B up on both sides' },
    );
    expect(upA.address, "A's row for B is the proxy").to.equal(proxy.url);
    expect(proxy.connections, 'connections through the proxy').to.be.at.least(1);
    // Positive control: the link really crosses the delay (a ping's round trip ≥ 2 × delay).
    const rtt = await poll(async () => rowAt(await healthOf(a, 8000), b.nodeId)[0]?.rttMs ?? undefined, { timeoutMs: 10_000, what: 'an rtt at A' });
    expect(rtt, 'rtt at A through the proxy (ms)').to.be.at.least(2 * DELAY_MS);

    // Every 250 ms for at least 10 s: both sides show the other up, on the same row since the start.
    const problems: string[] = [];
    let samples = 0;
    let stop = false;
    const monitorStart = Date.now();
    const monitor = (async () => {
      while (!stop) {
        const tick = Date.now();
        try {
          const [ha, hb] = await Promise.all([healthOf(a, 8000), healthOf(b, 8000)]);
          samples++;
          for (const [who, rows, want] of [['A', rowAt(ha, b.nodeId), upA], ['B', rowAt(hb, a.nodeId), upB]] as const) {
            if (rows.length !== 1 || rows[0]!.state !== 'up' || rows[0]!.since !== want.since) {
              problems.push(`${new Date().toISOString()} ${who}: ${JSON.stringify(rows)}`);
            }
          }
        } catch (err) {
          problems.push(`${new Date().toISOString()} /health failed: ${(err as Error).message}`);
        }
        const wait = 250 - (Date.now() - tick);
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
    })();

    try {
      const room = `slow-${randomInt(1 << 30).toString(36)}`;
      const alice = await connect(a);
      const bob = await connect(b);
      await join(alice, room, 'alice');
      await join(bob, room, 'bob');
      // Presence crosses the slow link both ways.
      await alice.waitFor(isPresence('join', 'bob', room), 10_000, "bob's join at alice");
      await poll(async () => JSON.stringify(await membersOf(bob, room)) === '["alice","bob"]', { timeoutMs: 10_000, intervalMs: 100, what: 'alice in the member list at bob' });

      // 50 messages each, sent at once; then a marker from each.
      const members = [alice, bob];
      const count = 50;
      const texts: string[] = [];
      members.forEach((c, i) => {
        for (let k = 0; k < count; k++) {
          const text = `m-${i}-${k}`;
          texts.push(text);
          c.send({ type: 'message', room, text });
        }
      });
      const hasAll = (c: TestClient, list: string[]) => list.every((t) => c.messages(room).some((f) => f.text === t));
      await poll(() => members.every((c) => hasAll(c, texts)), { timeoutMs: 20_000, what: 'every message at every member' });
      const markers = members.map((_, i) => `marker-${i}`);
      members.forEach((c, i) => c.send({ type: 'message', room, text: markers[i] }));
      await poll(() => members.every((c) => hasAll(c, markers)), { timeoutMs: 20_000, what: 'every marker at every member' });
      for (const [i, c] of members.entries()) {
        const ours = c.messages(room).filter((f) => texts.includes(f.text as string) || markers.includes(f.text as string));
        const ids = ours.map((f) => f.id as string);
        expect(new Set(ids).size, `client ${i} got a duplicate`).to.equal(ids.length);
        expect(ours.length, `client ${i} message count`).to.equal(texts.length + markers.length);
        // One path: each sender's messages arrive in the order they were sent.
        for (const s of [0, 1]) {
          const seq = ours.map((f) => f.text as string).filter((t) => t.startsWith(`m-${s}-`)).map((t) => Number(t.split('-')[2]));
          expect(seq, `order of client ${s}'s messages at client ${i}`).to.deep.equal([...Array(count).keys()]);
        }
      }

      // A REST write acknowledged on h1 is readable on h2 at once.
      const created = await api(a, 'POST', '/api/conversations');
      expect(created.status, created.text).to.equal(201);
      const conv = (JSON.parse(created.text) as { id: string }).id;
      const posted: ApiMessage[] = [];
      for (let k = 0; k < 5; k++) {
        const res = await api(a, 'POST', `/api/conversations/${conv}/messages`, { sender: 'customer', content: `slow ${k}` });
        expect(res.status, res.text).to.equal(201);
        posted.push(JSON.parse(res.text) as ApiMessage);
        const read = await api(b, 'GET', `/api/conversations/${conv}`);
        expect(read.status, `GET on h2 right after the 201 of "slow ${k}": ${read.text}`).to.equal(200);
        expect((JSON.parse(read.text) as { messages: ApiMessage[] }).messages, `h2 right after the 201 of "slow ${k}"`).to.deep.equal(posted);
      }

      await until(monitorStart + 10_000);
    } finally {
      stop = true;
      await monitor;
    }
    expect(problems, 'samples where the peer was not up (or /health failed)').to.deep.equal([]);
    expect(samples, 'health samples over 10 s').to.be.at.least(20);
    for (const [name, node] of [['A', a], ['B', b]] as const) {
      expect(node.logs.filter((l) => l.msg === 'peer down'), `"peer down" lines of ${name}`).to.deep.equal([]);
      expect(node.logs.filter((l) => l.msg === 'peer up').length, `"peer up" lines of ${name}`).to.equal(1);
    }
    // Positive control: the loss was real.
    expect(await droppedPackets(h2), 'TCP packets dropped on h2').to.be.above(0);
  });

  it('a peer that flaps every few seconds: no loss, no duplicates, clean links and presence, flat memory', async () => {
    const c = await cluster();
    const [n1, n2] = c.nodes;
    let n3 = c.nodes[2];
    const room = `flap-${randomInt(1 << 30).toString(36)}`;

    const alice = await connect(n1);
    const bob = await connect(n2);
    await join(alice, room, 'alice');
    await join(bob, room, 'bob');
    await alice.waitFor(isPresence('join', 'bob', room), 10_000, "bob's join at alice");
    let carol: TestClient = await connect(n3);
    await join(carol, room, 'carol0');
    let carolName = 'carol0';
    await poll(() => [alice, bob].every((m) => m.frames.some(isPresence('join', 'carol0', room))), { timeoutMs: 10_000, what: "carol0's join at alice and bob" });
    const rssBefore = (await healthOf(n1)).memory.rssBytes;

    // A message every 100 ms from alice and from bob, all through the flapping.
    const sent: string[] = [];
    let seq = 0;
    const sender = setInterval(() => {
      const k = seq++;
      for (const [name, client] of [['alice', alice], ['bob', bob]] as const) {
        if (client.closeCode !== null) continue;
        const text = `${name}-${k}`;
        sent.push(text);
        client.send({ type: 'message', room, text });
      }
    }, 100);
    timers.push(sender);

    const oldIds: string[] = [];
    for (let r = 1; r <= 4; r++) {
      const cycleStart = Date.now();
      const old = n3;
      oldIds.push(old.nodeId);
      await old.kill('SIGKILL');
      // Restarted as soon as both others see it down.
      await Promise.all(
        [n1, n2].map((n) =>
          poll(async () => !(await healthOf(n)).peers.some((p) => p.id === old.nodeId && p.state === 'up'), {
            timeoutMs: 8000,
            intervalMs: 50,
            what: `${n.nodeId} to see the killed ${old.nodeId} down (restart ${r})`,
          }),
        ),
      );
      n3 = await startIn(c.hosts[2], c.ports[2]!, c.env(2));
      expect(n3.nodeId, 'a new node id at each start').to.not.be.oneOf(oldIds);
      await Promise.all([n1, n2].map((n) => n.waitForPeersUp([n3.nodeId], 8000)));
      carolName = `carol${r}`;
      carol = await connect(n3);
      await join(carol, room, carolName);
      if (r < 4) await until(cycleStart + 2500);
    }
    clearInterval(sender);

    // Every message alice and bob sent reached both exactly once (checked behind a final marker).
    const members = [alice, bob];
    const hasAll = (cl: TestClient, list: string[]) => list.every((t) => cl.messages(room).some((f) => f.text === t));
    await poll(() => members.every((m) => hasAll(m, sent)), {
      timeoutMs: 15_000,
      what: `all ${sent.length} messages at alice and bob`,
    }).catch((err: Error) => {
      const missing = members.map((m, i) => `${['alice', 'bob'][i]} misses ${JSON.stringify(sent.filter((t) => !m.messages(room).some((f) => f.text === t)).slice(0, 20))}`);
      throw new Error(`${err.message}\n${missing.join('\n')}`);
    });
    const markers = ['marker-alice', 'marker-bob'];
    members.forEach((m, i) => m.send({ type: 'message', room, text: markers[i] }));
    await poll(() => members.every((m) => hasAll(m, markers)), { timeoutMs: 10_000, what: 'both markers at alice and bob' });
    for (const [i, m] of members.entries()) {
      const ours = m.messages(room).filter((f) => sent.includes(f.text as string) || markers.includes(f.text as string));
      const byText = new Map<string, number>();
      for (const f of ours) byText.set(f.text as string, (byText.get(f.text as string) ?? 0) + 1);
      const dups = [...byText].filter(([, n]) => n > 1);
      expect(dups, `duplicates at ${['alice', 'bob'][i]}`).to.deep.equal([]);
      expect(ours.length, `messages at ${['alice', 'bob'][i]}`).to.equal(sent.length + markers.length);
    }
    expect(sent.length, 'messages sent during the flapping').to.be.at.least(100);

    // Links: every node shows exactly the two others up, one row each; no old id is up.
    const nodes = [n1, n2, n3];
    let last: string[] = [];
    await poll(
      async () => {
        const healths = await Promise.all(nodes.map((n) => healthOf(n)));
        last = [];
        nodes.forEach((node, k) => {
          const rows: PeerRow[] = healths[k]!.peers;
          for (const other of nodes) {
            if (other === node) continue;
            const mine = rows.filter((p) => p.id === other.nodeId);
            if (mine.length !== 1 || mine[0]!.state !== 'up') last.push(`h${k + 1} rows for ${other.nodeId}: ${JSON.stringify(mine)}`);
          }
          const up = rows.filter((p) => p.state === 'up');
          if (up.length !== 2) last.push(`h${k + 1} has ${up.length} rows up, want 2: ${JSON.stringify(rows)}`);
          const staleUp = rows.filter((p) => p.id !== null && oldIds.includes(p.id) && p.state === 'up');
          if (staleUp.length > 0) last.push(`h${k + 1} shows old ids up: ${JSON.stringify(staleUp)}`);
        });
        return last.length === 0;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'every node to show exactly the two others up, one row each' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n  ${last.join('\n  ')}`);
    });

    // Presence: the member list everywhere is exactly who is connected now.
    const expected = ['alice', 'bob', carolName].sort();
    let lists: string[][] = [];
    await poll(
      async () => {
        lists = await Promise.all([alice, bob, carol].map((m) => membersOf(m, room)));
        return lists.every((l) => JSON.stringify(l) === JSON.stringify(expected));
      },
      { timeoutMs: 10_000, intervalMs: 100, what: `members ${JSON.stringify(expected)} on h1, h2 and h3` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n  last lists (h1, h2, h3): ${JSON.stringify(lists)}`);
    });

    const rssAfter = (await healthOf(n1)).memory.rssBytes;
    expect((rssAfter - rssBefore) / MiB, `RSS growth of h1's process, MiB (${rssBefore} → ${rssAfter})`).to.be.below(50);
  });

  it('presence after partition and heal: members leave within 5 s and come back within 10 s', async () => {
    const c = await cluster();
    const [n1, n2, n3] = c.nodes;
    const room = `presence-${randomInt(1 << 30).toString(36)}`;
    const alice = await connect(n1);
    const bob = await connect(n2);
    // carol's client runs inside h3, so it still reaches its instance while h3 is cut off.
    const carol = await connectInside(c.hosts[2], n3);
    await join(alice, room, 'alice');
    await join(bob, room, 'bob');
    await join(carol, room, 'carol');
    const all = ['alice', 'bob', 'carol'];
    const users = new Map<ChatClient, string>([
      [alice, 'alice'],
      [bob, 'bob'],
      [carol, 'carol'],
    ]);
    let lists: string[][] = [];
    const listsAre = async (want: Map<ChatClient, string[]>) => {
      lists = await Promise.all([...want.keys()].map((m) => membersOf(m, room)));
      return [...want.values()].every((w, i) => JSON.stringify(lists[i]) === JSON.stringify(w));
    };
    await poll(() => listsAre(new Map([...users.keys()].map((m) => [m, all] as [ChatClient, string[]]))), { timeoutMs: 10_000, intervalMs: 100, what: 'all three in every member list' });

    // Presence events from here on.
    const mark = new Map([...users.keys()].map((m) => [m, m.frames.length] as [ChatClient, number]));
    const eventsAbout = (m: ChatClient, user: string) =>
      m.frames.slice(mark.get(m)).flatMap((f) => presenceEventsFor(f, room, user));

    const cutAt = Date.now();
    await net_!.partition(c.hosts[2]);
    const apart = new Map<ChatClient, string[]>([
      [alice, ['alice', 'bob']],
      [bob, ['alice', 'bob']],
      [carol, ['carol']],
    ]);
    await poll(
      async () =>
        eventsAbout(alice, 'carol').includes('leave') &&
        eventsAbout(bob, 'carol').includes('leave') &&
        eventsAbout(carol, 'alice').includes('leave') &&
        eventsAbout(carol, 'bob').includes('leave') &&
        (await listsAre(apart)),
      { timeoutMs: 5000, intervalMs: 50, what: 'leave events and member lists without the other side, on both sides of the cut' },
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}\n  member lists (h1, h2, h3): ${JSON.stringify(lists)}\n  events: alice<-carol ${JSON.stringify(eventsAbout(alice, 'carol'))}, ` +
          `bob<-carol ${JSON.stringify(eventsAbout(bob, 'carol'))}, carol<-alice ${JSON.stringify(eventsAbout(carol, 'alice'))}, carol<-bob ${JSON.stringify(eventsAbout(carol, 'bob'))}`,
      );
    });
    expect(Date.now() - cutAt, 'ms from the cut to every leave').to.be.below(5000);

    const healAt = Date.now();
    await net_!.heal(c.hosts[2]);
    await poll(
      async () =>
        eventsAbout(alice, 'carol').at(-1) === 'join' &&
        eventsAbout(bob, 'carol').at(-1) === 'join' &&
        eventsAbout(carol, 'alice').at(-1) === 'join' &&
        eventsAbout(carol, 'bob').at(-1) === 'join' &&
        (await listsAre(new Map([...users.keys()].map((m) => [m, all] as [ChatClient, string[]])))),
      { timeoutMs: 10_000, intervalMs: 100, what: 'join events and all three in every member list after the heal' },
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}\n  member lists (h1, h2, h3): ${JSON.stringify(lists)}\n  events: alice<-carol ${JSON.stringify(eventsAbout(alice, 'carol'))}, ` +
          `bob<-carol ${JSON.stringify(eventsAbout(bob, 'carol'))}, carol<-alice ${JSON.stringify(eventsAbout(carol, 'alice'))}, carol<-bob ${JSON.stringify(eventsAbout(carol, 'bob'))}`,
      );
    });
    expect(Date.now() - healAt, 'ms from the heal to every join').to.be.below(10_000);
    // One leave and one join each: no repeated or spurious presence events.
    expect(eventsAbout(alice, 'carol'), "carol's presence at alice").to.deep.equal(['leave', 'join']);
    expect(eventsAbout(bob, 'carol'), "carol's presence at bob").to.deep.equal(['leave', 'join']);
    expect(eventsAbout(carol, 'alice'), "alice's presence at carol").to.deep.equal(['leave', 'join']);
    expect(eventsAbout(carol, 'bob'), "bob's presence at carol").to.deep.equal(['leave', 'join']);
    expect(eventsAbout(alice, 'bob'), "bob's presence at alice (same side of the cut)").to.deep.equal([]);
    expect(eventsAbout(bob, 'alice'), "alice's presence at bob (same side of the cut)").to.deep.equal([]);
  });

  it('acknowledged REST writes are never lost across a kill -9', async () => {
    const c = await cluster();
    const [n1, n2, n3] = c.nodes;
    const created = await api(n1, 'POST', '/api/conversations');
    expect(created.status, created.text).to.equal(201);
    const conv = (JSON.parse(created.text) as { id: string }).id;
    const posted: ApiMessage[] = [];
    for (let k = 0; k < 20; k++) {
      const res = await api(n1, 'POST', `/api/conversations/${conv}/messages`, { sender: k % 2 ? 'agent' : 'customer', content: `acked ${k}` });
      expect(res.status, res.text).to.equal(201);
      posted.push(JSON.parse(res.text) as ApiMessage);
    }
    await n1.kill('SIGKILL');
    for (const [name, node] of [['h2', n2], ['h3', n3]] as const) {
      const read = await api(node, 'GET', `/api/conversations/${conv}`);
      expect(read.status, `GET on ${name}: ${read.text}`).to.equal(200);
      expect((JSON.parse(read.text) as { messages: ApiMessage[] }).messages, `history on ${name} after h1's kill -9`).to.deep.equal(posted);
    }
  });
});
