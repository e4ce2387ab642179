/** A JSON call to an instance's REST API, for tests: status and parsed body ({} when empty). */
import type { Instance } from './instance.js';

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string } };
}

export async function api(instance: Instance, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
  const res = await fetch(`${instance.httpUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

/** The text of an instance's GET /metrics. */
export async function metricsText(instance: Instance): Promise<string> {
  return (await fetch(`${instance.httpUrl}/metrics`)).text();
}

/** One unlabelled metric of GET /metrics (0 when absent). */
export async function metric(instance: Instance, name: string): Promise<number> {
  const line = (await metricsText(instance)).split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}
