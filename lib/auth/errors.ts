/**
 * Authentication errors. Callers branch on `code` (stable, sent to clients); the message is for
 * humans and never contains the token, so it is safe to log and to send back.
 */

export const AuthErrorCode = {
  /** No token in the request. */
  TokenMissing: 'token_missing',
  /** Malformed, badly signed, wrong algorithm, unknown key, or a non-Bearer Authorization scheme. */
  TokenInvalid: 'token_invalid',
  /** Past `exp` (beyond the clock tolerance). */
  TokenExpired: 'token_expired',
  /** Signature fine, but a claim is missing or wrong (iss, aud, nbf, iat, sub, role, rooms, jti, lifetime). */
  TokenClaims: 'token_claims',
  /** Valid token that matches an entry of the revocation table. */
  TokenRevoked: 'token_revoked',
  /** The keys could not be fetched (JWKS server down, slow or serving garbage): not the client's fault. */
  AuthUnavailable: 'auth_unavailable',
} as const;
export type AuthErrorCode = (typeof AuthErrorCode)[keyof typeof AuthErrorCode];

export class AuthError extends Error {
  /**
   * @param code stable code for clients and tests
   * @param message human text; must never include the token
   * @param claim the offending claim for `token_claims` (e.g. 'role'), so callers need not parse text
   */
  constructor(readonly code: AuthErrorCode, message: string, readonly claim?: string) {
    super(message);
    this.name = 'AuthError';
  }
}
