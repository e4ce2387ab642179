/**
 * AUTH=jwt on real processes, tokens minted in the test: the upgrade refuses missing and bad
 * tokens with 401; the user is the token's sub (no impersonation on WebSocket or REST); a
 * customer cannot read, post to or delete in another's conversation, on any instance; refresh
 * keeps a connection, a lapsed token closes it (4401); JWKS key rotation without a restart;
 * /health says the mode and nothing secret; METRICS_TOKEN. AUTH unset changes nothing (the
 * rest of the suite runs that way).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK } from 'jose';
import { AUDIENCE, ISSUER, TEST_SECRET, authApi, connectWithHeader, connectWithQuery, mint, unsigned, upgradeStatus } from '../helpers/auth.js';
import type { TestClient } from '../helpers/client.js';
import { Instance, ROOT, SERVER, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';

const JWT_ENV = { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_CLOCK_TOLERANCE_SEC: '0' };

describe('AUTH=jwt (tokens on real processes)', function () {
  this.timeout(30_000);
  const pool = new ClientPool();
  afterEach(async () => {
    await pool.closeAll();
    await stopAll();
  });

  const track = (c: TestClient) => pool.track(c);

  it('AUTH unset: one start-up line says auth is off, and /health shows "auth":"none"', async () => {
    const node = await Instance.start();
    const line = node.logs.find((l) => l.auth === 'none');
    expect(line?.msg).to.match(/AUTH=none/);
    expect((await node.health()).body).to.include({ auth: 'none' });
  });

  it('a bad value stops start-up naming the variable', () => {
    for (const [env, variable] of [
      [{ AUTH: 'jwt', JWT_SECRET: 'too-short' }, 'JWT_SECRET'],
      [{ AUTH: 'maybe' }, 'AUTH'],
      [{ AUTH: 'jwt', JWKS_URL: 'ftp://x' }, 'JWKS_URL'],
      [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN'],
    ] as const) {
      const run = spawnSync(process.execPath, [SERVER], { cwd: ROOT, env: { PATH: process.env.PATH, DISCOVERY: 'off', PORT: '0', ...env }, encoding: 'utf8', timeout: 10_000 });
      expect(run.status, JSON.stringify(env)).to.equal(1);
      expect(run.stderr).to.include(variable);
    }
  });

  it('refuses the upgrade with 401 for a missing, expired, badly signed, wrong iss/aud or alg none token', async () => {
    const node = await Instance.start({ env: JWT_ENV });
    expect((await node.health()).body).to.include({ auth: 'jwt' });
    const other = new TextEncoder().encode('another-secret-that-is-long-enough-000000');
    const bad = {
      missing: undefined,
      expired: await mint({ sub: 'ann', role: 'customer', ttl: -10, iat: Math.floor(Date.now() / 1000) - 60 }),
      'wrong signature': await mint({ sub: 'ann', role: 'customer' }, other),
      'wrong iss': await mint({ sub: 'ann', role: 'customer', iss: 'https://evil.test' }),
      'wrong aud': await mint({ sub: 'ann', role: 'customer', aud: 'someone-else' }),
      'alg none': unsigned({ sub: 'ann', role: 'customer', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 }),
      'no role': await mint({ sub: 'ann' }),
      garbage: 'not.a.token',
    };
    for (const [what, token] of Object.entries(bad)) {
      const viaHeader = await upgradeStatus(node.url, token === undefined ? {} : { authorization: `Bearer ${token}` });
      expect(viaHeader.status, what).to.equal(401);
      expect(viaHeader.headers['www-authenticate'], what).to.match(/^Bearer/);
      if (token !== undefined) expect((await upgradeStatus(`${node.url}/?token=${encodeURIComponent(token)}`)).status, `${what} (query)`).to.equal(401);
      const rest = await authApi(node.httpUrl, token, 'POST', '/api/conversations');
      expect(rest.status, `${what} (REST)`).to.equal(401);
      expect(rest.body.error.code).to.equal('unauthorized');
      expect(rest.headers.get('www-authenticate')).to.match(/^Bearer/);
    }
    const good = await mint({ sub: 'ann', role: 'customer' });
    expect((await upgradeStatus(node.url, { authorization: `Bearer ${good}` })).status).to.equal(101);
    // Nothing secret in /health: no key, no token, no user name.
    const health = JSON.stringify((await node.health()).body);
    for (const secret of [TEST_SECRET, good, 'ann']) expect(health).not.to.include(secret);
  });

  it('refuses an HS256 token "signed" with the RS256 public key (algorithm confusion)', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const file = join(mkdtempSync(join(tmpdir(), 'chatmesh-auth-')), 'public.pem');
    writeFileSync(file, pem);
    const node = await Instance.start({ env: { AUTH: 'jwt', JWT_PUBLIC_KEY_FILE: file } });
    const rs = await mint({ sub: 'ann', role: 'agent' }, privateKey, 'RS256');
    expect((await upgradeStatus(node.url, { authorization: `Bearer ${rs}` })).status).to.equal(101);
    const confused = await mint({ sub: 'ann', role: 'agent' }, new TextEncoder().encode(pem), 'HS256');
    expect((await upgradeStatus(node.url, { authorization: `Bearer ${confused}` })).status).to.equal(401);
    expect((await authApi(node.httpUrl, confused, 'POST', '/api/conversations')).status).to.equal(401);
  });

  it('WebSocket: the user is the token\'s sub; another user is user_mismatch, a room not allowed is forbidden, the connection stays open', async () => {
    const node = await Instance.start({ env: JWT_ENV });
    const ann = track(await connectWithHeader(node.url, await mint({ sub: 'ann', role: 'customer' })));
    const joined = await ann.request({ type: 'join', room: 'ann-help' }, (f) => f.type === 'joined' || f.type === 'error');
    expect(joined).to.include({ type: 'joined', user: 'ann' });
    expect(await ann.request({ type: 'join', room: 'x', user: 'bob' }, (f) => f.type === 'error')).to.include({ code: 'user_mismatch' });
    expect(await ann.request({ type: 'message', room: 'ann-help', user: 'bob', text: 'hi' }, (f) => f.type === 'error')).to.include({ code: 'user_mismatch' });
    const echo = await ann.say('ann-help', 'hello');
    expect(echo).to.include({ user: 'ann', by: 'ann' });

    // Another customer may not join ann's conversation; an agent may; a rooms claim decides when present.
    const bob = track(await connectWithQuery(node.url, await mint({ sub: 'bob', role: 'customer' })));
    expect(await bob.request({ type: 'join', room: 'ann-help' }, (f) => f.type === 'error')).to.include({ code: 'forbidden' });
    expect(await bob.request({ type: 'join', room: 'bob-help', user: 'bob' }, (f) => f.type === 'joined' || f.type === 'error')).to.include({ type: 'joined' });
    const agent = track(await connectWithQuery(node.url, await mint({ sub: 'agent7', role: 'agent' })));
    const seen = await agent.request({ type: 'join', room: 'ann-help' }, (f) => f.type === 'joined' || f.type === 'error');
    expect(seen).to.include({ type: 'joined', user: 'agent7' });
    expect((seen.history as { text: string }[]).map((m) => m.text)).to.deep.equal(['hello']);
    const limited = track(await connectWithQuery(node.url, await mint({ sub: 'agent8', role: 'agent', rooms: ['team:*'] })));
    expect(await limited.request({ type: 'join', room: 'ann-help' }, (f) => f.type === 'error')).to.include({ code: 'forbidden' });
    expect(await limited.request({ type: 'join', room: 'team:blue' }, (f) => f.type === 'joined' || f.type === 'error')).to.include({ type: 'joined' });
    expect(ann.closeCode).to.equal(null);
    expect(bob.closeCode).to.equal(null);
  });

  it('REST: a customer reads, posts and deletes only in its own conversations; sender follows the role; the author is recorded', async () => {
    const node = await Instance.start({ env: JWT_ENV });
    const base = node.httpUrl;
    const ann = await mint({ sub: 'ann', role: 'customer' });
    const bob = await mint({ sub: 'bob', role: 'customer' });
    const agent = await mint({ sub: 'agent7', role: 'agent' });
    const service = await mint({ sub: 'backend', role: 'service' });

    const created = await authApi(base, ann, 'POST', '/api/conversations');
    expect(created.status).to.equal(201);
    const id = created.body.id as string;
    const path = `/api/conversations/${id}`;
    const own = await authApi(base, ann, 'POST', `${path}/messages`, { content: 'my order is late' });
    expect(own.status).to.equal(201);
    expect(own.body).to.include({ sender: 'customer', author: 'ann' });
    // Impersonation: a customer cannot post as agent.
    expect((await authApi(base, ann, 'POST', `${path}/messages`, { sender: 'agent', content: 'refund approved' })).status).to.equal(403);

    // Another customer: 404 for everything, as if the conversation did not exist.
    expect((await authApi(base, bob, 'GET', path)).status).to.equal(404);
    expect((await authApi(base, bob, 'POST', `${path}/messages`, { content: 'hi' })).status).to.equal(404);
    expect((await authApi(base, bob, 'DELETE', `${path}/messages/${own.body.id}`)).status).to.equal(404);

    // An agent reads and posts in all; a customer cannot delete the agent's message.
    const reply = await authApi(base, agent, 'POST', `${path}/messages`, { content: 'on it' });
    expect(reply.body).to.include({ sender: 'agent', author: 'agent7' });
    expect((await authApi(base, agent, 'POST', `${path}/messages`, { sender: 'customer', content: 'x' })).status).to.equal(403);
    expect((await authApi(base, ann, 'DELETE', `${path}/messages/${reply.body.id}`)).status).to.equal(403);
    const read = await authApi(base, ann, 'GET', path);
    expect(read.status).to.equal(200);
    expect(read.body.messages.map((m: { author: string }) => m.author)).to.deep.equal(['ann', 'agent7']);

    // The author deletes its own; an agent deletes any; a service does everything.
    expect((await authApi(base, ann, 'DELETE', `${path}/messages/${own.body.id}`)).status).to.equal(204);
    expect((await authApi(base, agent, 'DELETE', `${path}/messages/${reply.body.id}`)).status).to.equal(204);
    const forAnn = await authApi(base, service, 'POST', '/api/conversations', { owner: 'ann' });
    expect(forAnn.status).to.equal(201);
    expect((await authApi(base, service, 'POST', `/api/conversations/${forAnn.body.id}/messages`, { sender: 'agent', content: 'welcome' })).status).to.equal(201);
    expect((await authApi(base, ann, 'GET', `/api/conversations/${forAnn.body.id}`)).status).to.equal(200);
    expect((await authApi(base, bob, 'GET', `/api/conversations/${forAnn.body.id}`)).status).to.equal(404);
  });

  it('ownership is replicated: another instance refuses another customer too', async () => {
    const [a, b] = await fullMesh(2, JWT_ENV);
    const ann = await mint({ sub: 'ann', role: 'customer' });
    const bob = await mint({ sub: 'bob', role: 'customer' });
    const created = await authApi(a.httpUrl, ann, 'POST', '/api/conversations');
    const path = `/api/conversations/${created.body.id}`;
    expect((await authApi(b.httpUrl, ann, 'GET', path)).status).to.equal(200);
    expect((await authApi(b.httpUrl, bob, 'GET', path)).status).to.equal(404);
    const bobWs = track(await connectWithQuery(b.url, bob));
    expect(await bobWs.request({ type: 'join', room: created.body.id }, (f) => f.type === 'error' || f.type === 'joined')).to.include({ code: 'forbidden' });
    const annWs = track(await connectWithQuery(b.url, ann));
    expect(await annWs.request({ type: 'join', room: created.body.id }, (f) => f.type === 'error' || f.type === 'joined')).to.include({ type: 'joined' });
  });

  it('refresh keeps a connection past its first token; a lapsed token closes it with 4401', async () => {
    const node = await Instance.start({ env: JWT_ENV });
    const keeper = track(await connectWithQuery(node.url, await mint({ sub: 'ann', role: 'customer', ttl: 2 })));
    const lapser = track(await connectWithQuery(node.url, await mint({ sub: 'ann', role: 'customer', ttl: 2 })));
    await keeper.join('r1', 'ann');
    expect(await keeper.request({ type: 'refresh', token: await mint({ sub: 'bob', role: 'customer' }) }, (f) => f.type === 'error')).to.include({ code: 'user_mismatch' });
    expect(await keeper.request({ type: 'refresh', token: 'junk' }, (f) => f.type === 'error')).to.include({ code: 'token_invalid' });
    const refreshed = await keeper.request({ type: 'refresh', token: await mint({ sub: 'ann', role: 'customer', ttl: 60 }) }, (f) => f.type === 'refreshed' || f.type === 'error');
    expect(refreshed.type).to.equal('refreshed');
    expect(await lapser.waitClose(5000)).to.equal(4401);
    await new Promise((r) => setTimeout(r, 500));
    expect(keeper.closeCode).to.equal(null);
    expect((await keeper.say('r1', 'still here')).user).to.equal('ann');
  });

  it('JWKS_URL: keys are fetched from the JWKS server, and a rotated key works without a restart', async () => {
    const keys = [generateKeyPairSync('ec', { namedCurve: 'P-256' }), generateKeyPairSync('ec', { namedCurve: 'P-256' })];
    const jwk = async (i: number) => ({ ...(await exportJWK(keys[i].publicKey)), kid: `k${i}`, alg: 'ES256', use: 'sig' });
    let served = [await jwk(0)];
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: served }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
      const node = await Instance.start({ env: { AUTH: 'jwt', JWKS_URL: url, JWKS_COOLDOWN_MS: '0' } });
      const first = await mint({ sub: 'ann', role: 'agent' }, keys[0].privateKey, 'ES256', 'k0');
      expect((await upgradeStatus(node.url, { authorization: `Bearer ${first}` })).status).to.equal(101);
      const second = await mint({ sub: 'ann', role: 'agent' }, keys[1].privateKey, 'ES256', 'k1');
      expect((await upgradeStatus(node.url, { authorization: `Bearer ${second}` })).status).to.equal(401);
      served = [await jwk(1)]; // rotation: k0 retired, k1 current
      expect((await upgradeStatus(node.url, { authorization: `Bearer ${second}` })).status).to.equal(101);
      expect((await authApi(node.httpUrl, second, 'POST', '/api/conversations')).status).to.equal(201);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('METRICS_TOKEN: /metrics needs it as a Bearer token', async () => {
    const token = 'metrics-token-0123456789';
    const node = await Instance.start({ env: { METRICS_TOKEN: token } });
    const none = await fetch(`${node.httpUrl}/metrics`);
    expect(none.status).to.equal(401);
    expect(none.headers.get('www-authenticate')).to.match(/^Bearer/);
    expect((await fetch(`${node.httpUrl}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).to.equal(401);
    expect((await fetch(`${node.httpUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).to.equal(200);
    expect(JSON.stringify((await node.health()).body)).not.to.include(token);
  });
});
