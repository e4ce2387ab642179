/**
 * Acceptance tests for zero-configuration discovery (mDNS), run inside private network
 * namespaces so that no multicast leaves the machine and no eth0 address is ever used.
 * See test/helpers/netns.ts for the network and /work/shared/ENVIRONMENT.md for why.
 *
 * These tests FAIL when namespaces are unavailable (not root, no iproute2) unless
 * CHATMESH_SKIP_NETNS=1 is set.
 */
import { expect } from 'chai';
import { TestClient, type Frame } from '../helpers/client.js';
import { Instance, stopAll, type LogLine, type PeerRow } from '../helpers/instance.js';
import { TestNetwork, requireNetns, type NetHost, dumpInstanceOutput, distinctPorts } from '../helpers/netns.js';
import { poll } from '../helpers/wait.js';

const LOOPBACK_URL = /^ws:\/\/127\.0\.0\.1:\d+$/;

describe('mDNS discovery (network namespaces)', function () {
  this.timeout(20_000);

  let net: TestNetwork | null = null;
  let started: Instance[] = [];
  let clients: TestClient[] = [];

  before(async function () {
    await requireNetns(this);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') dumpInstanceOutput(started, 40);
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    clients = [];
    await stopAll();
    started = [];
    await net?.destroy();
    net = null;
  });

  const ports = distinctPorts;

  /** Starts an instance in the host with the default discovery (mDNS): DISCOVERY is unset. */
  async function startIn(host: NetHost, port: number, env: Record<string, string | undefined> = {}): Promise<Instance> {
    const instance = await Instance.start({ netns: host.name, host: host.address, port, env: { DISCOVERY: undefined, ...env } });
    started.push(instance);
    return instance;
  }

  async function connect(instance: Instance): Promise<TestClient> {
    const client = await TestClient.connect(instance.url);
    clients.push(client);
    return client;
  }

  async function peers(instance: Instance): Promise<PeerRow[]> {
    return (await instance.health()).body.peers;
  }

  /** Waits until `of` lists `peer` as up, and returns that row. */
  function waitUp(of: Instance, peer: Instance, timeoutMs = 8000): Promise<PeerRow> {
    return of.waitForPeer((p) => p.id === peer.nodeId && p.state === 'up', timeoutMs, `peer ${peer.nodeId} up`);
  }

  /** A message from `from` in `room` reaches `to` exactly once (checked against a later marker). */
  async function messageCrosses(from: TestClient, to: TestClient[], room: string, text: string): Promise<void> {
    const sent = await from.say(room, text);
    const marker = `${text} (marker)`;
    await from.say(room, marker);
    for (const client of [from, ...to]) {
      const got = await client.waitFor((f) => f.type === 'message' && f.text === text, 5000, `"${text}"`);
      expect(got).to.include({ room, user: sent.user, id: sent.id });
      // Everything sent before the marker has arrived once the marker has (one link, in order).
      await client.waitFor((f) => f.type === 'message' && f.text === marker, 5000, `"${marker}"`);
      expect(client.messages(room).filter((f: Frame) => f.id === sent.id), 'copies received').to.have.length(1);
    }
  }

  const rejectionLogAny = (l: LogLine) => l.level === 'warn' && (l.msg === 'peer rejected' || l.msg === 'peer refused the link');
  /** The warn line that says why a link to or from `address` was refused. */
  const rejectionLog = (address: string) => (l: LogLine) =>
    l.level === 'warn' && (l.msg === 'peer rejected' || l.msg === 'peer refused the link') && l.address === address;

  /**
   * Two instances on two hosts that must not link. Waits until at least one side shows the
   * other, at its address, as rejected, and says why in a warn line. Then, once both sides
   * have dialled and been refused, checks that no link is up, that both processes still
   * serve, and that every row naming the other host is right: its real address (the port its
   * hello announced) and, if an id is shown, the other's id.
   */
  async function expectRefused(a: Instance, b: Instance, hostOf: Map<Instance, NetHost>, reason: RegExp): Promise<void> {
    const addressOf = (i: Instance) => `ws://${hostOf.get(i)!.address}:${i.port}`;
    const rejectedRow = async (of: Instance, peer: Instance) =>
      (await peers(of)).find((p) => p.state === 'rejected' && p.address === addressOf(peer));
    const [side, other, row] = await poll(
      async () => {
        const ra = await rejectedRow(a, b);
        if (ra) return [a, b, ra] as const;
        const rb = await rejectedRow(b, a);
        return rb ? ([b, a, rb] as const) : undefined;
      },
      { timeoutMs: 8000, what: 'a peer row in state rejected, at the other host\'s address, on either side' },
    );
    expect(row.reason ?? '', 'reason in /health').to.match(reason);
    const line = await side.waitForLog(rejectionLog(addressOf(other)), 3000, 'a warn line saying why the peer was rejected');
    expect(String(line.reason)).to.match(reason);

    // Both find each other over mDNS and both dial: each side logs two refusals, its own dial
    // and the other's (inbound). Only then is every row there to be checked.
    for (const instance of [a, b]) {
      await poll(() => instance.logs.filter(rejectionLogAny).length >= 2, { timeoutMs: 5000, what: `two rejection lines (its dial, the other's) from ${instance.nodeId}` });
    }
    const problems: string[] = [];
    for (const [of, peer] of [[a, b], [b, a]] as const) {
      expect(of.alive, `instance ${of.nodeId} still running`).to.equal(true);
      const { status, body } = await of.health();
      expect(status).to.equal(200);
      expect(body.peers.filter((p) => p.state === 'up'), `links up at ${of.nodeId}`).to.deep.equal([]);
      expect(of.logs.filter((l) => l.msg === 'peer up'), `"peer up" lines of ${of.nodeId}`).to.deep.equal([]);
      for (const p of body.peers.filter((r) => r.address.startsWith(`ws://${hostOf.get(peer)!.address}:`))) {
        if (p.address !== addressOf(peer)) problems.push(`${of.nodeId} lists ${peer.nodeId} at ${p.address}, not ${addressOf(peer)}: ${JSON.stringify(p)}`);
        if (p.state !== 'rejected') problems.push(`${of.nodeId} lists ${p.address} as ${p.state}, not rejected`);
        if (p.id !== null && p.id !== peer.nodeId) problems.push(`${of.nodeId} lists ${p.address} with id ${p.id}, not ${peer.nodeId}`);
      }
      for (const l of of.logs.filter(rejectionLogAny)) {
        if (l.address !== addressOf(peer)) problems.push(`${of.nodeId} logged "${l.msg}" for ${String(l.address)}, not ${addressOf(peer)}`);
      }
    }
    expect(problems, 'rows and log lines that misname the refused peer').to.deep.equal([]);
  }

  it('(a) zero configuration on one host: two instances find each other over loopback, chat, and see a leave', async () => {
    net = await TestNetwork.create();
    const host = await net.addHost();
    const [p1, p2] = ports(2);
    const [one, two] = await Promise.all([startIn(host, p1!), startIn(host, p2!)]);

    for (const [of, peer] of [[one, two], [two, one]] as const) {
      const row = await waitUp(of, peer);
      expect(row.address, `how ${of.nodeId} reaches ${peer.nodeId}`).to.equal(`ws://127.0.0.1:${peer.port}`);
      // Never another address for a peer on the same host (not the namespace's 10.x, not eth0).
      const rows = (await peers(of)).filter((p) => p.id === peer.nodeId);
      for (const r of rows) expect(r.address, `every row for ${peer.nodeId} at ${of.nodeId}`).to.match(LOOPBACK_URL);
      // Each also learns of the other over mDNS, at loopback. The link may come up before the
      // side that was dialled hears the other's announcement (bonjour probes for 0.5-1 s before
      // announcing a service), so this waits; the goodbye below needs it.
      const found = await of.waitForLog((l) => l.msg === 'mDNS: found peer' && l.peer === peer.nodeId, 5000, `${peer.nodeId} found over mDNS`);
      expect(found.address, 'address found over mDNS').to.equal(`ws://127.0.0.1:${peer.port}`);
    }
    for (const l of [...one.logs, ...two.logs].filter((x) => x.msg === 'mDNS: found peer')) {
      expect(l.address, 'every address found over mDNS').to.match(LOOPBACK_URL);
    }

    // The quick-start flow: alice on one, bob on two, one message reaches both exactly once.
    const [alice, bob] = await Promise.all([connect(one), connect(two)]);
    await alice.join('lobby', 'alice');
    await bob.join('lobby', 'bob');
    await messageCrosses(alice, [bob], 'lobby', 'hello from alice');
    const received = bob.messages('lobby').find((f) => f.text === 'hello from alice')!;
    expect(received.user).to.equal('alice');

    // A graceful stop: the survivor hears the mDNS goodbye and sees the link go down.
    const leaving = two.nodeId;
    const code = await two.stop();
    expect(code, 'exit code after SIGTERM').to.equal(0);
    await one.waitForLog((l) => l.msg === 'mDNS: peer said goodbye' && l.address === `ws://127.0.0.1:${p2}`, 5000, 'the mDNS goodbye');
    await one.waitForLog((l) => l.msg === 'peer down' && l.peer === leaving, 5000, '"peer down"');
    // mesh.ts: the goodbye withdraws the address; the row stays as 'down' if the link was
    // still up when the goodbye came (the usual order: discovery closes first), or is removed
    // if the link had already closed. Either way it is never 'up' again and is not redialled.
    const rows = await poll(
      async () => {
        const r = (await peers(one)).filter((p) => p.id === leaving);
        return r.every((p) => p.state === 'down') ? r : undefined;
      },
      { timeoutMs: 5000, what: `${leaving} down or gone at ${one.nodeId}` },
    );
    expect(rows.length).to.be.at.most(1);
    if (rows[0]) expect(rows[0].reason, 'why it is down').to.equal('node shutting down');
    expect(one.alive).to.equal(true);
  });

  it('(b) two hosts with the same secret discover each other across the bridge and link', async () => {
    net = await TestNetwork.create();
    const [h1, h2] = await Promise.all([net.addHost(), net.addHost()]);
    const [p1, p2] = ports(2);
    const env = { MESH_SECRET: 'correct horse battery staple' };
    const [a, b] = await Promise.all([startIn(h1!, p1!, env), startIn(h2!, p2!, env)]);

    const rowAtA = await waitUp(a, b);
    const rowAtB = await waitUp(b, a);
    expect(rowAtA.address).to.equal(`ws://${h2!.address}:${b.port}`);
    expect(rowAtB.address).to.equal(`ws://${h1!.address}:${a.port}`);

    const [alice, bob] = await Promise.all([connect(a), connect(b)]);
    await alice.join('lobby', 'alice');
    await bob.join('lobby', 'bob');
    await messageCrosses(alice, [bob], 'lobby', 'across the bridge');
    await messageCrosses(bob, [alice], 'lobby', 'and back');
  });

  it('(c) two hosts without a secret refuse to link (only loopback peers are accepted)', async () => {
    net = await TestNetwork.create();
    const [h1, h2] = await Promise.all([net.addHost(), net.addHost()]);
    const [p1, p2] = ports(2);
    const [a, b] = await Promise.all([startIn(h1!, p1!), startIn(h2!, p2!)]);
    const hostOf = new Map([
      [a, h1!],
      [b, h2!],
    ]);
    await expectRefused(a, b, hostOf, /MESH_SECRET/);
  });

  it('(d) two hosts with different secrets refuse to link', async () => {
    net = await TestNetwork.create();
    const [h1, h2] = await Promise.all([net.addHost(), net.addHost()]);
    const [p1, p2] = ports(2);
    const [a, b] = await Promise.all([startIn(h1!, p1!, { MESH_SECRET: 'alpha-mesh-secret-1' }), startIn(h2!, p2!, { MESH_SECRET: 'bravo-mesh-secret-2' })]);
    const hostOf = new Map([
      [a, h1!],
      [b, h2!],
    ]);
    await expectRefused(a, b, hostOf, /MESH_SECRET differs/);
  });

  it('(e) after a kill -9 and a restart on the same port, the survivor links to the new node within 5 s', async () => {
    net = await TestNetwork.create();
    const host = await net.addHost();
    const [p1, p2] = ports(2);
    const [survivor, victim] = await Promise.all([startIn(host, p1!), startIn(host, p2!)]);
    await waitUp(survivor, victim);
    await waitUp(victim, survivor);

    const oldId = victim.nodeId;
    await victim.kill('SIGKILL');
    await survivor.waitForLog((l) => l.msg === 'peer down' && l.peer === oldId, 5000, 'the killed peer to go down');

    const startedAt = Date.now();
    const reborn = await startIn(host, p2!);
    expect(reborn.nodeId).to.not.equal(oldId);
    const row = await poll(
      async () => (await peers(survivor)).find((p) => p.id === reborn.nodeId && p.state === 'up'),
      { timeoutMs: Math.max(0, 5000 - (Date.now() - startedAt)), intervalMs: 50, what: `${survivor.nodeId} to link to the new node ${reborn.nodeId}` },
    );
    expect(row.address).to.equal(`ws://127.0.0.1:${p2}`);
    const elapsed = Date.now() - startedAt;
    expect(elapsed).to.be.below(5000);
    const rows = await peers(survivor);
    expect(rows.filter((p) => p.id === oldId && p.state === 'up'), 'old node still up').to.deep.equal([]);
    await waitUp(reborn, survivor, 3000);
  });
});
