import { expect } from 'chai';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { AuthError } from '../../lib/auth/errors.js';
import { authOptionsFromEnv } from '../../lib/auth/options.js';
import { TokenVerifier } from '../../lib/auth/verifier.js';

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function newKey(kid: string): SigningKey {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' } };
}

function sign(key: { kid: string; privateKey: KeyObject | Uint8Array }, alg = 'ES256'): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'carol', role: 'service', iat: now, exp: now + 60 }).setProtectedHeader({ alg, kid: key.kid }).sign(key.privateKey);
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    expect(err).to.be.instanceOf(AuthError);
    return (err as AuthError).code;
  }
}

/** A JWKS server on 127.0.0.1 whose answer the test changes; counts requests. */
class JwksServer {
  keys: Record<string, unknown>[] = [];
  mode: 'ok' | 'error' | 'hang' = 'ok';
  hits = 0;
  private readonly server: Server = createServer((_req, res) => {
    this.hits++;
    if (this.mode === 'hang') return;
    if (this.mode === 'error') return void res.writeHead(500).end('boom');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
  });

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }
}

describe('token auth: JWKS_URL', () => {
  let jwks: JwksServer;
  let url: string;
  beforeEach(async () => {
    jwks = new JwksServer();
    url = await jwks.start();
  });
  afterEach(() => jwks.stop());

  function verifier(env: Record<string, string> = {}): TokenVerifier {
    const options = authOptionsFromEnv({ AUTH: 'jwt', JWKS_URL: url, JWKS_COOLDOWN_MS: '200', ...env });
    return new TokenVerifier(options);
  }

  it('verifies, then follows a key rotation without a new verifier', async () => {
    const k1 = newKey('k1');
    const k2 = newKey('k2');
    jwks.keys = [k1.jwk];
    const v = verifier();
    expect((await v.verify(await sign(k1))).sub).to.equal('carol');
    expect(jwks.hits).to.equal(1);

    jwks.keys = [k2.jwk]; // rotated: k1 gone, k2 new
    // Within the cooldown the unknown kid is refused without asking the server...
    expect(await code(v.verify(await sign(k2)))).to.equal('token_invalid');
    expect(jwks.hits).to.equal(1);
    await sleep(250);
    // ...after it, the unknown kid triggers one fetch and verifies.
    expect((await v.verify(await sign(k2))).sub).to.equal('carol');
    expect(jwks.hits).to.equal(2);
    expect(await code(v.verify(await sign(k1)))).to.equal('token_invalid');
  });

  it('a flood of unknown kids does not hammer the JWKS server', async () => {
    const k1 = newKey('k1');
    jwks.keys = [k1.jwk];
    const v = verifier({ JWKS_COOLDOWN_MS: '30000' });
    // Concurrent first requests share one fetch.
    const first = await Promise.all(Array.from({ length: 20 }, async () => code(v.verify(await sign(k1)))));
    expect(first.every((c) => c === 'ok')).to.equal(true);
    const made = await Promise.all(Array.from({ length: 100 }, async (_, i) => code(v.verify(await sign({ ...newKey(`x${i}`) })))));
    expect(made.every((c) => c === 'token_invalid')).to.equal(true);
    expect(jwks.hits).to.equal(1);
  });

  it('a down JWKS server is auth_unavailable, and is not asked again for every request', async () => {
    const k1 = newKey('k1');
    jwks.mode = 'error';
    const v = verifier({ JWKS_COOLDOWN_MS: '30000' });
    for (let i = 0; i < 5; i++) expect(await code(v.verify(await sign(k1)))).to.equal('auth_unavailable');
    expect(jwks.hits).to.equal(1);
  });

  it('a JWKS server that does not answer is auth_unavailable after the timeout', async () => {
    jwks.mode = 'hang';
    const v = verifier({ JWKS_TIMEOUT_MS: '100' });
    const started = Date.now();
    expect(await code(v.verify(await sign(newKey('k1'))))).to.equal('auth_unavailable');
    expect(Date.now() - started).to.be.lessThan(2000);
  });

  it('prefetch() loads the keys ahead of the first token', async () => {
    const k1 = newKey('k1');
    jwks.keys = [k1.jwk];
    const v = verifier();
    await v.prefetch();
    expect(jwks.hits).to.equal(1);
    await v.verify(await sign(k1));
    expect(jwks.hits).to.equal(1);
    jwks.mode = 'error';
    expect(await code(v.prefetch())).to.equal('auth_unavailable');
  });

  it('never uses a symmetric key served in the JWKS', async () => {
    const secret = new TextEncoder().encode('x'.repeat(32));
    jwks.keys = [{ kty: 'oct', kid: 'sym', k: Buffer.from(secret).toString('base64url'), alg: 'HS256' }, newKey('k1').jwk];
    const v = verifier();
    expect(await code(v.verify(await sign({ kid: 'sym', privateKey: secret }, 'HS256')))).to.equal('token_invalid');
  });
});
