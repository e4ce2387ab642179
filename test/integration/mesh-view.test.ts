/**
 * GET /mesh/state on real processes (127.0.0.1, static peers): who may read it (loopback only
 * by default, METRICS_TOKEN when set, a service token with AUTH=jwt), and what three linked
 * instances say: every node, every link seen from both ends, round trips, clock skew, each
 * peer's clients and rooms (from its heartbeats), replication lag of a peer's writes.
 */
import { expect } from 'chai';
import { networkInterfaces } from 'node:os';
import { AUDIENCE, ISSUER, TEST_SECRET, mint } from '../helpers/auth.js';
import { Instance, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';
import type { MeshState } from '../../lib/http/mesh-state.js';

const METRICS_TOKEN = 'mesh-view-test-token-0123456789';
const JWT_ENV = { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE };

async function getState(base: string, authorization?: string): Promise<{ status: number; body: { error?: { code: string; message: string } } & Partial<MeshState>; headers: Headers }> {
  const res = await fetch(`${base}/mesh/state`, { headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } & Partial<MeshState>, headers: res.headers };
}

/** An address of this machine that is not loopback (null when it has none). */
function outsideAddress(): string | null {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}

describe('mesh view: GET /mesh/state', function () {
  this.timeout(30_000);
  const clients = new ClientPool();

  afterEach(async () => {
    await clients.closeAll();
    await stopAll();
  });

  it('without AUTH or METRICS_TOKEN answers loopback only (403 with the reason from elsewhere); GET only', async function () {
    const a = await Instance.start();
    const ok = await getState(a.httpUrl);
    expect(ok.status).to.equal(200);
    expect(ok.headers.get('cache-control')).to.equal('no-store');
    expect(ok.body.self).to.equal(a.nodeId);
    expect((await fetch(`${a.httpUrl}/mesh/state`, { method: 'POST' })).status).to.equal(405);
    const head = await fetch(`${a.httpUrl}/mesh/state`, { method: 'HEAD' });
    expect([head.status, await head.text()]).to.deep.equal([200, '']);
    const outside = outsideAddress();
    if (outside === null) return this.skip(); // no other address to come from on this machine
    const refused = await getState(`http://${outside}:${a.port}`);
    expect(refused.status).to.equal(403);
    expect(refused.body.error!.code).to.equal('forbidden');
    expect(refused.body.error!.message).to.match(/loopback only.*METRICS_TOKEN/);
    expect(refused.body).not.to.have.property('nodes');
  });

  it('with METRICS_TOKEN needs it, from loopback too', async () => {
    const a = await Instance.start({ env: { METRICS_TOKEN } });
    const missing = await getState(a.httpUrl);
    expect(missing.status).to.equal(401);
    expect(missing.body.error!.code).to.equal('unauthorized');
    expect(missing.headers.get('www-authenticate')).to.equal('Bearer realm="chatmesh"');
    expect((await getState(a.httpUrl, `Bearer ${METRICS_TOKEN}x`)).status).to.equal(401);
    expect((await getState(a.httpUrl, `Basic ${METRICS_TOKEN}`)).status).to.equal(401);
    const ok = await getState(a.httpUrl, `Bearer ${METRICS_TOKEN}`);
    expect(ok.status).to.equal(200);
    expect(ok.body.nodes!.map((n) => n.key)).to.deep.equal([a.nodeId]);
  });

  it('with AUTH=jwt needs a service token: 401 without a valid one, 403 for another role', async () => {
    const a = await Instance.start({ env: { ...JWT_ENV, METRICS_TOKEN } });
    expect((await getState(a.httpUrl)).status).to.equal(401);
    expect((await getState(a.httpUrl, 'Bearer not.a.token')).status).to.equal(401);
    expect((await getState(a.httpUrl, `Bearer ${METRICS_TOKEN}`)).status).to.equal(401); // the metrics token is not a JWT
    const agent = await getState(a.httpUrl, `Bearer ${await mint({ sub: 'ann', role: 'agent' })}`);
    expect(agent.status).to.equal(403);
    expect(agent.body.error!.code).to.equal('forbidden');
    expect(agent.body.error!.message).to.match(/service token/);
    const expired = await mint({ sub: 'ops', role: 'service', ttl: -600, iat: Math.floor(Date.now() / 1000) - 900 });
    expect((await getState(a.httpUrl, `Bearer ${expired}`)).status).to.equal(401);
    const ok = await getState(a.httpUrl, `Bearer ${await mint({ sub: 'ops', role: 'service' })}`);
    expect(ok.status).to.equal(200);
    expect(ok.body.self).to.equal(a.nodeId);
  });

  it('three instances: every node and link, round trips, clock skew, a peer\'s clients and rooms, replication lag', async () => {
    const [a, b, c] = await fullMesh(3);
    const ids = [a, b, c].map((i) => i.nodeId);
    // Every link is reported by both its ends once the advertisements went round.
    const state = await poll(
      async () => {
        const s = (await getState(a.httpUrl)).body as MeshState;
        const measured = s.nodes.filter((n) => !n.self).every((n) => n.rttMs !== null && n.clockSkewMs !== null);
        return s.links.length === 3 && s.links.every((l) => l.reportedBy.length === 2) && measured ? s : null;
      },
      { timeoutMs: 8000, what: 'three links, each reported by both ends, and a round trip and clock skew for each peer' },
    );
    expect(state.self).to.equal(a.nodeId);
    expect(state.detectionMs).to.equal(4000);
    expect(state.nodes.map((n) => n.key).sort()).to.deep.equal([...ids].sort());
    expect(state.nodes.every((n) => n.state === 'up')).to.equal(true);
    expect(state.nodes.find((n) => n.self)!.key).to.equal(a.nodeId);
    const pair = (x: string, y: string) => (x < y ? `${x} ${y}` : `${y} ${x}`);
    expect(state.links.map((l) => `${l.a} ${l.b}`).sort()).to.deep.equal([pair(ids[0], ids[1]), pair(ids[0], ids[2]), pair(ids[1], ids[2])].sort());
    for (const peer of [b, c]) {
      const node = state.nodes.find((n) => n.key === peer.nodeId)!;
      expect(node.address).to.equal(peer.peerAddress);
      expect(node.rttMs).to.be.a('number').within(0, 1000);
      expect(node.clockSkewMs).to.be.a('number').within(-1000, 1000); // one machine, one clock
      expect(state.links.find((l) => [l.a, l.b].includes(peer.nodeId) && [l.a, l.b].includes(a.nodeId))!.rttMs).to.be.a('number');
    }
    expect(state.links.find((l) => l.a !== a.nodeId && l.b !== a.nodeId)!.rttMs).to.equal(null); // measured by b and c, not here

    // A client on B in two rooms: B's next heartbeats tell A; a message from B shows its lag at A.
    const client = await clients.connect(b);
    await client.join('one', 'ann');
    await client.join('two', 'ann');
    await client.say('two', 'hello');
    const seen = await poll(
      async () => {
        const node = ((await getState(a.httpUrl)).body as MeshState).nodes.find((n) => n.key === b.nodeId)!;
        return node.connections === 1 && node.rooms === 2 && node.replicationLagMs !== null ? node : null;
      },
      { timeoutMs: 5000, what: "B's clients and rooms, and the lag of its write, at A" },
    );
    expect(seen.replicationLagMs).to.be.within(0, 2000);
    expect(Date.parse(seen.lastWriteAt!)).to.be.closeTo(Date.now(), 10_000);
    const self = ((await getState(b.httpUrl)).body as MeshState).nodes.find((n) => n.self)!;
    expect([self.connections, self.rooms]).to.deep.equal([1, 2]);
  });
});
