/**
 * DATA_DIR on a disk that fills up while the instance runs (a small tmpfs, mounted by the
 * test: needs root): writes answer 503 storage_unavailable (WebSocket: an error frame, no
 * echo), reads and live delivery go on, writes resume by themselves once space is freed, and
 * nothing acknowledged is lost (checked after a kill -9 and restart).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Instance, stopAll } from '../helpers/instance.js';
import { ClientPool } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';
import { api, metric } from '../helpers/rest.js';
import { tellsPresence } from '../helpers/presence.js';

const clients = new ClientPool();

describe('DATA_DIR: disk full while running (tmpfs)', function () {
  this.timeout(60_000);
  let mount = '';

  before(function () {
    if (process.env.CHATMESH_SKIP_NETNS === '1' || process.getuid?.() !== 0) this.skip();
  });

  beforeEach(() => {
    mount = mkdtempSync(join(tmpdir(), 'chatmesh-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount]);
  });

  afterEach(async () => {
    await clients.closeAll();
    await stopAll();
    try {
      execFileSync('umount', [mount]);
    } finally {
      rmSync(mount, { recursive: true, force: true });
    }
  });

  it('writes get 503 storage_unavailable (WebSocket: an error frame, no echo), reads and live delivery go on, writes resume when space returns, nothing acknowledged is lost', async () => {
    const dir = join(mount, 'data');
    mkdirSync(dir);
    const env = { DATA_DIR: dir, LOG_LEVEL: 'info' };
    const node = await Instance.start({ env });
    const room = (await api(node, 'POST', '/api/conversations')).body.id as string;
    const acked: string[] = [];
    const first = await api(node, 'POST', `/api/conversations/${room}/messages`, { sender: 'agent', content: 'before' });
    expect(first.status).to.equal(201);
    acked.push(first.body.id as string);
    const reader = await clients.connect(node);
    await reader.join(room, 'reader');
    const writer = await clients.connect(node);
    await writer.join(room, 'writer');
    const healthy = (await api(node, 'GET', '/health')).body.disk as { writable: boolean; usedBytes: number; fileBytes: number; commitFailures: number };
    expect(healthy).to.include({ writable: true, commitFailures: 0 });
    expect(healthy.usedBytes).to.be.greaterThan(0);
    expect(await metric(node, 'chatmesh_disk_writable')).to.equal(1);

    // Fill the disk: one file takes all the space left, then messages go until one is refused.
    const filler = join(mount, 'filler');
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k', 'count=1000'], { stdio: 'ignore' });
    } catch {
      // no space left: that is the point
    }
    const text = 'x'.repeat(4000);
    let refused = null as null | { status: number; code?: string };
    for (let n = 0; n < 2000 && !refused; n++) {
      const res = await api(node, 'POST', `/api/conversations/${room}/messages`, { sender: 'agent', content: `${n} ${text}` });
      if (res.status === 201) acked.push(res.body.id as string);
      else refused = { status: res.status, code: res.body.error?.code };
    }
    expect(refused).to.deep.equal({ status: 503, code: 'storage_unavailable' });
    await node.waitForLog((l) => l.level === 'error' && l.msg.startsWith('DATA_DIR cannot take writes'), 5000, 'the error logged');
    // While full: more writes are refused, WebSocket messages get an error frame and no echo.
    expect((await api(node, 'POST', `/api/conversations/${room}/messages`, { sender: 'agent', content: 'while full' })).status).to.equal(503);
    writer.send({ type: 'message', room, text: 'ws while full' });
    const error = await writer.waitFor((f) => f.type === 'error', 5000, 'an error frame');
    expect(error.code).to.equal('storage_unavailable');
    expect(writer.messages(room).some((f) => f.text === 'ws while full')).to.equal(false);
    // /health and /metrics say so.
    const full = (await api(node, 'GET', '/health')).body as { status: string; disk: { writable: boolean; commitFailures: number } };
    expect(full.status).to.equal('ok');
    expect(full.disk.writable).to.equal(false);
    expect(full.disk.commitFailures).to.be.greaterThan(0);
    expect(await metric(node, 'chatmesh_disk_writable')).to.equal(0);
    expect(await metric(node, 'chatmesh_disk_commit_failures_total')).to.be.greaterThan(0);
    // Reads go on, with everything acknowledged.
    const read = await api(node, 'GET', `/api/conversations/${room}`);
    expect(read.status).to.equal(200);
    const ids = (read.body.messages as Array<{ id: string }>).map((m) => m.id);
    for (const id of acked) expect(ids).to.include(id);
    // Live delivery goes on: presence events still reach the reader.
    const other = await clients.connect(node);
    await other.join(room, 'visitor');
    await reader.waitFor((f) => tellsPresence(f, 'join', 'visitor'), 5000, 'a presence event while the disk is full');

    // Space returns: writes resume by themselves.
    rmSync(filler);
    const after = await poll(async () => {
      const res = await api(node, 'POST', `/api/conversations/${room}/messages`, { sender: 'agent', content: 'after' });
      return res.status === 201 ? res : null;
    }, { timeoutMs: 10_000, what: 'writes to resume after space was freed' });
    acked.push(after.body.id as string);
    await node.waitForLog((l) => l.msg === 'DATA_DIR takes writes again', 5000, 'the recovery logged');
    expect(((await api(node, 'GET', '/health')).body.disk as { writable: boolean }).writable).to.equal(true);
    expect(await metric(node, 'chatmesh_disk_writable')).to.equal(1);
    const echo = await writer.say(room, 'ws after');
    acked.push(echo.id as string);

    await clients.closeAll();
    await node.kill('SIGKILL');
    const again = await Instance.start({ env });
    const back = (await api(again, 'GET', `/api/conversations/${room}`)).body.messages as Array<{ id: string }>;
    const backIds = back.map((m) => m.id);
    for (const id of acked) expect(backIds, 'acknowledged before, during and after the full disk').to.include(id);
  });
});
