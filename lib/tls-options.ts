/**
 * TLS from the environment: MESH_TLS_CERT, MESH_TLS_KEY and MESH_TLS_CA (peer links over
 * wss:// with mutual TLS: both ends show a certificate from that CA) and TLS_CERT, TLS_KEY
 * (clients over https:// and wss://). Files are read and parsed once at start-up; a bad one
 * stops it naming the variable.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from './config.js';

export interface MeshTls {
  cert: Buffer;
  key: Buffer;
  /** The only CA whose certificates are peers. */
  ca: Buffer;
}

export interface TlsOptions {
  /** Peer links over mutual TLS; undefined: plain ws:// (the HMAC handshake alone). */
  mesh: MeshTls | undefined;
  /** Clients over TLS (https:// and wss://); undefined: plain http. */
  clients: { cert: Buffer; key: Buffer } | undefined;
}

export function tlsOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): TlsOptions {
  const set = (name: string) => env[name] !== undefined && env[name] !== '';
  const meshVars = ['MESH_TLS_CERT', 'MESH_TLS_KEY', 'MESH_TLS_CA'];
  const given = meshVars.filter(set);
  let mesh: MeshTls | undefined;
  if (given.length > 0) {
    const missing = meshVars.find((v) => !set(v));
    if (missing) throw new ConfigError(missing, `needed with ${given.join(' and ')}: mutual TLS takes a certificate, its key and the CA`);
    const port = (env.PORT ?? '').trim() || '3000';
    if (!set('MESH_PORT') || env.MESH_PORT!.trim() === port) {
      throw new ConfigError('MESH_PORT', 'must be set, to another port than PORT, with MESH_TLS_CERT: peers get a TLS listener of their own');
    }
    mesh = { cert: certificate(env, 'MESH_TLS_CERT'), key: privateKey(env, 'MESH_TLS_KEY'), ca: certificate(env, 'MESH_TLS_CA') };
  }
  let clients: TlsOptions['clients'];
  if (set('TLS_CERT') || set('TLS_KEY')) {
    if (!set('TLS_CERT')) throw new ConfigError('TLS_CERT', 'needed with TLS_KEY');
    if (!set('TLS_KEY')) throw new ConfigError('TLS_KEY', 'needed with TLS_CERT');
    clients = { cert: certificate(env, 'TLS_CERT'), key: privateKey(env, 'TLS_KEY') };
  }
  return { mesh, clients };
}

function read(env: NodeJS.ProcessEnv, variable: string): Buffer {
  const path = env[variable]!.trim();
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(variable, `cannot read ${JSON.stringify(path)}: ${(err as Error).message}`);
  }
}

function certificate(env: NodeJS.ProcessEnv, variable: string): Buffer {
  const pem = read(env, variable);
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw new ConfigError(variable, `not a PEM certificate (${(err as Error).message})`);
  }
  return pem;
}

function privateKey(env: NodeJS.ProcessEnv, variable: string): Buffer {
  const pem = read(env, variable);
  try {
    createPrivateKey(pem);
  } catch (err) {
    throw new ConfigError(variable, `not a PEM private key (${(err as Error).message})`);
  }
  return pem;
}
