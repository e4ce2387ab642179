/**
 * Authentication options, their defaults, and the environment variables that set them.
 * Checked once at start-up so a bad value stops the server with the variable's name instead of
 * failing on the first client.
 */
import type { KeyObject } from 'node:crypto';
import { ConfigError } from '../config.js';
import { readPublicKeyFile, type TokenAlgorithm } from './key-file.js';

export type AuthMode = 'none' | 'jwt';

/** Where verification keys come from; exactly one with AUTH=jwt. Each fixes the allowed algorithms. */
export type KeySource =
  | { kind: 'secret'; secret: Uint8Array; algorithms: TokenAlgorithm[] }
  | { kind: 'publicKey'; file: string; key: KeyObject; algorithms: TokenAlgorithm[] }
  | { kind: 'jwks'; url: URL; algorithms: TokenAlgorithm[] };

export interface AuthOptions {
  /** 'none': anyone may connect (as today); 'jwt': a valid token is required. `AUTH`. @default 'none' */
  mode: AuthMode;
  /** The key source, from `JWT_SECRET`, `JWT_PUBLIC_KEY_FILE` or `JWKS_URL`; undefined with AUTH=none. */
  keySource: KeySource | undefined;
  /** Required `iss` when set. `JWT_ISSUER`. */
  issuer: string | undefined;
  /** Required `aud` (one of the token's audiences) when set. `JWT_AUDIENCE`. */
  audience: string | undefined;
  /** Clock skew allowed on exp, nbf and iat, in seconds (0–300). `JWT_CLOCK_TOLERANCE_SEC`. @default 30 */
  clockToleranceSec: number;
  /**
   * Longest token lifetime accepted (exp − iat, or exp − now without iat), in seconds. Bounds how
   * long a revocation by subject must be kept. `JWT_MAX_LIFETIME_SEC`. @default 86400
   */
  maxTokenLifetimeSec: number;
  /** JWKS request timeout. `JWKS_TIMEOUT_MS`. @default 5000 */
  jwksTimeoutMs: number;
  /**
   * After a successful JWKS fetch, an unknown `kid` triggers no new fetch for this long, so a flood
   * of made-up kids cannot hammer the JWKS server. `JWKS_COOLDOWN_MS`. @default 30000
   */
  jwksCooldownMs: number;
  /** Cached keys are fetched again after this long. `JWKS_CACHE_MAX_AGE_MS`. @default 600000 */
  jwksCacheMaxAgeMs: number;
}

export const AUTH_DEFAULTS: Readonly<AuthOptions> = Object.freeze({
  mode: 'none',
  keySource: undefined,
  issuer: undefined,
  audience: undefined,
  clockToleranceSec: 30,
  maxTokenLifetimeSec: 86_400,
  jwksTimeoutMs: 5_000,
  jwksCooldownMs: 30_000,
  jwksCacheMaxAgeMs: 600_000,
});

/** HS256 needs a key at least as long as its output (RFC 7518 §3.2). */
export const MIN_SECRET_BYTES = 32;
/** Algorithms a JWKS may serve keys for: asymmetric only, so an `oct` key there can never be used. */
export const JWKS_ALGORITHMS: TokenAlgorithm[] = ['RS256', 'ES256', 'EdDSA', 'Ed25519'];

/** Whole-number variables: [variable, option, min, max]. */
const NUMBERS: [string, keyof AuthOptions, number, number][] = [
  ['JWT_CLOCK_TOLERANCE_SEC', 'clockToleranceSec', 0, 300],
  ['JWT_MAX_LIFETIME_SEC', 'maxTokenLifetimeSec', 60, 365 * 86_400],
  ['JWKS_TIMEOUT_MS', 'jwksTimeoutMs', 1, 60_000],
  ['JWKS_COOLDOWN_MS', 'jwksCooldownMs', 0, 86_400_000],
  ['JWKS_CACHE_MAX_AGE_MS', 'jwksCacheMaxAgeMs', 1_000, 7 * 86_400_000],
];

/** Reads the AUTH/JWT/JWKS variables; throws ConfigError naming the variable on a bad value. Reads the key file, nothing else. */
export function authOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): AuthOptions {
  // Empty counts as unset, as in the main config.
  const get = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const options: AuthOptions = { ...AUTH_DEFAULTS };

  const mode = get('AUTH')?.trim().toLowerCase() ?? 'none';
  if (mode !== 'none' && mode !== 'jwt') throw new ConfigError('AUTH', `must be none or jwt, not ${JSON.stringify(get('AUTH'))}`);
  options.mode = mode;

  for (const [variable, key, min, max] of NUMBERS) {
    const raw = get(variable)?.trim();
    if (raw === undefined) continue;
    if (!/^\d+$/.test(raw)) throw new ConfigError(variable, `must be a whole number, not ${JSON.stringify(raw)}`);
    const n = Number(raw);
    if (n < min || n > max) throw new ConfigError(variable, `must be between ${min} and ${max}, not ${n}`);
    (options as unknown as Record<string, number>)[key] = n;
  }

  options.issuer = get('JWT_ISSUER')?.trim() || undefined;
  options.audience = get('JWT_AUDIENCE')?.trim() || undefined;

  const sources = ['JWT_SECRET', 'JWT_PUBLIC_KEY_FILE', 'JWKS_URL'].filter((v) => get(v) !== undefined);
  if (mode === 'none') {
    // A key without AUTH=jwt most likely means someone believes auth is on: refuse rather than run open.
    if (sources.length > 0) throw new ConfigError('AUTH', `${sources.join(' and ')} set but AUTH is none; set AUTH=jwt or unset it`);
    return options;
  }
  if (sources.length === 0) throw new ConfigError('AUTH', 'AUTH=jwt needs one of JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWKS_URL');
  if (sources.length > 1) throw new ConfigError(sources[1]!, `only one key source may be set, but ${sources.join(' and ')} are`);
  options.keySource = keySourceFrom(sources[0]!, get(sources[0]!)!);
  return options;
}

function keySourceFrom(variable: string, raw: string): KeySource {
  if (variable === 'JWT_SECRET') {
    // Used byte for byte (not trimmed): the issuer signs with exactly these bytes.
    const secret = new TextEncoder().encode(raw);
    if (secret.length < MIN_SECRET_BYTES) throw new ConfigError(variable, `must be at least ${MIN_SECRET_BYTES} bytes, is ${secret.length}`);
    return { kind: 'secret', secret, algorithms: ['HS256'] };
  }
  if (variable === 'JWT_PUBLIC_KEY_FILE') {
    const file = raw.trim();
    try {
      const { key, algorithms } = readPublicKeyFile(file);
      return { kind: 'publicKey', file, key, algorithms };
    } catch (err) {
      throw new ConfigError(variable, (err as Error).message);
    }
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError(variable, `not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(variable, `must be http(s), not ${url.protocol}`);
  return { kind: 'jwks', url, algorithms: [...JWKS_ALGORITHMS] };
}
