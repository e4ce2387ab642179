/** REST calls for the desk tests (test/integration/desk*.test.ts): status and parsed body, with a token or headers. */
import { expect } from 'chai';
import { AUDIENCE, ISSUER, TEST_SECRET } from './auth.js';
import type { Instance } from './instance.js';

/** An instance with AUTH=jwt and the test's HS256 secret. */
export const JWT_ENV = { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_CLOCK_TOLERANCE_SEC: '0' };

export interface Answer {
  status: number;
  body: any;
}

/** A REST call; `token` adds a Bearer header, `headers` any other. A string body is sent as is (JSON content type). */
export async function call(instance: Instance, method: string, path: string, body?: unknown, token?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const h: Record<string, string> = { ...headers };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] ??= 'application/json';
  const res = await fetch(`${instance.httpUrl}${path}`, { method, headers: h, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** The body of an answer that must have this status. */
export async function ok(answer: Promise<Answer>, status = 200): Promise<any> {
  const a = await answer;
  expect(a.status, JSON.stringify(a.body)).to.equal(status);
  return a.body;
}

/** A conversation's inbox item on an instance (undefined if not there). */
export async function item(instance: Instance, id: string, token?: string): Promise<any> {
  return ((await ok(call(instance, 'GET', '/api/conversations?limit=200', undefined, token))).items as any[]).find((i) => i.id === id);
}
