/**
 * Cluster mode (`node server.js --cluster`, what `npm start` runs) on real processes: a primary
 * forks WORKERS workers that share PORT for clients, each a full mesh node with a mesh port of
 * its own, linked to its siblings over loopback. Clients and REST calls land on either worker;
 * a killed worker is replaced; SIGTERM drains them all.
 *
 * Which worker served something is never guessed: /health names its node, and every message id
 * ends with the id of the node that created it (`<hlc>-<nodeId>`), so a client's echo tells which
 * worker holds its connection and a REST 201 tells which worker took the write.
 * Never a sleep: every wait polls with a deadline or waits for a frame or an event.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { TestClient } from '../helpers/client.js';
import { ROOT, SERVER, freePort, type Health, type LogLine } from '../helpers/instance.js';
import { poll, withTimeout } from '../helpers/wait.js';

// ---------------------------------------------------------------------------------------------
// Processes: /proc

/** The parent pid and state of a process, or null if there is no such process. */
function procStat(pid: number): { ppid: number; state: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid …; comm may hold spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}

/** True while the process exists and is not a zombie (a zombie is dead, only not reaped yet). */
function processAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== null && stat.state !== 'Z';
}

function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (stat && stat.ppid === ppid && stat.state !== 'Z') out.push(Number(name));
  }
  return out.sort((a, b) => a - b);
}

function isOurServer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(SERVER);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// A cluster: `node server.js --cluster` with its workers

const clusters = new Set<Cluster>();

class Cluster {
  readonly logs: LogLine[] = [];
  readonly output: string[] = [];
  readonly stderr: string[] = [];
  /** Every worker pid ever seen, so cleanup finds workers a dead primary left behind. */
  readonly seenWorkers = new Set<number>();
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;

  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
  ) {
    this.exited = once(proc, 'exit').then(([code, signal]) => {
      this.exitCode = code as number | null;
      this.exitSignal = signal as NodeJS.Signals | null;
    });
    const lines = (sink: string[]) => {
      let buffer = '';
      return (chunk: Buffer) => {
        buffer += chunk.toString();
        let nl: number;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          sink.push(line);
          this.output.push(line);
          try {
            this.logs.push(JSON.parse(line) as LogLine);
          } catch {
            // plain text (an error on stderr): kept in output
          }
        }
      };
    };
    proc.stdout!.on('data', lines([]));
    proc.stderr!.on('data', lines(this.stderr));
  }

  /** Spawns the primary; does not wait for anything. */
  static async spawn(env: Record<string, string> = {}): Promise<Cluster> {
    const port = env.PORT ? Number(env.PORT) : await freePort();
    const full = { PATH: process.env.PATH ?? '', DISCOVERY: 'off', LOG_LEVEL: 'debug', WORKERS: '2', ...env, PORT: String(port) };
    const proc = spawn(process.execPath, [SERVER, '--cluster'], { cwd: ROOT, env: full, stdio: ['ignore', 'pipe', 'pipe'] });
    const cluster = new Cluster(proc, port);
    clusters.add(cluster);
    return cluster;
  }

  /** Spawns a cluster and waits until two workers answer /health, each seeing the other up. */
  static async start(env: Record<string, string> = {}): Promise<{ cluster: Cluster; ids: [string, string] }> {
    const cluster = await Cluster.spawn(env);
    try {
      const ids = await cluster.waitLinked({ timeoutMs: 10_000 });
      return { cluster, ids };
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${cluster.output.join('\n')}`);
    }
  }

  get alive(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** The primary's live children (its workers). */
  workers(): number[] {
    if (!this.alive) return [];
    const pids = childrenOf(this.proc.pid!);
    for (const pid of pids) this.seenWorkers.add(pid);
    return pids;
  }

  /** Worker pid → node id, from the primary's `worker ready` log lines. */
  nodeOfPid(pid: number): string | undefined {
    return this.logs.find((l) => l.node === 'primary' && l.msg === 'worker ready' && l.pid === pid)?.workerNode as string | undefined;
  }

  /** GET /health on a connection of its own (so the kernel/primary may hand it to either worker). */
  async health(): Promise<{ status: number; body: Health }> {
    const res = await fresh(this.port, 'GET', '/health');
    return { status: res.status, body: res.body as Health };
  }

  /**
   * Polls /health on fresh connections until two node ids (none of `gone`) have each, in its
   * latest answer, the other `up`, and no id of `gone` `up`. Resolves with the two ids.
   */
  async waitLinked(options: { gone?: string[]; timeoutMs?: number } = {}): Promise<[string, string]> {
    const gone = options.gone ?? [];
    const latest = new Map<string, Health>();
    return poll(
      async () => {
        if (!this.alive) throw new Error(`the primary exited (code ${this.exitCode}, signal ${this.exitSignal})`);
        const { status, body } = await this.health();
        if (status !== 200) return null;
        latest.set(body.node.id, body);
        const ids = [...latest.keys()].filter((id) => !gone.includes(id));
        const upAt = (self: string, other: string) => latest.get(self)!.peers.some((p) => p.id === other && p.state === 'up');
        for (const a of ids) {
          for (const b of ids) {
            if (a >= b || !upAt(a, b) || !upAt(b, a)) continue;
            const staleUp = [a, b].some((self) => latest.get(self)!.peers.some((p) => gone.includes(p.id ?? '') && p.state === 'up'));
            if (!staleUp) return [a, b] as [string, string];
          }
        }
        return null;
      },
      { timeoutMs: options.timeoutMs ?? 10_000, intervalMs: 20, what: `two workers of :${this.port} linked to each other${gone.length ? ` (gone: ${gone.join(', ')})` : ''}` },
    );
  }

  waitExit(timeoutMs = 10_000): Promise<void> {
    return withTimeout(this.exited, timeoutMs, `the primary on :${this.port} to exit`);
  }

  /** SIGKILLs the primary and every worker still alive (SIGCONT first, in case one was stopped). */
  async destroy(): Promise<void> {
    const pids = new Set([...this.workers(), ...this.seenWorkers]);
    if (this.alive) {
      this.proc.kill('SIGCONT');
      this.proc.kill('SIGKILL');
      await this.waitExit(5000).catch(() => {});
    }
    for (const pid of pids) {
      if (!processAlive(pid) || !isOurServer(pid)) continue;
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await poll(() => [...pids].every((pid) => !processAlive(pid) || !isOurServer(pid)), { timeoutMs: 5000, what: 'leftover workers to die' }).catch(() => {});
    clusters.delete(this);
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP: on a fresh connection each time, or pinned to one worker on one kept-alive connection

interface Reply {
  status: number;
  body: any;
  text: string;
}

function parseBody(text: string): unknown {
  try {
    return text === '' ? null : JSON.parse(text);
  } catch {
    return { unparsable: text };
  }
}

/** One request on a connection of its own (no pool, `Connection: close`). */
function fresh(port: number, method: string, path: string, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string | number> = { connection: 'close' };
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode!, body: parseBody(text), text });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    }),
    5000,
    `${method} ${path} on :${port}`,
  );
}

const pinnedSockets: net.Socket[] = [];

/**
 * One TCP connection, kept alive, used for requests one after the other: every request on it
 * is served by the worker that accepted it. If the server closes it, the next request fails
 * (it never silently moves to another connection, and so to another worker).
 */
class Pinned {
  private buffer = Buffer.alloc(0);
  private pending: { resolve: (r: Reply) => void; reject: (e: Error) => void } | null = null;
  private closed = false;
  private readonly socket: net.Socket;
  nodeId = '';

  constructor(readonly port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    pinnedSockets.push(this.socket);
    this.socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.tryParse();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.pending?.reject(new Error('pinned connection closed by the server'));
      this.pending = null;
    });
  }

  request(method: string, path: string, body?: unknown): Promise<Reply> {
    if (this.closed) return Promise.reject(new Error('pinned connection is closed'));
    if (this.pending) return Promise.reject(new Error('pinned connection is busy'));
    const payload = body === undefined ? '' : JSON.stringify(body);
    const head =
      `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1:${this.port}\r\nconnection: keep-alive\r\n` +
      (body === undefined ? '' : `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n`) +
      '\r\n';
    const reply = new Promise<Reply>((resolve, reject) => {
      this.pending = { resolve, reject };
    });
    this.socket.write(head + payload);
    return withTimeout(reply, 5000, `${method} ${path} on a pinned connection to ${this.nodeId || `:${this.port}`}`);
  }

  private tryParse(): void {
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end === -1 || !this.pending) return;
    const lines = this.buffer.subarray(0, end).toString().split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    if (headers['transfer-encoding']) {
      this.pending.reject(new Error(`unexpected transfer-encoding ${headers['transfer-encoding']}`));
      this.pending = null;
      return;
    }
    const length = Number(headers['content-length'] ?? 0);
    if (this.buffer.length < end + 4 + length) return;
    const text = this.buffer.subarray(end + 4, end + 4 + length).toString();
    this.buffer = this.buffer.subarray(end + 4 + length);
    const pending = this.pending;
    this.pending = null;
    pending.resolve({ status: Number(lines[0].split(' ')[1]), body: parseBody(text), text });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Opens connections until one is held by each of the given node ids; closes the others. */
async function pinToEach(port: number, ids: string[]): Promise<Map<string, Pinned>> {
  const pinned = new Map<string, Pinned>();
  await poll(
    async () => {
      const conn = new Pinned(port);
      const res = await conn.request('GET', '/health');
      const id = (res.body as Health).node.id;
      if (res.status === 200 && ids.includes(id) && !pinned.has(id)) {
        conn.nodeId = id;
        pinned.set(id, conn);
      } else {
        conn.destroy();
      }
      return ids.every((i) => pinned.has(i));
    },
    { timeoutMs: 5000, intervalMs: 1, what: `a connection held by each of ${ids.join(', ')}` },
  );
  return pinned;
}

// ---------------------------------------------------------------------------------------------
// WebSocket clients

const clients: TestClient[] = [];

async function connect(cluster: Cluster): Promise<TestClient> {
  const client = await TestClient.connect(cluster.url);
  clients.push(client);
  return client;
}

/** The node that created a message: ids are `<hlc>-<nodeId>`. */
function creator(id: unknown): string {
  expect(id, 'message id').to.be.a('string').and.match(/^[0-9a-z]+-[0-9a-f]+$/);
  return (id as string).slice((id as string).lastIndexOf('-') + 1);
}

/**
 * Connects `count` clients, joins each to `room` and has each say `hello <i>`; resolves with the
 * clients and, for each, the node its connection is on (from its echo's id).
 */
async function joinAndGreet(cluster: Cluster, room: string, count: number): Promise<{ members: TestClient[]; nodeOf: string[]; echoIds: string[] }> {
  const members = await Promise.all(Array.from({ length: count }, () => connect(cluster)));
  await Promise.all(members.map((c, i) => c.join(room, `u${i}`)));
  const echoes = await Promise.all(members.map((c, i) => c.say(room, `hello ${i}`)));
  return { members, nodeOf: echoes.map((e) => creator(e.id)), echoIds: echoes.map((e) => e.id as string) };
}

/**
 * Waits until every member holds every one of `texts` in `room`; then every member sends a
 * marker and, once every member holds every marker, every path between the workers has been
 * flushed (links and connections are FIFO), so a duplicate would already be in. Checks that each
 * member got each text exactly once, with one id per text.
 */
async function expectAllOnce(room: string, members: TestClient[], texts: string[]): Promise<void> {
  const hasAll = (c: TestClient, list: string[]) => list.every((t) => c.messages(room).some((f) => f.text === t));
  await poll(() => members.every((c) => hasAll(c, texts)), { timeoutMs: 10_000, what: `every message of ${room} at every member` });
  const markers = members.map((_, i) => `marker ${i}`);
  members.forEach((c, i) => c.send({ type: 'message', room, text: markers[i] }));
  await poll(() => members.every((c) => hasAll(c, markers)), { timeoutMs: 10_000, what: `every marker of ${room} at every member` });
  const idOf = new Map<string, string>();
  for (const [i, c] of members.entries()) {
    const ours = c.messages(room).filter((f) => texts.includes(f.text as string));
    const ids = ours.map((f) => f.id as string);
    expect(new Set(ids).size, `client ${i}: a duplicate among ${JSON.stringify(ids)}`).to.equal(ids.length);
    expect(ours.map((f) => f.text).sort(), `client ${i}: texts received`).to.deep.equal([...texts].sort());
    for (const f of ours) {
      const known = idOf.get(f.text as string);
      if (known) expect(f.id, `id of ${f.text} at client ${i}`).to.equal(known);
      else idOf.set(f.text as string, f.id as string);
    }
  }
}

// ---------------------------------------------------------------------------------------------

const blockers: net.Server[] = [];

afterEach(async function () {
  this.timeout(20_000);
  await Promise.all(clients.splice(0).map((c) => withTimeout(c.close(), 2000, 'a client to close').catch(() => {})));
  for (const s of pinnedSockets.splice(0)) s.destroy();
  for (const b of blockers.splice(0)) b.close();
  await Promise.all([...clusters].map((c) => c.destroy()));
});

describe('cluster mode (node server.js --cluster)', () => {
  it('clients spread over workers all receive a room\'s messages', async () => {
    const { cluster, ids } = await Cluster.start();
    expect(cluster.workers(), 'worker processes').to.have.length(2);
    const { members, nodeOf, echoIds } = await joinAndGreet(cluster, 'lobby', 10);
    // The connections landed on both workers: each client's echo was created by its own worker.
    expect(new Set(nodeOf), `nodes holding the clients (${nodeOf.join(', ')})`).to.have.keys(...ids);
    // /health agrees: each worker counts its own clients, and together they count all ten.
    const counted = new Map<string, number>();
    await poll(
      async () => {
        const { body } = await cluster.health();
        counted.set(body.node.id, body.connections);
        return ids.every((id) => counted.get(id) === nodeOf.filter((n) => n === id).length);
      },
      { what: `connections per worker in /health to be ${JSON.stringify(ids.map((id) => nodeOf.filter((n) => n === id).length))}` },
    );
    await expectAllOnce('lobby', members, members.map((_, i) => `hello ${i}`));
    // Every client has the same id for each message as its sender's echo.
    for (const c of members) {
      expect(c.messages('lobby').filter((f) => (f.text as string).startsWith('hello ')).map((f) => f.id).sort()).to.deep.equal([...echoIds].sort());
    }
  });

  it('REST writes on one worker are readable on another', async () => {
    const { cluster, ids } = await Cluster.start({ LOG_LEVEL: 'info' });
    // One kept-alive connection held by each worker: a write on one, then a read on the other,
    // is a read on another worker for certain. Fresh connections in between spread over both.
    const pinned = await pinToEach(cluster.port, ids);
    const at = (i: number) => pinned.get(ids[i % 2])!;
    const writers = new Set<string>();
    let freshGets = 0;

    const expectHistory = (res: Reply, conversation: string, expected: Array<{ id: string; content: string }>, where: string) => {
      expect(res.status, `${where}: ${res.text}`).to.equal(200);
      expect(res.body.id, where).to.equal(conversation);
      expect(
        (res.body.messages as Array<{ id: string; content: string }>).map((m) => ({ id: m.id, content: m.content })),
        where,
      ).to.deep.equal(expected);
    };
    const readEverywhere = async (writer: number, conversation: string, expected: Array<{ id: string; content: string }>, what: string) => {
      const other = at(writer + 1);
      expectHistory(await other.request('GET', `/api/conversations/${conversation}`), conversation, expected, `${what}, read at once on ${other.nodeId}`);
      for (let k = 0; k < 4; k++) {
        expectHistory(await fresh(cluster.port, 'GET', `/api/conversations/${conversation}`), conversation, expected, `${what}, fresh GET ${k}`);
        freshGets++;
      }
    };

    for (let c = 0; c < 20; c++) {
      const created = await at(c).request('POST', '/api/conversations');
      expect(created.status, `POST /api/conversations on ${at(c).nodeId}: ${created.text}`).to.equal(201);
      const conversation = created.body.id as string;
      await readEverywhere(c, conversation, [], `conversation ${c} created on ${at(c).nodeId}`);
      const expected: Array<{ id: string; content: string }> = [];
      for (let m = 0; m < 2; m++) {
        const writer = c + m;
        const content = `c${c} m${m}`;
        const posted = await at(writer).request('POST', `/api/conversations/${conversation}/messages`, { sender: m === 0 ? 'customer' : 'agent', content });
        expect(posted.status, `POST message on ${at(writer).nodeId}: ${posted.text}`).to.equal(201);
        // The message was created by the worker that holds the connection.
        expect(creator(posted.body.id), 'node that created the message').to.equal(at(writer).nodeId);
        writers.add(creator(posted.body.id));
        expected.push({ id: posted.body.id, content });
        await readEverywhere(writer, conversation, expected, `${content} posted on ${at(writer).nodeId}`);
      }
    }
    expect(freshGets).to.equal(20 * 3 * 4);
    expect(writers, 'nodes that took writes').to.have.keys(...ids);
    // The pinned connections were never moved: each still answers for its own worker.
    for (const [id, conn] of pinned) expect(((await conn.request('GET', '/health')).body as Health).node.id).to.equal(id);
    // Fresh connections reach both workers.
    const answered = new Set<string>();
    await poll(
      async () => {
        answered.add((await cluster.health()).body.node.id);
        return ids.every((id) => answered.has(id));
      },
      { what: 'both workers to answer /health on fresh connections' },
    );
  });

  it('a killed worker is replaced and the cluster heals', async () => {
    const { cluster, ids } = await Cluster.start();
    const before = await poll(() => {
      const pids = cluster.workers();
      return pids.length === 2 && pids.every((p) => cluster.nodeOfPid(p)) ? pids : null;
    }, { what: 'two workers, each logged ready' });
    expect(before.map((p) => cluster.nodeOfPid(p)).sort()).to.deep.equal([...ids].sort());
    const [victim, survivor] = before;
    const victimNode = cluster.nodeOfPid(victim)!;
    const survivorNode = cluster.nodeOfPid(survivor)!;

    const killedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    const replacement = await poll(
      () => {
        const pids = cluster.workers();
        const added = pids.filter((p) => !before.includes(p));
        return pids.length === 2 && pids.includes(survivor) && added.length === 1 ? added[0] : null;
      },
      { timeoutMs: 10_000, what: 'the primary to fork a replacement worker' },
    );
    expect(processAlive(victim), 'the killed worker').to.equal(false);
    const healed = await cluster.waitLinked({ gone: [victimNode], timeoutMs: Math.max(1, 10_000 - (Date.now() - killedAt)) });
    expect(healed, 'the survivor is one of the linked pair').to.include(survivorNode);
    const newNode = healed.find((id) => id !== survivorNode)!;
    expect(newNode, 'the replacement has a new node id').to.not.equal(victimNode);
    await poll(() => cluster.nodeOfPid(replacement), { what: 'the replacement to log ready' });
    expect(cluster.nodeOfPid(replacement), 'node id of the replacement pid').to.equal(newNode);
    expect(cluster.exitCode, 'the primary').to.equal(null);
    const died = cluster.logs.find((l) => l.node === 'primary' && l.msg === 'worker died: replacing it');
    expect(died, 'the primary logs the death').to.include({ pid: victim, signal: 'SIGKILL' });

    // Messages cross from the survivor to the replacement and back.
    const { members, nodeOf } = await joinAndGreet(cluster, 'after', 6);
    expect(new Set(nodeOf), `nodes holding the clients (${nodeOf.join(', ')})`).to.have.keys(survivorNode, newNode);
    await expectAllOnce('after', members, members.map((_, i) => `hello ${i}`));
  });

  it('SIGTERM drains all workers', async () => {
    const { cluster, ids } = await Cluster.start();
    const workers = await poll(() => {
      const pids = cluster.workers();
      return pids.length === 2 ? pids : null;
    }, { what: 'two workers' });
    const { members, nodeOf } = await joinAndGreet(cluster, 'drain', 6);
    expect(new Set(nodeOf), `nodes holding the clients (${nodeOf.join(', ')})`).to.have.keys(...ids);

    cluster.proc.kill('SIGTERM');
    const codes = await Promise.all(members.map((c) => c.waitClose(10_000)));
    expect(codes, 'close codes').to.deep.equal(members.map(() => 1001));
    await cluster.waitExit(10_000);
    expect({ code: cluster.exitCode, signal: cluster.exitSignal }, `primary exit\n${cluster.output.join('\n')}`).to.deep.equal({ code: 0, signal: null });
    await poll(() => workers.every((pid) => !processAlive(pid)), { timeoutMs: 5000, what: `workers ${workers.join(', ')} to be gone` });
    // Gracefully: each worker logged its own stop, the primary its end, and nobody was replaced.
    for (const id of ids) expect(cluster.logs.some((l) => l.node === id && l.msg === 'stopped'), `${id} logged "stopped"`).to.equal(true);
    expect(cluster.logs.some((l) => l.node === 'primary' && l.msg === 'cluster stopped')).to.equal(true);
    expect(cluster.logs.filter((l) => l.msg === 'worker died: replacing it')).to.deep.equal([]);
  });

  it('the primary survives workers dying together and replaces every one of them', async () => {
    // Workers can die at once (OOM killer, a poison input every worker sees, `kill -9` of the
    // group). The primary tells the survivors about each death over IPC, and a sibling that is
    // itself dying but not yet seen as disconnected must not take the primary down with it.
    // The race is timing-dependent: each round hit it about half the time on a 2-core machine,
    // so three rounds catch it about nine times in ten.
    const workers = 6;
    const cluster = await Cluster.spawn({ WORKERS: String(workers), LOG_LEVEL: 'info' });
    const readyWorkers = (exclude: number[]) => {
      const pids = cluster.workers();
      return pids.length === workers && pids.every((p) => !exclude.includes(p) && cluster.nodeOfPid(p)) ? pids : null;
    };
    let pids = await poll(() => readyWorkers([]), { timeoutMs: 10_000, what: `${workers} workers ready` });
    for (let round = 0; round < 3; round++) {
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      const killed = pids;
      const next = await poll(() => (!cluster.alive ? 'primary died' : readyWorkers(killed)), {
        timeoutMs: 10_000,
        what: `round ${round}: ${workers} new workers ready after all were killed`,
      });
      expect(
        { alive: cluster.alive, code: cluster.exitCode, signal: cluster.exitSignal },
        `round ${round}: the primary after its ${workers} workers were killed at once\n${cluster.stderr.join('\n')}`,
      ).to.deep.equal({ alive: true, code: null, signal: null });
      pids = next as number[];
    }
    expect((await cluster.health()).status, 'the cluster still serves').to.equal(200);
  });

  it('a worker that cannot start (PORT in use) fails the cluster instead of being replaced forever', async () => {
    // `node server.js` exits 1 with "cannot start … port in use"; `npm start` must not hide that
    // behind an endless fork/die loop that never exits.
    const blocker = net.createServer();
    blockers.push(blocker);
    blocker.listen(0);
    await once(blocker, 'listening');
    const port = (blocker.address() as net.AddressInfo).port;
    const cluster = await Cluster.spawn({ PORT: String(port), LOG_LEVEL: 'info' });
    await poll(() => cluster.stderr.some((l) => /EADDRINUSE|port in use/.test(l)), { timeoutMs: 10_000, what: 'a worker to report the port in use' });
    await cluster.waitExit(10_000).catch((err: Error) => {
      const deaths = cluster.logs.filter((l) => l.msg === 'worker died: replacing it').length;
      throw new Error(`${err.message}: the primary is still running after ${deaths} workers died and were replaced\n${cluster.output.slice(0, 12).join('\n')}`);
    });
    expect({ code: cluster.exitCode, signal: cluster.exitSignal }, cluster.output.join('\n')).to.deep.equal({ code: 1, signal: null });
  });

  for (const value of ['0', 'abc']) {
    it(`WORKERS validation: WORKERS=${value} exits 1 naming WORKERS`, async () => {
      const cluster = await Cluster.spawn({ WORKERS: value });
      await cluster.waitExit(10_000);
      expect({ code: cluster.exitCode, signal: cluster.exitSignal }, cluster.output.join('\n')).to.deep.equal({ code: 1, signal: null });
      expect(cluster.stderr.join('\n')).to.match(/WORKERS/);
      expect(cluster.logs.filter((l) => l.msg === 'cluster starting' || l.msg === 'chatmesh listening'), 'nothing started').to.deep.equal([]);
    });
  }
});
