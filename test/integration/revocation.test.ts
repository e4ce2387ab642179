/**
 * Revocation across the mesh, no shared store, on real processes: a service token revokes a
 * token (jti) or a user (sub) on one of three instances; every instance closes the matching
 * sockets (4403) within a second and refuses the token from then on; an instance that was
 * down when it happened learns it when it links again.
 */
import { expect } from 'chai';
import { AUDIENCE, ISSUER, TEST_SECRET, authApi, connectWithQuery, mint, upgradeStatus } from '../helpers/auth.js';
import type { TestClient } from '../helpers/client.js';
import { Instance, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';

const JWT_ENV = { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE };

describe('revocation across the mesh', function () {
  this.timeout(60_000);
  const pool = new ClientPool();
  afterEach(async () => {
    await pool.closeAll();
    await stopAll();
  });

  it('only a service token may revoke; AUTH=none has no such route', async () => {
    const plain = await Instance.start();
    expect((await authApi(plain.httpUrl, undefined, 'POST', '/api/auth/revocations', { sub: 'x' })).status).to.equal(404);
    const node = await Instance.start({ env: JWT_ENV });
    const url = node.httpUrl;
    expect((await authApi(url, undefined, 'POST', '/api/auth/revocations', { sub: 'x' })).status).to.equal(401);
    expect((await authApi(url, await mint({ sub: 'a', role: 'agent' }), 'POST', '/api/auth/revocations', { sub: 'x' })).status).to.equal(403);
    const service = await mint({ sub: 'backend', role: 'service' });
    expect((await authApi(url, service, 'POST', '/api/auth/revocations', { sub: 'x', jti: 'y' })).status).to.equal(400);
    expect((await authApi(url, service, 'POST', '/api/auth/revocations', { jti: 'y', exp: 'soon' })).status).to.equal(400);
    const first = await authApi(url, service, 'POST', '/api/auth/revocations', { jti: 'y' });
    expect(first.status).to.equal(201);
    expect(first.body.revoked).to.include({ kind: 'jti', jti: 'y' });
    expect((await authApi(url, service, 'POST', '/api/auth/revocations', { jti: 'y' })).status).to.equal(200); // idempotent
  });

  it('a revocation on one of three instances closes the matching sockets on all three within 1 s; the token cannot reconnect anywhere', async () => {
    const nodes = await fullMesh(3, JWT_ENV);
    const revoked = await mint({ sub: 'carol', role: 'customer', jti: 'carol-1' });
    const kept = await mint({ sub: 'carol', role: 'customer', jti: 'carol-2' });
    const userTokens = await Promise.all([0, 1, 2].map(() => mint({ sub: 'dave', role: 'agent' })));
    const doomed: TestClient[] = [];
    const survivors: TestClient[] = [];
    const daves: TestClient[] = [];
    for (const [i, node] of nodes.entries()) {
      doomed.push(pool.track(await connectWithQuery(node.url, revoked)));
      survivors.push(pool.track(await connectWithQuery(node.url, kept)));
      daves.push(pool.track(await connectWithQuery(node.url, userTokens[i])));
    }
    const service = await mint({ sub: 'backend', role: 'service' });

    const t0 = Date.now();
    expect((await authApi(nodes[1].httpUrl, service, 'POST', '/api/auth/revocations', { jti: 'carol-1' })).status).to.equal(201);
    const codes = await Promise.all(doomed.map((c) => c.waitClose(1500)));
    const elapsed = Date.now() - t0;
    expect(codes).to.deep.equal([4403, 4403, 4403]);
    expect(elapsed, `closed after ${elapsed} ms`).to.be.below(1000);
    for (const node of nodes) {
      expect((await upgradeStatus(`${node.url}/?token=${revoked}`)).status).to.equal(401);
      expect((await authApi(node.httpUrl, revoked, 'POST', '/api/conversations')).status).to.equal(401);
      expect((await upgradeStatus(`${node.url}/?token=${kept}`)).status).to.equal(101);
    }
    expect(survivors.map((c) => c.closeCode)).to.deep.equal([null, null, null]);

    // A user: every token issued before now, on every instance; a token issued later works.
    await new Promise((r) => setTimeout(r, 1000)); // a later iat than the revocation's second
    expect((await authApi(nodes[2].httpUrl, service, 'POST', '/api/auth/revocations', { sub: 'dave' })).status).to.equal(201);
    expect(await Promise.all(daves.map((c) => c.waitClose(1500)))).to.deep.equal([4403, 4403, 4403]);
    for (const node of nodes) expect((await upgradeStatus(`${node.url}/?token=${userTokens[0]}`)).status).to.equal(401);
    await new Promise((r) => setTimeout(r, 1100));
    const fresh = await mint({ sub: 'dave', role: 'agent' });
    for (const node of nodes) expect((await upgradeStatus(`${node.url}/?token=${fresh}`)).status).to.equal(101);
  });

  it('an instance that was down when the revocation was made learns it when it links again', async () => {
    const nodes = await fullMesh(3, JWT_ENV);
    const token = await mint({ sub: 'erin', role: 'customer', jti: 'erin-1' });
    const service = await mint({ sub: 'backend', role: 'service' });
    const [a, , c] = nodes;
    const { port, options } = c;
    await c.kill();
    expect((await authApi(a.httpUrl, service, 'POST', '/api/auth/revocations', { jti: 'erin-1' })).status).to.equal(201);
    const back = await Instance.start({ port, env: options.env });
    await back.waitForPeersUp([a.nodeId, nodes[1].nodeId], 15_000);
    await poll(async () => (await upgradeStatus(`${back.url}/?token=${token}`)).status === 401, { timeoutMs: 3000, what: 'the revocation to reach the restarted instance' });
    expect((await upgradeStatus(`${back.url}/?token=${await mint({ sub: 'erin', role: 'customer', jti: 'erin-2' })}`)).status).to.equal(101);
  });
});
