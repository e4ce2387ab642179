import { expect } from 'chai';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { AuthError } from '../../lib/auth/errors.js';
import { authOptionsFromEnv } from '../../lib/auth/options.js';
import { TokenVerifier } from '../../lib/auth/verifier.js';

type Kind = 'rsa' | 'ec' | 'ed25519';
function generate(kind: Kind): { publicKey: KeyObject; privateKey: KeyObject } {
  if (kind === 'rsa') return generateKeyPairSync('rsa', { modulusLength: 2048 });
  if (kind === 'ec') return generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return generateKeyPairSync('ed25519');
}
const pairs: Record<Kind, { publicKey: KeyObject; privateKey: KeyObject }> = { rsa: generate('rsa'), ec: generate('ec'), ed25519: generate('ed25519') };
const CASES: [Kind, string][] = [['rsa', 'RS256'], ['ec', 'ES256'], ['ed25519', 'EdDSA'], ['ed25519', 'Ed25519']];

function sign(privateKey: KeyObject | Uint8Array, alg: string, kid?: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'bob', role: 'agent', iat: now, exp: now + 60 })
    .setProtectedHeader({ alg, ...(kid !== undefined && { kid }) })
    .sign(privateKey);
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

describe('token auth: public key files (RS256, ES256, EdDSA)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'chatmesh-auth-keys-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function verifierFor(kind: Kind, format: 'pem' | 'jwk'): TokenVerifier {
    const key = pairs[kind].publicKey;
    const text = format === 'pem' ? (key.export({ type: 'spki', format: 'pem' }) as string) : JSON.stringify(key.export({ format: 'jwk' }));
    const path = join(dir, `${kind}.${format}`);
    writeFileSync(path, text);
    const options = authOptionsFromEnv({ AUTH: 'jwt', JWT_PUBLIC_KEY_FILE: path });
    return new TokenVerifier(options);
  }

  for (const format of ['pem', 'jwk'] as const) {
    for (const [kind, alg] of CASES) {
      it(`${alg} with a ${format.toUpperCase()} ${kind} key verifies`, async () => {
        const v = verifierFor(kind, format);
        const id = await v.verify(await sign(pairs[kind].privateKey, alg, 'some-kid'));
        expect(id.sub).to.equal('bob');
        expect(id.role).to.equal('agent');
      });
    }
  }

  it('refuses tokens signed by another key of the same type', async () => {
    for (const [kind, alg] of CASES) {
      const other = generate(kind).privateKey;
      expect(await code(verifierFor(kind, 'pem').verify(await sign(other, alg))), `${kind} ${alg}`).to.equal('token_invalid');
    }
  });

  it('allows only the algorithm of the key type', async () => {
    expect(verifierFor('rsa', 'pem').algorithms).to.deep.equal(['RS256']);
    expect(verifierFor('ec', 'jwk').algorithms).to.deep.equal(['ES256']);
    // RS512 and PS256 with the right RSA key are still refused: the key source fixed RS256.
    const rsa = verifierFor('rsa', 'pem');
    expect(await code(rsa.verify(await sign(pairs.rsa.privateKey, 'RS512')))).to.equal('token_invalid');
    expect(await code(rsa.verify(await sign(pairs.rsa.privateKey, 'PS256')))).to.equal('token_invalid');
    // A token of another key type never verifies.
    expect(await code(rsa.verify(await sign(pairs.ec.privateKey, 'ES256')))).to.equal('token_invalid');
    // HS256 with the JWK text as the secret is refused too.
    const jwkText = JSON.stringify(pairs.ec.publicKey.export({ format: 'jwk' }));
    const forged = await sign(new TextEncoder().encode(jwkText), 'HS256');
    expect(await code(verifierFor('ec', 'jwk').verify(forged))).to.equal('token_invalid');
  });
});
