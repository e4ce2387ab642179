/**
 * Who a verified token says the client is. Claims are checked here, after the signature, so the
 * rest of the server can trust the shape of an Identity without looking at the token again.
 */
import { AuthError, AuthErrorCode } from './errors.js';

export const ROLES = ['customer', 'agent', 'service'] as const;
export type Role = (typeof ROLES)[number];

export interface Identity {
  /** The user or service id (`sub`), 1–128 characters. */
  sub: string;
  role: Role;
  /** Room patterns the token allows (`rooms` claim; `*` only as a trailing wildcard); null: the role decides. */
  rooms: string[] | null;
  jti: string | null;
  /** Issued at, seconds since the epoch; null when the token has no `iat`. */
  iat: number | null;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export const MAX_SUB_LENGTH = 128;
export const MAX_ROOM_PATTERN_LENGTH = 128;
export const MAX_ROOM_PATTERNS = 1000;
export const MAX_JTI_LENGTH = 256;

export interface ClaimLimits {
  clockToleranceSec: number;
  maxTokenLifetimeSec: number;
}

/**
 * Builds an Identity from an already verified payload (signature, exp, nbf, iss, aud checked by
 * jose). Throws AuthError 'token_claims' naming the claim.
 */
export function identityFromClaims(payload: Record<string, unknown>, nowSec: number, limits: ClaimLimits): Identity {
  const { sub, role, rooms, jti, iat, exp } = payload;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUB_LENGTH) {
    throw claims('sub', `sub must be a string of 1 to ${MAX_SUB_LENGTH} characters`);
  }
  if (role === undefined) throw claims('role', `role missing; must be one of ${ROLES.join(', ')}`);
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    throw claims('role', `role must be one of ${ROLES.join(', ')}`);
  }
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw claims('exp', 'exp must be a number');
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) throw claims('iat', 'iat must be a number');
  // An iat in the future would let a token escape a revocation by subject ("issued before").
  if (typeof iat === 'number' && iat > nowSec + limits.clockToleranceSec) throw claims('iat', 'iat is in the future');
  const start = typeof iat === 'number' ? iat : nowSec;
  if (exp - start > limits.maxTokenLifetimeSec) {
    throw claims('exp', `exp too far after iat: lifetime over ${limits.maxTokenLifetimeSec} s`);
  }
  if (jti !== undefined && (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH)) {
    throw claims('jti', `jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`);
  }
  return {
    sub,
    role: role as Role,
    rooms: rooms === undefined ? null : roomPatterns(rooms),
    jti: typeof jti === 'string' ? jti : null,
    iat: typeof iat === 'number' ? iat : null,
    exp,
  };
}

function roomPatterns(rooms: unknown): string[] {
  if (!Array.isArray(rooms)) throw claims('rooms', 'rooms must be an array of strings');
  if (rooms.length > MAX_ROOM_PATTERNS) throw claims('rooms', `rooms has more than ${MAX_ROOM_PATTERNS} entries`);
  for (const r of rooms) {
    if (typeof r !== 'string' || r.length === 0 || r.length > MAX_ROOM_PATTERN_LENGTH) {
      throw claims('rooms', `each entry of rooms must be a string of 1 to ${MAX_ROOM_PATTERN_LENGTH} characters`);
    }
  }
  return [...(rooms as string[])];
}

function claims(claim: string, message: string): AuthError {
  return new AuthError(AuthErrorCode.TokenClaims, message, claim);
}
