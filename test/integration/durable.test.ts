/**
 * DATA_DIR on real processes: every acknowledged write (a 201, a 204, a WebSocket echo)
 * survives kill -9 of every instance, in the same order everywhere, with nothing deleted
 * coming back; a long conversation reads back whole; the node id is kept; and the faults at
 * start-up (a second process on the same directory, a directory that cannot be written, a
 * cut store file) stop the instance with a message naming the cause.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { TestClient } from '../helpers/client.js';
import { Instance, SERVER, freePort, stopAll } from '../helpers/instance.js';
import { ClientPool } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';
import { api, metric, metricsText } from '../helpers/rest.js';

const clients = new ClientPool();
let root = '';

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'chatmesh-durable-'));
});

afterEach(async () => {
  await clients.closeAll();
  await stopAll();
  rmSync(root, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts instance k of a static mesh over `ports`, keeping its store in root/h<k>. */
function startAt(ports: number[], k: number, env: Record<string, string> = {}): Promise<Instance> {
  const peers = ports.filter((_, j) => j !== k).map((p) => `ws://127.0.0.1:${p}`).join(',');
  // A window larger than everything the storm writes: no acknowledged message drops out of it.
  return Instance.start({ port: ports[k], env: { DISCOVERY: 'static', PEERS: peers, DATA_DIR: join(root, `h${k}`), LOG_LEVEL: 'info', MAX_MESSAGES_PER_CONVERSATION: '50000', ...env } });
}

async function history(i: Instance, id: string): Promise<string[] | null> {
  const answer = await api(i, 'GET', `/api/conversations/${id}`);
  return answer.status === 200 ? (answer.body.messages as Array<{ id: string }>).map((m) => m.id) : null;
}

describe('DATA_DIR: nothing acknowledged is lost when every instance is killed', function () {
  this.timeout(180_000);

  it('a storm of REST posts, deletes and WebSocket messages, kill -9 of all three at random moments, restart: every acknowledged write is on every instance in the same order, no delete undone (4 rounds)', async () => {
    const ports = await Promise.all([0, 1, 2].map(() => freePort()));
    let nodes = await Promise.all([0, 1, 2].map((k) => startAt(ports, k)));
    await Promise.all(nodes.map((n) => n.waitForPeersUp(nodes.filter((o) => o !== n).map((o) => o.nodeId), 10_000)));
    const ids = nodes.map((n) => n.nodeId);
    const conversations: string[] = [];
    for (let c = 0; c < 3; c++) conversations.push((await api(nodes[c], 'POST', '/api/conversations')).body.id as string);
    const acked = new Map<string, Set<string>>(conversations.map((c) => [c, new Set()]));
    const deleted = new Set<string>();
    const deleting = new Set<string>();

    for (let round = 0; round < 4; round++) {
      let running = true;
      // REST: two posters per instance; every fifth acknowledged message is deleted again.
      const posters = nodes.flatMap((node, k) =>
        [0, 1].map(async (p) => {
          for (let n = 0; running; n++) {
            const room = conversations[(k + p + n) % 3];
            try {
              const res = await api(node, 'POST', `/api/conversations/${room}/messages`, { sender: 'agent', content: `r${round} ${k}.${p}.${n}` });
              if (res.status === 201) acked.get(room)!.add(res.body.id as string);
              if (res.status === 201 && n % 5 === 0) {
                // A delete sent may be stored without its 204 arriving (killed in between): that message may go.
                deleting.add(res.body.id as string);
                const del = await api(node, 'DELETE', `/api/conversations/${room}/messages/${res.body.id as string}`);
                if (del.status === 204) deleted.add(res.body.id as string);
              }
            } catch {
              return; // killed
            }
          }
        }),
      );
      // WebSocket: one client per instance; its echoes are acknowledgements.
      const sockets = await Promise.all(nodes.map((n) => clients.connect(n)));
      await Promise.all(sockets.map((s, k) => s.join(conversations[k], `ws${k}`)));
      const senders = sockets.map(async (s, k) => {
        for (let n = 0; running && s.closeCode === null; n++) {
          s.send({ type: 'message', room: conversations[k], text: `r${round} ws${k} ${n}` });
          await sleep(3);
        }
      });
      // Kill -9 each instance at its own random moment.
      await Promise.all(nodes.map(async (n) => {
        await sleep(300 + Math.floor(Math.random() * 700));
        await n.kill('SIGKILL');
      }));
      running = false;
      await Promise.all([...posters, ...senders]);
      sockets.forEach((s, k) => {
        for (const f of s.messages(conversations[k])) if (f.user === `ws${k}` && typeof f.id === 'string') acked.get(conversations[k])!.add(f.id);
      });
      await clients.closeAll();

      nodes = await Promise.all([0, 1, 2].map((k) => startAt(ports, k)));
      expect(nodes.map((n) => n.nodeId), 'node ids kept in DATA_DIR').to.deep.equal(ids);
      await Promise.all(nodes.map((n) => n.waitForPeersUp(nodes.filter((o) => o !== n).map((o) => o.nodeId), 10_000)));
      for (const room of conversations) {
        const want = [...acked.get(room)!].filter((id) => !deleting.has(id));
        const lists = await poll(async () => {
          const got = await Promise.all(nodes.map((n) => history(n, room)));
          const same = got.every((g) => g !== null && JSON.stringify(g) === JSON.stringify(got[0]));
          return same && want.every((id) => got[0]!.includes(id)) ? got : null;
        }, { timeoutMs: 15_000, what: `round ${round}: conversation ${room} whole and identical on all three` }).catch(async (err) => {
          const got = await Promise.all(nodes.map((n) => history(n, room)));
          const missing = got.map((g) => want.filter((id) => !g?.includes(id)).length);
          throw new Error(`${(err as Error).message}: missing per instance ${missing.join(', ')} of ${want.length}`);
        });
        for (const id of deleted) expect(lists[0], `deleted ${id} back`).to.not.include(id);
      }
    }
    expect([...acked.values()].reduce((n, s) => n + s.size, 0)).to.be.greaterThan(100);
  });

  it('a conversation of 20,000 messages reads back whole after every instance restarts', async () => {
    const ports = await Promise.all([0, 1].map(() => freePort()));
    // Memory keeps its default window (1000): the rest is read back from the disk's (100,000).
    const env = { MAX_MESSAGES_PER_CONVERSATION: '1000', RATE_LIMIT_PER_SEC: '100000', RATE_LIMIT_BURST: '100000', MAX_REPLY_BYTES: '65536' };
    let nodes = await Promise.all([0, 1].map((k) => startAt(ports, k, env)));
    await nodes[0].waitForPeersUp([nodes[1].nodeId], 10_000);
    const room = (await api(nodes[0], 'POST', '/api/conversations')).body.id as string;
    const client = await clients.connect(nodes[0]);
    await client.join(room, 'writer');
    for (let n = 0; n < 20_000; n++) client.send({ type: 'message', room, text: `m${n}` });
    await client.waitFor((f) => f.type === 'message' && f.text === 'm19999', 60_000, 'the echo of the last message');
    const errors = client.frames.filter((f) => f.type === 'error');
    expect(errors, JSON.stringify(errors.slice(0, 3))).to.have.length(0);
    const written = client.messages(room).map((f) => f.id as string);
    expect(written).to.have.length(20_000);
    await clients.closeAll();
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    nodes = await Promise.all([0, 1].map((k) => startAt(ports, k, env)));
    // The instance that took the messages had each on its disk before its echo. The other one
    // acknowledges nothing for WebSocket messages, so a kill may catch it behind: it loads
    // what it has, then catch-up brings the rest (as with any instance that was down).
    expect(await history(nodes[0], room)).to.deep.equal(written);
    await poll(async () => JSON.stringify(await history(nodes[1], room)) === JSON.stringify(written), { timeoutMs: 30_000, what: 'the whole history on the other instance after catch-up' }).catch(async (err) => {
      throw new Error(`${(err as Error).message}: it holds ${(await history(nodes[1], room))?.length ?? 0} of 20000`);
    });
  });

  it('memory keeps 100 messages, the disk the whole history: 2,500 REST posts read back whole and in order on both instances after kill -9 of both; joined still gives memory\'s recent history', async () => {
    const ports = await Promise.all([0, 1].map(() => freePort()));
    const env = { MAX_MESSAGES_PER_CONVERSATION: '100' };
    let nodes = await Promise.all([0, 1].map((k) => startAt(ports, k, env)));
    await nodes[0].waitForPeersUp([nodes[1].nodeId], 10_000);
    const room = (await api(nodes[0], 'POST', '/api/conversations')).body.id as string;
    const posted: Array<{ id: string; timestamp: number; content: string }> = [];
    for (let n = 0; n < 2500; n += 25) {
      const answers = await Promise.all(Array.from({ length: 25 }, (_, j) => api(nodes[j % 2], 'POST', `/api/conversations/${room}/messages`, { sender: 'customer', content: `m${n + j}` })));
      for (const a of answers) {
        expect(a.status, JSON.stringify(a.body)).to.equal(201);
        posted.push(a.body as { id: string; timestamp: number; content: string });
      }
      // Deletes (made while in memory's window): one that memory then drops, one it keeps. Neither comes back.
      const gone = posted.find((m) => m.content === (n === 100 ? 'm100' : n === 2450 ? 'm2450' : ''));
      if (gone) expect((await api(nodes[1], 'DELETE', `/api/conversations/${room}/messages/${gone.id}`)).status).to.equal(204);
    }
    posted.sort((a, b) => a.timestamp - b.timestamp || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const expected = posted.filter((m) => m.content !== 'm100' && m.content !== 'm2450').map((m) => m.id);
    for (const node of nodes) await poll(async () => JSON.stringify(await history(node, room)) === JSON.stringify(expected), { timeoutMs: 10_000, what: 'the whole history before the restart' });
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    nodes = await Promise.all([0, 1].map((k) => startAt(ports, k, env)));
    for (const node of nodes) expect(await history(node, room)).to.deep.equal(expected);
    const client = await clients.connect(nodes[1]);
    const joined = await client.join(room, 'reader');
    const recent = (joined.history as Array<{ id: string }>).map((m) => m.id);
    expect(recent.length).to.be.greaterThan(0).and.at.most(100);
    expect(recent).to.deep.equal(expected.slice(-recent.length));
  });
});

describe('DATA_DIR: the disk stays bounded by its own window', function () {
  this.timeout(30_000);

  it('messages pushed out of the disk\'s window (MAX_DISK_MESSAGES_PER_CONVERSATION) and expired conversations leave the disk (seen in what a restart loads)', async () => {
    const dir = join(root, 'bounded');
    // Memory keeps 20, the disk 50: the disk trims by its own window, not memory's.
    const env = { DATA_DIR: dir, LOG_LEVEL: 'info', MAX_MESSAGES_PER_CONVERSATION: '20', MAX_DISK_MESSAGES_PER_CONVERSATION: '50', CONVERSATION_TTL_MS: '4000' };
    const loaded = (i: Instance) => i.waitForLog((l) => l.msg === 'store loaded from DATA_DIR').then((l) => l.writes as number);
    let node = await Instance.start({ env });
    const client = await clients.connect(node);
    await client.join('busy', 'u');
    for (let n = 0; n < 299; n++) client.send({ type: 'message', room: 'busy', text: `m${n}` });
    await client.say('busy', 'last');
    await clients.closeAll();
    await sleep(1000); // a few sweeps (every 400 ms here): the disk is compacted to the window
    await node.kill('SIGKILL');
    node = await Instance.start({ env });
    expect(await loaded(node), 'the created write and the 50 messages of the window').to.equal(51);
    const kept = await api(node, 'GET', '/api/conversations/busy');
    expect((kept.body.messages as Array<{ content: string }>).map((m) => m.content)).to.deep.equal([...Array.from({ length: 49 }, (_, k) => `m${250 + k}`), 'last']);
    await sleep(5000); // the conversation expires, and the sweep removes it from disk
    await node.kill('SIGKILL');
    node = await Instance.start({ env });
    expect(await loaded(node)).to.equal(0);
  });
});

describe('DATA_DIR: MAX_DISK_BYTES', function () {
  this.timeout(60_000);

  it('over MAX_DISK_BYTES the least recently active conversations go first, the disk in use comes back under it, and a restart keeps them gone', async () => {
    const dir = join(root, 'limited');
    const env = { DATA_DIR: dir, LOG_LEVEL: 'info', MAX_DISK_BYTES: '1500000', CONVERSATION_TTL_MS: '30000', RATE_LIMIT_PER_SEC: '100000', RATE_LIMIT_BURST: '100000' };
    let node = await Instance.start({ env });
    const client = await clients.connect(node);
    for (let r = 0; r < 30; r++) {
      await client.join(`c${r}`, 'u');
      for (let n = 0; n < 49; n++) client.send({ type: 'message', room: `c${r}`, text: `${n} ${'x'.repeat(1000)}` });
      await client.say(`c${r}`, 'last');
      await sleep(5); // each conversation later than the one before
    }
    await clients.closeAll();
    // The sweep (every 3 s here) removes the oldest conversations.
    await poll(async () => (await history(node, 'c0')) === null, { timeoutMs: 10_000, what: 'the oldest conversation to go' });
    expect(await history(node, 'c29')).to.have.length(50);
    await sleep(500);
    await node.kill('SIGKILL');
    const { open } = await import('lmdb');
    const db = open({ path: join(dir, 'store.mdb'), noSubdir: true, readOnly: true });
    const stats = db.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    await db.close();
    expect(stats.pageSize * (stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages)).to.be.at.most(1_500_000);
    node = await Instance.start({ env });
    const disk = (await api(node, 'GET', '/health')).body.disk as { usedBytes: number; maxBytes: number };
    expect(disk.maxBytes).to.equal(1_500_000);
    expect(disk.usedBytes).to.be.within(1, 1_500_000);
    expect(await history(node, 'c0')).to.equal(null);
    expect(await history(node, 'c29')).to.have.length(50);
  });
});

describe('DATA_DIR: /health and /metrics', function () {
  this.timeout(30_000);

  it('show the disk (writable, records written, bytes in use) with DATA_DIR, and nothing of it without', async () => {
    const [durable, memory] = await Promise.all([Instance.start({ env: { DATA_DIR: join(root, 'h') } }), Instance.start()]);
    for (const node of [durable, memory]) {
      const room = (await api(node, 'POST', '/api/conversations')).body.id as string;
      expect((await api(node, 'POST', `/api/conversations/${room}/messages`, { sender: 'agent', content: 'hi' })).status).to.equal(201);
    }
    const disk = (await api(durable, 'GET', '/health')).body.disk as Record<string, unknown>;
    expect(disk).to.include({ writable: true, commitFailures: 0, maxBytes: null });
    expect(disk.recordsWritten).to.be.at.least(2); // the conversation and its message
    expect(disk.usedBytes).to.be.greaterThan(0);
    expect(disk.fileBytes).to.be.at.least(disk.usedBytes as number);
    expect(await metric(durable, 'chatmesh_disk_writable')).to.equal(1);
    expect(await metric(durable, 'chatmesh_disk_records_written_total')).to.equal(disk.recordsWritten);
    expect(await metric(durable, 'chatmesh_disk_used_bytes')).to.be.greaterThan(0);
    expect((await api(memory, 'GET', '/health')).body).to.not.have.property('disk');
    expect(await metricsText(memory)).to.not.include('chatmesh_disk_');
  });
});

describe('DATA_DIR: cluster mode', function () {
  this.timeout(60_000);

  it('each worker keeps its store and node id in DATA_DIR/worker-N; a write is there after the whole cluster restarts', async () => {
    const port = await freePort();
    const dir = join(root, 'cluster');
    const start = () => spawn(process.execPath, [SERVER, '--cluster'], { env: { PATH: process.env.PATH ?? '', DISCOVERY: 'off', PORT: String(port), WORKERS: '2', DATA_DIR: dir, LOG_LEVEL: 'warn' }, stdio: 'ignore' });
    const up = () => poll(async () => (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 0)) === 200, { timeoutMs: 20_000, what: 'the cluster to answer /health' });
    let primary = start();
    try {
      await up();
      await poll(() => ['worker-0', 'worker-1'].every((w) => existsSync(join(dir, w, 'node-id'))), { timeoutMs: 10_000, what: 'both workers\' DATA_DIRs' });
      const ids = ['worker-0', 'worker-1'].map((w) => readFileSync(join(dir, w, 'node-id'), 'utf8').trim());
      expect(ids[0]).to.not.equal(ids[1]);
      const base = `http://127.0.0.1:${port}/api/conversations`;
      const room = ((await (await fetch(base, { method: 'POST' })).json()) as { id: string }).id;
      // The other worker may not be linked to the one that created it yet: 404 until it is.
      const posted = await poll(async () => {
        const res = await fetch(`${base}/${room}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sender: 'agent', content: 'kept' }) });
        return res.status === 201 ? res : (await res.arrayBuffer(), null);
      }, { timeoutMs: 10_000, what: 'a 201 for the message' });
      const id = ((await posted.json()) as { id: string }).id;
      expect(ids).to.include(id.slice(id.indexOf('-') + 1));
      primary.kill('SIGKILL'); // the workers follow their primary out
      await once(primary, 'exit');
      await poll(() => ['worker-0', 'worker-1'].every((w) => !existsSync(join(dir, w, 'LOCK')) || lockFree(join(dir, w, 'LOCK'))), { timeoutMs: 10_000, what: 'the workers to exit' });
      primary = start();
      await up();
      // Either worker answers: the one that took the write has it on disk, the other catches up from it.
      await poll(async () => {
        const got = await fetch(`${base}/${room}`).then((r) => r.json() as Promise<{ messages?: Array<{ id: string }> }>);
        return got.messages?.some((m) => m.id === id);
      }, { timeoutMs: 10_000, what: 'the message after the restart' });
    } finally {
      primary.kill('SIGTERM');
      await once(primary, 'exit').catch(() => {});
    }
  });
});

/** A DATA_DIR lock whose owner is gone. */
function lockFree(file: string): boolean {
  try {
    const pid = Number(readFileSync(file, 'utf8').split(' ')[0]);
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

describe('DATA_DIR: start-up faults', function () {
  this.timeout(30_000);

  /** Runs server.js to its exit; its output. */
  function runToExit(env: Record<string, string>): { status: number | null; output: string } {
    const r = spawnSync(process.execPath, [SERVER], { env: { PATH: process.env.PATH ?? '', DISCOVERY: 'off', PORT: '0', ...env }, encoding: 'utf8', timeout: 10_000 });
    return { status: r.status, output: r.stdout + r.stderr };
  }

  it('a second process on the same DATA_DIR refuses to start, naming the lock; a lock left by kill -9 is taken over', async () => {
    const dir = join(root, 'a');
    const first = await Instance.start({ env: { DATA_DIR: dir } });
    const second = runToExit({ DATA_DIR: dir });
    expect(second.status).to.equal(1);
    expect(second.output).to.match(/DATA_DIR: .* is in use by process \d+ \(lock .*LOCK\)/);
    await first.kill('SIGKILL');
    const again = await Instance.start({ env: { DATA_DIR: dir } });
    expect(again.nodeId).to.equal(first.nodeId);
  });

  it('a DATA_DIR that cannot be written stops the start with an error naming the variable', () => {
    const file = join(root, 'not-a-dir');
    writeFileSync(file, '');
    const r = runToExit({ DATA_DIR: join(file, 'data') });
    expect(r.status).to.equal(1);
    expect(r.output).to.match(/cannot start: DATA_DIR: .*not-a-dir\/data cannot be written/);
  });

  it('a truncated store file: a clear refusal naming the file, never a silent empty start', async () => {
    const dir = join(root, 'b');
    const first = await Instance.start({ env: { DATA_DIR: dir } });
    const room = (await api(first, 'POST', '/api/conversations')).body.id as string;
    for (let n = 0; n < 100; n++) expect((await api(first, 'POST', `/api/conversations/${room}/messages`, { sender: 'agent', content: `kept ${n} ${'x'.repeat(500)}` })).status).to.equal(201);
    await first.kill('SIGKILL');
    // Cut in the middle: LMDB would map it and die of SIGBUS on the first read past the end.
    const file = join(dir, 'store.mdb');
    truncateSync(file, Math.floor(statSync(file).size / 2 / 4096) * 4096);
    const half = runToExit({ DATA_DIR: dir });
    expect(half.status).to.equal(1);
    expect(half.output).to.match(/store file .*store\.mdb is damaged: reading it kills the process \(SIGBUS\)/);
    truncateSync(file, 100);
    const r = runToExit({ DATA_DIR: dir });
    expect(r.status).to.equal(1);
    expect(r.output).to.match(/store file .*store\.mdb is damaged/);
    rmSync(join(dir, 'store.mdb'));
    const gone = runToExit({ DATA_DIR: dir });
    expect(gone.status, 'a missing store file in a used DATA_DIR').to.equal(1);
    expect(gone.output).to.match(/store file .*store\.mdb is missing/);
  });

  it('a client frame is echoed only after its write is on disk, and the node id stays across restarts (not NODE_ID)', async () => {
    const dir = join(root, 'c');
    const a = await Instance.start({ env: { DATA_DIR: dir } });
    const c: TestClient = await clients.connect(a);
    await c.join('room', 'u');
    const echo = await c.say('room', 'hello');
    await clients.closeAll();
    await a.kill('SIGKILL');
    const b = await Instance.start({ env: { DATA_DIR: dir } });
    expect(b.nodeId).to.equal(a.nodeId);
    expect(await history(b, 'room')).to.deep.equal([echo.id]);
  });
});
