import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../lib/config.js';
import { AUTH_DEFAULTS, authOptionsFromEnv } from '../../lib/auth/options.js';

const SECRET = 'x'.repeat(32);

/** Runs fn, expects a ConfigError naming `variable`, and returns its message. */
function expectConfigError(fn: () => unknown, variable: string): string {
  try {
    fn();
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).variable).to.equal(variable);
    expect((err as ConfigError).message.startsWith(`${variable}: `)).to.equal(true);
    return (err as ConfigError).message;
  }
  throw new Error(`expected a ConfigError naming ${variable}`);
}

describe('auth options (authOptionsFromEnv)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'chatmesh-auth-options-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('defaults to AUTH=none with the documented defaults', () => {
    const o = authOptionsFromEnv({});
    expect(o).to.deep.equal({ ...AUTH_DEFAULTS });
    expect(o.mode).to.equal('none');
    expect(o.clockToleranceSec).to.equal(30);
    expect(o.maxTokenLifetimeSec).to.equal(86_400);
    expect(o.jwksCooldownMs).to.equal(30_000);
    expect(Object.isFrozen(AUTH_DEFAULTS)).to.equal(true);
  });

  it('treats empty variables as unset', () => {
    expect(authOptionsFromEnv({ AUTH: '', JWT_SECRET: '', JWT_CLOCK_TOLERANCE_SEC: '' }).mode).to.equal('none');
  });

  it('reads AUTH=jwt with a secret as HS256 only', () => {
    const o = authOptionsFromEnv({ AUTH: 'JWT', JWT_SECRET: SECRET, JWT_ISSUER: ' https://idp ', JWT_AUDIENCE: 'chat' });
    expect(o.mode).to.equal('jwt');
    expect(o.keySource?.kind).to.equal('secret');
    expect(o.keySource?.algorithms).to.deep.equal(['HS256']);
    expect(o.issuer).to.equal('https://idp');
    expect(o.audience).to.equal('chat');
  });

  it('reads the numeric variables', () => {
    const o = authOptionsFromEnv({
      AUTH: 'jwt', JWT_SECRET: SECRET, JWT_CLOCK_TOLERANCE_SEC: '5', JWT_MAX_LIFETIME_SEC: '3600',
      JWKS_TIMEOUT_MS: '100', JWKS_COOLDOWN_MS: '0', JWKS_CACHE_MAX_AGE_MS: '60000',
    });
    expect([o.clockToleranceSec, o.maxTokenLifetimeSec, o.jwksTimeoutMs, o.jwksCooldownMs, o.jwksCacheMaxAgeMs])
      .to.deep.equal([5, 3600, 100, 0, 60000]);
  });

  it('refuses a bad AUTH', () => {
    expectConfigError(() => authOptionsFromEnv({ AUTH: 'basic' }), 'AUTH');
  });

  it('refuses AUTH=jwt without a key source, and a key source without AUTH=jwt', () => {
    expectConfigError(() => authOptionsFromEnv({ AUTH: 'jwt' }), 'AUTH');
    expect(expectConfigError(() => authOptionsFromEnv({ JWT_SECRET: SECRET }), 'AUTH')).to.include('JWT_SECRET');
  });

  it('refuses two key sources at once', () => {
    const msg = expectConfigError(() => authOptionsFromEnv({ AUTH: 'jwt', JWT_SECRET: SECRET, JWKS_URL: 'https://idp/jwks' }), 'JWKS_URL');
    expect(msg).to.include('JWT_SECRET');
  });

  it('refuses a secret shorter than 32 bytes without echoing it', () => {
    const msg = expectConfigError(() => authOptionsFromEnv({ AUTH: 'jwt', JWT_SECRET: 'short-secret-value' }), 'JWT_SECRET');
    expect(msg).to.not.include('short-secret-value');
    // Counted in bytes: 16 two-byte characters are enough.
    expect(authOptionsFromEnv({ AUTH: 'jwt', JWT_SECRET: 'é'.repeat(16) }).keySource?.kind).to.equal('secret');
  });

  it('refuses a JWKS_URL that is not http(s)', () => {
    expectConfigError(() => authOptionsFromEnv({ AUTH: 'jwt', JWKS_URL: 'ftp://idp/jwks' }), 'JWKS_URL');
    expectConfigError(() => authOptionsFromEnv({ AUTH: 'jwt', JWKS_URL: 'not a url' }), 'JWKS_URL');
    const o = authOptionsFromEnv({ AUTH: 'jwt', JWKS_URL: 'http://127.0.0.1:8080/jwks' });
    expect(o.keySource?.kind).to.equal('jwks');
    expect(o.keySource?.algorithms).to.not.include('HS256');
  });

  it('refuses bad numbers', () => {
    for (const [variable, value] of [
      ['JWT_CLOCK_TOLERANCE_SEC', '-1'], ['JWT_CLOCK_TOLERANCE_SEC', '1.5'], ['JWT_CLOCK_TOLERANCE_SEC', '301'],
      ['JWT_CLOCK_TOLERANCE_SEC', 'abc'], ['JWT_MAX_LIFETIME_SEC', '10'], ['JWKS_TIMEOUT_MS', '0'],
      ['JWKS_CACHE_MAX_AGE_MS', '5'],
    ] as const) {
      expectConfigError(() => authOptionsFromEnv({ AUTH: 'jwt', JWT_SECRET: SECRET, [variable]: value }), variable);
    }
  });

  describe('JWT_PUBLIC_KEY_FILE', () => {
    const keyFile = (path: string) => authOptionsFromEnv({ AUTH: 'jwt', JWT_PUBLIC_KEY_FILE: path }).keySource;

    it('reads PEM and JWK public keys and fixes the algorithms from the key type', () => {
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
      const ed = generateKeyPairSync('ed25519').publicKey;
      expect(keyFile(file('rsa.pem', rsa.export({ type: 'spki', format: 'pem' }) as string))?.algorithms).to.deep.equal(['RS256']);
      expect(keyFile(file('ec.pem', ec.export({ type: 'spki', format: 'pem' }) as string))?.algorithms).to.deep.equal(['ES256']);
      expect(keyFile(file('ed.jwk', JSON.stringify(ed.export({ format: 'jwk' }))))?.algorithms).to.deep.equal(['EdDSA', 'Ed25519']);
      const pinned = { ...rsa.export({ format: 'jwk' }), alg: 'RS256' };
      expect(keyFile(file('rsa.jwk', JSON.stringify(pinned)))?.algorithms).to.deep.equal(['RS256']);
    });

    it('refuses missing, unparsable, private, symmetric and unsupported keys', () => {
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-384' });
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const bad: [string, string][] = [
        ['garbage.pem', '-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n'],
        ['text.txt', 'hello'],
        ['bad.json', '{ "kty": '],
        ['private.pem', rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string],
        ['private.jwk', JSON.stringify(rsa.privateKey.export({ format: 'jwk' }))],
        ['oct.jwk', JSON.stringify({ kty: 'oct', k: 'AAAA' })],
        ['set.jwks', JSON.stringify({ keys: [] })],
        ['p384.pem', pair.publicKey.export({ type: 'spki', format: 'pem' }) as string],
        ['wrong-alg.jwk', JSON.stringify({ ...rsa.publicKey.export({ format: 'jwk' }), alg: 'ES256' })],
        ['enc.jwk', JSON.stringify({ ...rsa.publicKey.export({ format: 'jwk' }), use: 'enc' })],
      ];
      for (const [name, text] of bad) expectConfigError(() => keyFile(file(name, text)), 'JWT_PUBLIC_KEY_FILE');
      expectConfigError(() => keyFile(join(dir, 'does-not-exist.pem')), 'JWT_PUBLIC_KEY_FILE');
      expectConfigError(() => keyFile(dir), 'JWT_PUBLIC_KEY_FILE');
    });
  });
});
