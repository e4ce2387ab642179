/**
 * Tokens and authenticated connections for the AUTH=jwt tests: tokens are minted in the test
 * (jose), keys are made on the spot; nothing here is meant for use outside the tests.
 */
import http from 'node:http';
import type { KeyObject } from 'node:crypto';
import { SignJWT, type CryptoKey } from 'jose';
import { WebSocket } from 'ws';
import { TestClient } from './client.js';
import { withTimeout } from './wait.js';

export const TEST_SECRET = 'test-secret-for-hs256-tokens-only-0123456789';
export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'chatmesh-test';

export interface Claims {
  sub?: string;
  role?: string;
  rooms?: string[];
  jti?: string;
  iss?: string;
  aud?: string;
  /** Seconds from now. @default 300 */
  ttl?: number;
  iat?: number;
}

/** A signed token; HS256 with TEST_SECRET unless a key and alg are given. */
export async function mint(claims: Claims, key: Uint8Array | KeyObject | CryptoKey = new TextEncoder().encode(TEST_SECRET), alg = 'HS256', kid?: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const { ttl = 300, iss = ISSUER, aud = AUDIENCE, iat = now, ...rest } = claims;
  const payload: Record<string, unknown> = { ...rest, iss, aud, iat, exp: now + ttl };
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT', ...(kid && { kid }) }).sign(key);
}

/** An unsigned token (alg none), as an attacker would make it. */
export function unsigned(claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}

/** Tries a WebSocket upgrade; resolves with the HTTP status (101 when it succeeded) and headers. */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  const u = new URL(url.replace(/^ws/, 'http'));
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request({
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
      });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
      });
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
      });
      req.on('error', reject);
      req.end();
    }),
    5000,
    `an upgrade answer from ${url}`,
  );
}

/** A TestClient that sends its token in the Authorization header (servers and tools do). */
export async function connectWithHeader(url: string, token: string): Promise<TestClient> {
  const ws = new WebSocket(url, { perMessageDeflate: false, headers: { authorization: `Bearer ${token}` } });
  return TestClient.wrap(ws);
}

/** A TestClient that sends its token as ?token= (browsers do). */
export function connectWithQuery(url: string, token: string): Promise<TestClient> {
  return TestClient.connect(`${url}/?token=${encodeURIComponent(token)}`);
}

/** A REST call with a Bearer token: status, headers and parsed body. */
export async function authApi(base: string, token: string | undefined, method: string, path: string, body?: unknown): Promise<{ status: number; headers: Headers; body: Record<string, any> }> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
}
