/**
 * DISCOVERY=dns over real processes, against a tiny authoritative DNS server that runs in this
 * test process on 127.0.0.1 (UDP, a random port) and answers from a record set the test
 * changes at runtime. Every instance is given PEERS_DNS_SERVER: no query ever goes to the
 * system's resolvers, and every record points at 127.0.0.1.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { TestClient } from '../helpers/client.js';
import { Instance, ROOT, SERVER, freePort, stopAll, type LogLine } from '../helpers/instance.js';
import { poll, withTimeout } from '../helpers/wait.js';

// dns-packet (a dependency of multicast-dns, under bonjour-service) ships no types.
interface DnsQuestion {
  name: string;
  type: string;
  class?: string;
}
interface DnsAnswer {
  name: string;
  type: string;
  ttl?: number;
  data: unknown;
}
interface DnsPacket {
  id?: number;
  type?: 'query' | 'response';
  flags?: number;
  questions?: DnsQuestion[];
  answers?: DnsAnswer[];
}
const dnsPacket = createRequire(import.meta.url)('dns-packet') as {
  encode(packet: DnsPacket): Buffer;
  decode(buf: Buffer): DnsPacket;
  AUTHORITATIVE_ANSWER: number;
};
const NXDOMAIN = 3;

/** An authoritative DNS server for a few test names, on 127.0.0.1 over UDP. */
class TestDnsServer {
  /** A records by name (lower case, no trailing dot); an empty list: the name exists, no A record. */
  readonly a = new Map<string, string[]>();
  /** SRV records by name. */
  readonly srv = new Map<string, { target: string; port: number }[]>();
  /** Every question received, in order. */
  readonly queries: { name: string; type: string }[] = [];
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
  ) {
    socket.on('message', (msg, rinfo) => this.answer(msg, rinfo));
    socket.on('error', () => {});
  }

  static async start(port = 0): Promise<TestDnsServer> {
    const socket = dgram.createSocket('udp4');
    socket.bind(port, '127.0.0.1');
    await Promise.race([
      once(socket, 'listening'),
      once(socket, 'error').then(([err]) => {
        throw err;
      }),
    ]);
    return new TestDnsServer(socket, socket.address().port);
  }

  /** The value for PEERS_DNS_SERVER. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  queriesFor(name: string): number {
    return this.queries.filter((q) => q.name === name).length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closed = once(this.socket, 'close');
    this.socket.close();
    await closed;
  }

  private answer(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let query: DnsPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const answers: DnsAnswer[] = [];
    let known = false;
    for (const q of query.questions ?? []) {
      const name = q.name.toLowerCase().replace(/\.$/, '');
      this.queries.push({ name, type: q.type });
      known ||= this.a.has(name) || this.srv.has(name);
      // TTL 0: nothing is cached, each lookup sees the record set as it is now.
      if (q.type === 'A') for (const ip of this.a.get(name) ?? []) answers.push({ name: q.name, type: 'A', ttl: 0, data: ip });
      if (q.type === 'SRV') {
        for (const { target, port } of this.srv.get(name) ?? []) {
          answers.push({ name: q.name, type: 'SRV', ttl: 0, data: { target, port, priority: 0, weight: 10 } });
        }
      }
    }
    // A known name without records of the asked type: NOERROR and no answer (ENODATA);
    // an unknown name: NXDOMAIN (ENOTFOUND).
    const flags = dnsPacket.AUTHORITATIVE_ANSWER | (known ? 0 : NXDOMAIN);
    const reply = dnsPacket.encode({ type: 'response', id: query.id, flags, questions: query.questions, answers });
    if (!this.closed) this.socket.send(reply, rinfo.port, rinfo.address);
  }
}

const HOST_NAME = 'peers.chatmesh.test';
const SRV_NAME = '_chatmesh._tcp.peers.chatmesh.test';
const TARGET = 'node.chatmesh.test';
const INTERVAL_MS = 300;

const servers: TestDnsServer[] = [];
const clients: TestClient[] = [];

async function dnsServer(port?: number): Promise<TestDnsServer> {
  const server = await TestDnsServer.start(port);
  servers.push(server);
  return server;
}

function dnsEnv(server: TestDnsServer, name: string, extra: Record<string, string> = {}): Record<string, string> {
  return { DISCOVERY: 'dns', PEERS_DNS: name, PEERS_DNS_SERVER: server.address, PEERS_DNS_INTERVAL_MS: String(INTERVAL_MS), ...extra };
}

function srvAnswer(server: TestDnsServer, ports: number[]): void {
  server.a.set(TARGET, ['127.0.0.1']);
  server.srv.set(SRV_NAME, ports.map((port) => ({ target: TARGET, port })));
}

const logsWith = (instance: Instance, msg: string): LogLine[] => instance.logs.filter((l) => l.msg === msg);

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await stopAll();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('DNS discovery (DISCOVERY=dns) against a DNS server in the test', () => {
  it('A records: X resolves the name to 127.0.0.1, dials PEERS_DNS_PORT, and X and Y link', async () => {
    const dns = await dnsServer();
    dns.a.set(HOST_NAME, ['127.0.0.1']);
    const y = await Instance.start();
    const x = await Instance.start({ env: dnsEnv(dns, HOST_NAME, { PEERS_DNS_PORT: String(y.port) }) });
    await x.waitForPeersUp([y.nodeId], 10_000);
    await y.waitForPeersUp([x.nodeId], 10_000);

    const [row] = (await x.health()).body.peers;
    expect(row).to.include({ id: y.nodeId, address: `ws://127.0.0.1:${y.port}`, state: 'up', direction: 'out' });
    expect(logsWith(x, 'DNS discovery: found peer').map((l) => l.address)).to.deep.equal([`ws://127.0.0.1:${y.port}`]);
    // Both families are asked, of our server only.
    expect(dns.queries.filter((q) => q.name === HOST_NAME).map((q) => q.type)).to.include.members(['A', 'AAAA']);
    expect(logsWith(x, 'DNS discovery: lookup failed, keeping the last answer'), 'no lookup failed').to.deep.equal([]);
  });

  it('A records: its own address on its own mesh port (the default PEERS_DNS_PORT) is never dialled', async () => {
    const dns = await dnsServer();
    dns.a.set(HOST_NAME, ['127.0.0.1']);
    const x = await Instance.start({ env: dnsEnv(dns, HOST_NAME) });
    // Three lookups (A + AAAA each) have been answered and applied once a fourth begins.
    await poll(() => dns.queriesFor(HOST_NAME) >= 8, { timeoutMs: 10_000, what: 'four lookups of the name' });
    expect((await x.health()).body.peers, 'no peer entry for itself').to.deep.equal([]);
    expect(logsWith(x, 'DNS discovery: found peer')).to.deep.equal([]);
    expect(x.logs.filter((l) => /self|itself/i.test(l.msg)), 'no self-dial happened').to.deep.equal([]);
  });

  it('a static list (PEERS) is honoured alongside DNS', async () => {
    const dns = await dnsServer();
    const [y, z] = await Promise.all([Instance.start(), Instance.start()]);
    dns.a.set(HOST_NAME, ['127.0.0.1']);
    const x = await Instance.start({ env: dnsEnv(dns, HOST_NAME, { PEERS_DNS_PORT: String(y.port), PEERS: `ws://127.0.0.1:${z.port}` }) });
    await x.waitForPeersUp([y.nodeId, z.nodeId], 10_000);
  });

  it('SRV records: three instances resolving one SRV name form a full mesh, and a message crosses it', async () => {
    const dns = await dnsServer();
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    srvAnswer(dns, ports);
    const instances = await Promise.all(ports.map((port) => Instance.start({ port, env: dnsEnv(dns, SRV_NAME, { MESH_HOPS: '1' }) })));
    await Promise.all(instances.map((i) => i.waitForPeersUp(instances.filter((o) => o !== i).map((o) => o.nodeId), 10_000)));
    for (const i of instances) {
      const peers = (await i.health()).body.peers;
      expect(peers.map((p) => p.address).sort(), `peers of :${i.port}, itself not among them`).to.deep.equal(
        ports.filter((p) => p !== i.port).map((p) => `ws://127.0.0.1:${p}`).sort(),
      );
    }
    expect(dns.queries.some((q) => q.name === SRV_NAME && q.type === 'SRV')).to.equal(true);
    expect(dns.queries.some((q) => q.name === TARGET && q.type === 'A')).to.equal(true);

    const [a, , c] = instances;
    const alice = await TestClient.connect(a.url);
    clients.push(alice);
    const carol = await TestClient.connect(c.url);
    clients.push(carol);
    await alice.join('lobby', 'alice');
    await carol.join('lobby', 'carol');
    alice.send({ type: 'message', room: 'lobby', text: 'through DNS' });
    await poll(() => carol.messages('lobby').some((f) => f.text === 'through DNS' && f.user === 'alice'), { timeoutMs: 5000, what: 'the message at carol' });
  });

  it('the record set changes at runtime: a new instance is linked within about two intervals, a gone one withdrawn', async () => {
    const dns = await dnsServer();
    const ports = await Promise.all([freePort(), freePort()]);
    srvAnswer(dns, ports);
    const [a, b] = await Promise.all(ports.map((port) => Instance.start({ port, env: dnsEnv(dns, SRV_NAME) })));
    await a.waitForPeersUp([b.nodeId], 10_000);
    await b.waitForPeersUp([a.nodeId], 10_000);

    // C discovers nobody: only A and B dialling it (because DNS now lists it) can link it.
    const c = await Instance.start();
    const changedAt = Date.now();
    srvAnswer(dns, [...ports, c.port]);
    await Promise.all([a.waitForPeersUp([c.nodeId], 2 * INTERVAL_MS + 2000), b.waitForPeersUp([c.nodeId], 2 * INTERVAL_MS + 2000)]);
    const elapsed = Date.now() - changedAt;
    for (const i of [a, b]) {
      expect((await i.health()).body.peers.find((p) => p.id === c.nodeId), `:${i.port} dialled C`).to.include({ direction: 'out' });
    }

    // B leaves the answer: A withdraws it (the link itself stays while B runs).
    srvAnswer(dns, [a.port, c.port]);
    const left = await a.waitForLog((l) => l.msg === 'DNS discovery: peer left the answer', 2 * INTERVAL_MS + 2000, 'B withdrawn');
    expect(left.address).to.equal(`ws://127.0.0.1:${b.port}`);
    expect(elapsed, 'C linked within the deadline').to.be.below(2 * INTERVAL_MS + 2000);
  });

  it('the DNS server stops answering: a warning (once), links kept, the node stays up; answers again later', async () => {
    let dns = await dnsServer();
    const ports = await Promise.all([freePort(), freePort()]);
    srvAnswer(dns, ports);
    const [a, b] = await Promise.all(ports.map((port) => Instance.start({ port, env: dnsEnv(dns, SRV_NAME) })));
    await a.waitForPeersUp([b.nodeId], 10_000);
    await b.waitForPeersUp([a.nodeId], 10_000);

    await dns.close();
    const warning = await a.waitForLog((l) => l.msg === 'DNS discovery: lookup failed, keeping the last answer', 10_000, 'the lookup warning');
    expect(warning.level).to.equal('warn');
    expect(JSON.stringify(warning.errors)).to.contain(SRV_NAME);
    // Several more lookups fail (each logged at debug), but the warning is not repeated.
    const failuresAt = (i: Instance) => logsWith(i, 'DNS discovery: lookup failed').length;
    const before = failuresAt(a);
    await poll(() => failuresAt(a) >= before + 3, { timeoutMs: 10_000, what: 'three more failed lookups at A' });
    expect(logsWith(a, 'DNS discovery: lookup failed, keeping the last answer'), 'one warning for one error').to.have.length(1);
    expect(logsWith(a, 'DNS discovery: peer left the answer'), 'the last answer is kept').to.deep.equal([]);
    for (const [self, other] of [[a, b], [b, a]] as const) {
      const { status, body } = await self.health();
      expect(status).to.equal(200);
      expect(body.peers.find((p) => p.id === other.nodeId), `:${self.port} still linked`).to.include({ state: 'up' });
      expect(self.alive).to.equal(true);
    }

    // The server comes back (same port): the node says so once, and still holds both peers.
    dns = await dnsServer(dns.port);
    srvAnswer(dns, ports);
    await a.waitForLog((l) => l.msg === 'DNS discovery: lookups answered again', 10_000, 'the recovery line');
    expect(logsWith(a, 'DNS discovery: peer left the answer')).to.deep.equal([]);
  });

  for (const [env, variable] of [
    [{ DISCOVERY: 'dns' }, 'PEERS_DNS'],
    [{ DISCOVERY: 'dns', PEERS_DNS: HOST_NAME, PEERS_DNS_SERVER: 'dns.example:53' }, 'PEERS_DNS_SERVER'],
    [{ DISCOVERY: 'dns', PEERS_DNS: HOST_NAME, PEERS_DNS_PORT: '70000' }, 'PEERS_DNS_PORT'],
  ] as const) {
    it(`configuration: ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} exits 1 naming ${variable}`, async () => {
      const port = await freePort();
      const proc = spawn(process.execPath, [SERVER], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = once(proc, 'exit');
      let code: unknown;
      try {
        [code] = await withTimeout(exited, 10_000, 'the server to exit');
      } finally {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
      expect(code, stdout + stderr).to.equal(1);
      expect(stderr).to.match(new RegExp(`bad configuration: ${variable}:`));
      expect(stdout, 'nothing started').not.to.contain('chatmesh listening');
    });
  }
});
