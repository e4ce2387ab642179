/**
 * Verifies a JWT and turns it into an Identity. One instance per server: it holds the key (or the
 * JWKS cache) so remote keys are fetched once and refreshed only when needed.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey, type KeyInput, type RemoteJWKSet } from 'jose';
import { AuthError, AuthErrorCode } from './errors.js';
import { identityFromClaims, type Identity } from './identity.js';
import type { AuthOptions, KeySource } from './options.js';
import type { TokenAlgorithm } from './key-file.js';

/** Anything that can say a token was revoked, e.g. a RevocationTable. */
export interface RevocationCheck {
  isRevoked(identity: Identity): boolean;
}

export interface TokenVerifierExtras {
  /** Checked after the claims; a match is 'token_revoked'. */
  revocations?: RevocationCheck;
  /** Clock in ms, for tests. @default Date.now */
  now?: () => number;
}

/** As large as the default HTTP header limit (16 KiB); refusing larger ones early keeps parsing cheap. */
export const MAX_TOKEN_LENGTH = 16_384;
/** After a failed JWKS fetch, fail fast for this long instead of asking a struggling server again per request. */
const MAX_JWKS_FAILURE_BACKOFF_MS = 5000;

export class TokenVerifier {
  /** The `alg` values accepted; fixed by the key source, never taken from the token. */
  readonly algorithms: readonly TokenAlgorithm[];
  private readonly key: KeyInput | JWTVerifyGetKey;
  private readonly remote: RemoteJWKSet | undefined;
  private readonly now: () => number;
  private jwksFailedAt = -Infinity;

  /** @param options AUTH=jwt options (from authOptionsFromEnv); throws without a key source. */
  constructor(private readonly options: AuthOptions, private readonly extras: TokenVerifierExtras = {}) {
    const source: KeySource | undefined = options.keySource;
    if (source === undefined) throw new Error('TokenVerifier needs a key source (AUTH=jwt)');
    this.algorithms = Object.freeze([...source.algorithms]);
    this.now = extras.now ?? Date.now;
    if (source.kind === 'secret') this.key = source.secret;
    else if (source.kind === 'publicKey') this.key = source.key;
    else {
      const remote = createRemoteJWKSet(source.url, {
        timeoutDuration: options.jwksTimeoutMs,
        cooldownDuration: options.jwksCooldownMs,
        cacheMaxAge: options.jwksCacheMaxAgeMs,
      });
      this.remote = remote;
      this.key = (header, token) => this.remoteKey(remote, header, token);
    }
  }

  /** Verifies signature and claims; resolves to the Identity or rejects with an AuthError. */
  async verify(token: string | null | undefined): Promise<Identity> {
    if (token === undefined || token === null || token === '') throw new AuthError(AuthErrorCode.TokenMissing, 'no token given');
    if (token.length > MAX_TOKEN_LENGTH) throw new AuthError(AuthErrorCode.TokenInvalid, `token longer than ${MAX_TOKEN_LENGTH} characters`);
    const nowMs = this.now();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: [...this.algorithms],
        requiredClaims: ['exp'],
        clockTolerance: this.options.clockToleranceSec,
        currentDate: new Date(nowMs),
        ...(this.options.issuer !== undefined && { issuer: this.options.issuer }),
        ...(this.options.audience !== undefined && { audience: this.options.audience }),
      }));
    } catch (err) {
      throw this.toAuthError(err);
    }
    const identity = identityFromClaims(payload, Math.floor(nowMs / 1000), this.options);
    if (this.extras.revocations?.isRevoked(identity)) throw new AuthError(AuthErrorCode.TokenRevoked, 'token revoked');
    return identity;
  }

  /** With JWKS_URL: fetches the keys now (e.g. at start-up) so the first client does not wait. */
  async prefetch(): Promise<void> {
    if (this.remote === undefined) return;
    try {
      await this.remote.reload();
    } catch (err) {
      this.jwksFailedAt = this.now();
      throw this.toAuthError(err);
    }
  }

  private async remoteKey(remote: RemoteJWKSet, ...args: Parameters<RemoteJWKSet>): ReturnType<RemoteJWKSet> {
    if (!remote.fresh && this.now() - this.jwksFailedAt < Math.min(this.options.jwksCooldownMs, MAX_JWKS_FAILURE_BACKOFF_MS)) {
      throw new AuthError(AuthErrorCode.AuthUnavailable, 'signing keys unavailable (JWKS fetch failed recently)');
    }
    try {
      return await remote(...args);
    } catch (err) {
      if (isJwksFetchFailure(err)) this.jwksFailedAt = this.now();
      throw err;
    }
  }

  private toAuthError(err: unknown): AuthError {
    if (err instanceof AuthError) return err;
    if (err instanceof errors.JWTExpired) return new AuthError(AuthErrorCode.TokenExpired, 'token expired');
    if (err instanceof errors.JWTClaimValidationFailed) {
      // jose's messages name the claim, never the token.
      return new AuthError(AuthErrorCode.TokenClaims, err.message, err.claim);
    }
    if (this.remote !== undefined && isJwksFetchFailure(err)) {
      return new AuthError(AuthErrorCode.AuthUnavailable, 'signing keys unavailable (JWKS fetch failed)');
    }
    return new AuthError(AuthErrorCode.TokenInvalid, invalidReason(err));
  }
}

/** Timeouts, non-200s, bad JSON and network errors; not the token's fault. */
function isJwksFetchFailure(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return true;
  // jose reports a non-200 response as a plain JOSEError; fetch failures are not JOSE errors at all.
  return !(err instanceof errors.JOSEError) || err.constructor === errors.JOSEError;
}

function invalidReason(err: unknown): string {
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return 'token algorithm not allowed';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature does not verify';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no signing key matches the token';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'several signing keys match the token; it needs a kid';
  return 'malformed token';
}
