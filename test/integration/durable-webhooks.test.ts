/**
 * Webhooks with DATA_DIR on real processes: events queued for a receiver that answers 503
 * survive kill -9 of their instance and are delivered after it restarts on the same
 * DATA_DIR, without any new write; and after a graceful stop, a restart delivers nothing
 * the receiver already acknowledged with a 2xx. No sleeps: every wait polls with a deadline
 * (the journal on disk is read with lmdb, read-only, as another process may).
 */
import { expect } from 'chai';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { Instance, SERVER, stopAll } from '../helpers/instance.js';
import { api } from '../helpers/rest.js';
import { poll } from '../helpers/wait.js';

/** A webhook receiver answering `status` (which the test changes) and recording the id and answer of every request. */
class Receiver {
  status = 503;
  readonly requests: Array<{ id: string; status: number }> = [];
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = this.status;
      this.requests.push({ id: (JSON.parse(Buffer.concat(chunks).toString()) as { id: string }).id, status });
      res.writeHead(status).end();
    });
  });

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  /** Ids answered with a 2xx. */
  acknowledged(): string[] {
    return this.requests.filter((r) => r.status < 300).map((r) => r.id);
  }

  close(): void {
    this.server.closeAllConnections();
    this.server.close();
  }
}

/** The ids of the events in DATA_DIR's webhook journal, read by this process. */
function journalIds(dataDir: string): string[] {
  const db = open<string, [number, string]>({ path: join(dataDir, 'webhooks.mdb'), noSubdir: true, readOnly: true, encoding: 'string' });
  try {
    return [...db.getKeys()].map((key) => key[1]);
  } finally {
    void db.close();
  }
}

describe('DATA_DIR: webhooks survive a crash', function () {
  this.timeout(25_000);
  let root = '';
  let receiver: Receiver;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'chatmesh-webhooks-'));
    receiver = new Receiver();
  });

  afterEach(async () => {
    await stopAll();
    receiver.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('delivers after kill -9 and restart what a 503 kept queued, and nothing acknowledged again after a graceful restart', async () => {
    const url = await receiver.listen();
    const env = { DATA_DIR: join(root, 'a'), WEBHOOK_URL: url, LOG_LEVEL: 'info' };
    let a = await Instance.start({ env });
    const room = (await api(a, 'POST', '/api/conversations')).body.id as string;
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) {
      const posted = await api(a, 'POST', `/api/conversations/${room}/messages`, { sender: 'customer', content: `m${n}` });
      expect(posted.status, JSON.stringify(posted.body)).to.equal(201);
      ids.push(posted.body.id as string);
    }
    await poll(() => receiver.requests.length >= 1, { what: 'a first webhook attempt, answered 503' });
    // On disk before the crash (the journal is written after the 201, in a commit of its own).
    await poll(() => ids.every((id) => journalIds(env.DATA_DIR).includes(id)), { what: 'the events in the webhook journal' });
    expect(receiver.acknowledged()).to.deep.equal([]);
    await a.kill('SIGKILL');

    receiver.status = 200;
    const before = receiver.requests.length;
    a = await Instance.start({ env });
    const on = await a.waitForLog((l) => l.msg === 'webhooks on', 5000, 'webhooks on');
    expect(on.restored, 'events queued again from DATA_DIR').to.equal(ids.length);
    await poll(() => ids.every((id) => receiver.acknowledged().includes(id)), { timeoutMs: 10_000, what: 'every event acknowledged after the restart' });
    expect(receiver.requests.slice(before).map((r) => r.id)).to.include.members(ids);

    // Delivered, then stopped at once: the journal's removals are on disk before it closes.
    expect(await a.stop()).to.equal(0);
    expect(journalIds(env.DATA_DIR)).to.deep.equal([]);
    const acknowledged = receiver.requests.length;
    a = await Instance.start({ env });
    expect((await a.waitForLog((l) => l.msg === 'webhooks on', 5000, 'webhooks on')).restored).to.equal(0);
    // A new event is delivered; nothing acknowledged before is sent again.
    const fresh = await api(a, 'POST', `/api/conversations/${room}/messages`, { sender: 'customer', content: 'after the restart' });
    await poll(() => receiver.acknowledged().includes(fresh.body.id as string), { what: 'the new event' });
    expect(receiver.requests.slice(acknowledged).map((r) => r.id)).to.deep.equal([fresh.body.id]);
  });

  it('a damaged webhook journal stops start-up with the file named, before any port is taken', async () => {
    const dataDir = join(root, 'b');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'webhooks.mdb'), Buffer.alloc(20_000, 0x5a)); // not an LMDB file
    // PORT is taken: a start that listened before opening the journal would fail on that instead.
    const taken = http.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = String((taken.address() as AddressInfo).port);
      const r = spawnSync(process.execPath, [SERVER], { env: { PATH: process.env.PATH ?? '', DISCOVERY: 'off', HOST: '127.0.0.1', PORT: port, DATA_DIR: dataDir, WEBHOOK_URL: 'http://127.0.0.1:9/hooks' }, encoding: 'utf8', timeout: 10_000 });
      const output = r.stdout + r.stderr;
      expect(r.status, output).to.equal(1);
      expect(output).to.match(/webhook journal .*webhooks\.mdb is damaged/);
      expect(output).to.not.include('EADDRINUSE');
    } finally {
      taken.close();
    }
  });
});
