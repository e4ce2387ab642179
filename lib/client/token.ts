/** Tokens (AUTH=jwt): where they come from, and when a refresh is due. */

/** A token, or a function that gets a fresh one (called at each connect and refresh). */
export type TokenSource = string | (() => string | Promise<string>);

export async function tokenFrom(source: TokenSource): Promise<string> {
  return typeof source === 'string' ? source : await source();
}

/** The token's `exp` (seconds), read without verifying (the server verifies); null if none. */
export function tokenExpiry(token: string): number | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : null;
  } catch {
    return null;
  }
}

/**
 * How long to wait before refreshing a token that expires at `exp`: `marginSec` before it, or
 * at two thirds of what is left when that is later (a token that lives less than 3 margins).
 */
export function refreshDelayMs(exp: number, marginSec: number, now = Date.now()): number {
  const left = exp * 1000 - now;
  return Math.max(0, left - marginSec * 1000, (left * 2) / 3);
}

/** The URL with the token as `?token=` (browsers cannot set headers on a WebSocket). */
export function withToken(url: string, token: string | null): string {
  if (token === null) return url;
  const u = new URL(url);
  u.searchParams.set('token', token);
  return u.toString();
}
