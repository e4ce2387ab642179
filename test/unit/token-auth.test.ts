import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, base64url, type JWTPayload } from 'jose';
import { AuthError } from '../../lib/auth/errors.js';
import { authOptionsFromEnv } from '../../lib/auth/options.js';
import { MAX_TOKEN_LENGTH, TokenVerifier } from '../../lib/auth/verifier.js';

const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

function sign(claims: JWTPayload, secret: Uint8Array = key, alg = 'HS256'): Promise<string> {
  return new SignJWT({ sub: 'alice', role: 'customer', iat: now(), exp: now() + 600, ...claims })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .sign(secret);
}

function verifier(env: Record<string, string> = {}, extras = {}): TokenVerifier {
  const options = authOptionsFromEnv({ AUTH: 'jwt', JWT_SECRET: SECRET, ...env });
  return new TokenVerifier(options, extras);
}

/** Awaits a rejection with AuthError `code` (and `claim`), whose message never contains the token. */
export async function expectAuthError(p: Promise<unknown>, code: string, token?: string, claim?: string): Promise<AuthError> {
  let thrown: unknown;
  try {
    await p;
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected AuthError ${code}`).to.be.instanceOf(AuthError);
  const err = thrown as AuthError;
  expect(err.code, err.message).to.equal(code);
  if (claim !== undefined) expect(err.claim).to.equal(claim);
  if (token) for (const part of token.split('.').filter((s) => s.length > 8)) expect(err.message).to.not.include(part);
  return err;
}

describe('token auth: TokenVerifier (HS256)', () => {
  it('verifies a good token into an Identity', async () => {
    const iat = now();
    const token = await sign({ sub: 'alice', role: 'agent', rooms: ['lobby', 'team:*'], jti: 'j1', iat, exp: iat + 60 });
    expect(await verifier().verify(token)).to.deep.equal({ sub: 'alice', role: 'agent', rooms: ['lobby', 'team:*'], jti: 'j1', iat, exp: iat + 60 });
  });

  it('fills in null for the optional claims', async () => {
    const exp = now() + 60;
    const token = await new SignJWT({ sub: 'svc', role: 'service', exp }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    expect(await verifier().verify(token)).to.deep.equal({ sub: 'svc', role: 'service', rooms: null, jti: null, iat: null, exp });
  });

  it('cannot be built without a key source (AUTH=none)', () => {
    expect(() => new TokenVerifier(authOptionsFromEnv({}))).to.throw(/key source/);
  });

  it('says token_missing without a token and refuses oversized ones', async () => {
    await expectAuthError(verifier().verify(''), 'token_missing');
    await expectAuthError(verifier().verify(undefined), 'token_missing');
    await expectAuthError(verifier().verify('a'.repeat(MAX_TOKEN_LENGTH + 1)), 'token_invalid');
    await expectAuthError(verifier().verify('not-a-jwt'), 'token_invalid');
  });

  it('refuses an expired token, within the tolerance accepts it', async () => {
    const expired = await sign({ iat: now() - 600, exp: now() - 31 });
    await expectAuthError(verifier().verify(expired), 'token_expired', expired);
    await verifier().verify(await sign({ iat: now() - 600, exp: now() - 20 }));
    await expectAuthError(verifier({ JWT_CLOCK_TOLERANCE_SEC: '0' }).verify(await sign({ exp: now() - 2 })), 'token_expired');
  });

  it('refuses a token not valid yet (nbf)', async () => {
    await expectAuthError(verifier().verify(await sign({ nbf: now() + 120 })), 'token_claims', undefined, 'nbf');
  });

  it('refuses a wrong signature', async () => {
    const token = await sign({}, new TextEncoder().encode('another-secret-of-at-least-32-bytes!'));
    await expectAuthError(verifier().verify(token), 'token_invalid', token);
    const good = await sign({});
    const tampered = good.replace(/\.[^.]+\./, `.${base64url.encode(JSON.stringify({ sub: 'mallory', role: 'agent', exp: now() + 60 }))}.`);
    await expectAuthError(verifier().verify(tampered), 'token_invalid', tampered);
  });

  it('checks iss and aud when configured', async () => {
    const v = verifier({ JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'chatmesh' });
    await v.verify(await sign({ iss: 'https://idp.example', aud: ['other', 'chatmesh'] }));
    const wrongIss = await sign({ iss: 'https://evil.example', aud: 'chatmesh' });
    await expectAuthError(v.verify(wrongIss), 'token_claims', wrongIss, 'iss');
    await expectAuthError(v.verify(await sign({ iss: 'https://idp.example', aud: 'other' })), 'token_claims', undefined, 'aud');
    await expectAuthError(v.verify(await sign({ aud: 'chatmesh' })), 'token_claims', undefined, 'iss');
    await expectAuthError(v.verify(await sign({ iss: 'https://idp.example' })), 'token_claims', undefined, 'aud');
  });

  it('requires exp', async () => {
    const token = await new SignJWT({ sub: 'alice', role: 'customer' }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    await expectAuthError(verifier().verify(token), 'token_claims', token, 'exp');
  });

  it('refuses alg: none', async () => {
    const enc = (o: object) => base64url.encode(JSON.stringify(o));
    const payload = enc({ sub: 'alice', role: 'agent', exp: now() + 60 });
    for (const alg of ['none', 'None', 'NONE']) {
      await expectAuthError(verifier().verify(`${enc({ alg, typ: 'JWT' })}.${payload}.`), 'token_invalid');
      await expectAuthError(verifier().verify(`${enc({ alg, typ: 'JWT' })}.${payload}.${enc({})}`), 'token_invalid');
    }
  });

  it('refuses algorithm confusion: HS256 signed with the RSA public key text', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const dir = mkdtempSync(join(tmpdir(), 'chatmesh-confusion-'));
    try {
      writeFileSync(join(dir, 'rsa.pem'), pem);
      const options = authOptionsFromEnv({ AUTH: 'jwt', JWT_PUBLIC_KEY_FILE: join(dir, 'rsa.pem') });
      const v = new TokenVerifier(options);
      // The same claims signed properly verify, so the refusal below is about the algorithm.
      await v.verify(await sign({}, privateKey as never, 'RS256'));
      for (const text of [pem, pem.trim()]) {
        const forged = await sign({ role: 'agent' }, new TextEncoder().encode(text));
        await expectAuthError(v.verify(forged), 'token_invalid', forged);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('claims', () => {
    const refuses = async (claims: JWTPayload, claim: string) => {
      const err = await expectAuthError(verifier().verify(await sign(claims)), 'token_claims', undefined, claim);
      expect(err.message).to.include(claim);
    };

    it('requires a role among customer, agent, service', async () => {
      const token = await new SignJWT({ sub: 'alice', exp: now() + 60 }).setProtectedHeader({ alg: 'HS256' }).sign(key);
      const err = await expectAuthError(verifier().verify(token), 'token_claims', token, 'role');
      expect(err.message).to.match(/role missing/);
      await refuses({ role: 'admin' }, 'role');
      await refuses({ role: ['agent'] }, 'role');
    });

    it('requires sub: a non-empty string of at most 128 characters', async () => {
      await refuses({ sub: '' }, 'sub');
      await refuses({ sub: 'x'.repeat(129) }, 'sub');
      await refuses({ sub: 42 as unknown as string }, 'sub');
      expect((await verifier().verify(await sign({ sub: 'x'.repeat(128) }))).sub).to.have.length(128);
    });

    it('checks rooms: an array of at most 1000 strings of 1 to 128 characters', async () => {
      await refuses({ rooms: 'lobby' }, 'rooms');
      await refuses({ rooms: ['lobby', 7] }, 'rooms');
      await refuses({ rooms: [''] }, 'rooms');
      await refuses({ rooms: ['x'.repeat(129)] }, 'rooms');
      await refuses({ rooms: Array.from({ length: 1001 }, (_, i) => `r${i}`) }, 'rooms');
      expect((await verifier().verify(await sign({ rooms: [] }))).rooms).to.deep.equal([]);
      expect((await verifier().verify(await sign({ rooms: Array.from({ length: 1000 }, (_, i) => `r${i}`) }))).rooms).to.have.length(1000);
    });

    it('checks jti, iat in the future and the longest lifetime', async () => {
      await refuses({ jti: 5 as unknown as string }, 'jti');
      await refuses({ jti: '' }, 'jti');
      await refuses({ iat: now() + 120 }, 'iat');
      await refuses({ iat: now(), exp: now() + 86_401 }, 'exp');
      await refuses({ iat: undefined, exp: now() + 86_500 }, 'exp');
      await verifier().verify(await sign({ iat: now() + 10 }));
    });
  });

  it('refuses a revoked token after checking it', async () => {
    const v = verifier({}, { revocations: { isRevoked: (id: { sub: string }) => id.sub === 'mallory' } });
    await v.verify(await sign({ sub: 'alice' }));
    await expectAuthError(v.verify(await sign({ sub: 'mallory' })), 'token_revoked');
  });
});
