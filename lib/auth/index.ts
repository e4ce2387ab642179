/** Client authentication (issue 10): tokens, identities, room permissions, revocations. */
export { AuthError, AuthErrorCode } from './errors.js';
export { AUTH_DEFAULTS, JWKS_ALGORITHMS, MIN_SECRET_BYTES, authOptionsFromEnv, type AuthMode, type AuthOptions, type KeySource } from './options.js';
export { algorithmsFor, readPublicKeyFile, type PublicKeyFile, type TokenAlgorithm } from './key-file.js';
export { ROLES, identityFromClaims, type Identity, type Role } from './identity.js';
export { MAX_TOKEN_LENGTH, TokenVerifier, type RevocationCheck, type TokenVerifierExtras } from './verifier.js';
export { mayJoin, roomMatches } from './rooms.js';
export { bearerFromHeader, tokenFromRequest, tokenFromUpgrade, type RequestLike } from './extract.js';
export {
  MAX_REVOCATION_TIME,
  RevocationTable,
  parseRevocationEntry,
  revokeSubject,
  revokeToken,
  type EntryLimits,
  type ParsedEntry,
  type RevocationEntry,
} from './revocation.js';
