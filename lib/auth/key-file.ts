/**
 * Reads the public key behind JWT_PUBLIC_KEY_FILE (PEM SPKI or one JWK in JSON) and decides which
 * algorithms it may verify. Fixing the algorithms from the key, never from the token, is what
 * stops algorithm confusion (e.g. an HS256 token "signed" with the public key text).
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/** Algorithms chatmesh accepts; HS256 only ever with JWT_SECRET. */
export type TokenAlgorithm = 'HS256' | 'RS256' | 'ES256' | 'EdDSA' | 'Ed25519';

export interface PublicKeyFile {
  key: KeyObject;
  /** What tokens verified with this key may use in their `alg` header. */
  algorithms: TokenAlgorithm[];
  format: 'pem' | 'jwk';
}

/** Far larger than any public key; stops a mistaken path (a log, a disk image) being read whole. */
const MAX_KEY_FILE_BYTES = 64 * 1024;
const MIN_RSA_BITS = 2048;

/** Throws an Error whose message says what is wrong (the caller names the variable). */
export function readPublicKeyFile(path: string): PublicKeyFile {
  let text: string;
  try {
    if (statSync(path).size > MAX_KEY_FILE_BYTES) throw new Error(`larger than ${MAX_KEY_FILE_BYTES} bytes`);
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read ${JSON.stringify(path)}: ${(err as Error).message}`);
  }
  if (text.startsWith('{')) return fromJwk(text);
  if (text.startsWith('-----BEGIN')) return fromPem(text);
  throw new Error(`${JSON.stringify(path)} is neither a PEM public key nor a JWK (JSON object)`);
}

function fromPem(text: string): PublicKeyFile {
  // createPublicKey would happily derive a public key from a private one; a private key on a
  // verifier is a deployment mistake worth stopping.
  if (/PRIVATE KEY/.test(text)) throw new Error('holds a private key; give the public key (SPKI, "BEGIN PUBLIC KEY")');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (err) {
    throw new Error(`not a valid PEM public key (${(err as Error).message})`);
  }
  return { key, algorithms: algorithmsFor(key), format: 'pem' };
}

function fromJwk(text: string): PublicKeyFile {
  let jwk: JsonWebKey;
  try {
    jwk = JSON.parse(text) as JsonWebKey;
  } catch (err) {
    throw new Error(`not valid JSON (${(err as Error).message})`);
  }
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new Error('must be one JWK (a JSON object)');
  if ('keys' in jwk) throw new Error('is a JWK set; give a single JWK, or serve the set and use JWKS_URL');
  if (jwk.kty === 'oct') throw new Error('is a symmetric (oct) key; use JWT_SECRET for HS256');
  if ('d' in jwk) throw new Error('holds a private key (has "d"); give the public JWK');
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new Error(`has "use": ${JSON.stringify(jwk.use)}; must be "sig"`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    throw new Error(`not a valid public JWK (${(err as Error).message})`);
  }
  let algorithms = algorithmsFor(key);
  // A JWK may pin its algorithm; honour it only when it fits the key type.
  if (jwk.alg !== undefined) {
    if (!algorithms.includes(jwk.alg as TokenAlgorithm)) {
      throw new Error(`"alg": ${JSON.stringify(jwk.alg)} does not fit this key; expected one of ${algorithms.join(', ')}`);
    }
    algorithms = [jwk.alg as TokenAlgorithm];
  }
  return { key, algorithms, format: 'jwk' };
}

/** The algorithm(s) a public key may verify: one per key type, nothing symmetric. */
export function algorithmsFor(key: KeyObject): TokenAlgorithm[] {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa') {
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS) throw new Error(`RSA key shorter than ${MIN_RSA_BITS} bits`);
    return ['RS256'];
  }
  if (type === 'ec') {
    if (details.namedCurve !== 'prime256v1') throw new Error(`EC curve ${details.namedCurve ?? '?'} not supported; use P-256 (ES256)`);
    return ['ES256'];
  }
  // 'EdDSA' and the fully specified 'Ed25519' (RFC 9864) name the same algorithm.
  if (type === 'ed25519') return ['EdDSA', 'Ed25519'];
  throw new Error(`key type ${type ?? '?'} not supported; use RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA)`);
}
