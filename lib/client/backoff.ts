/**
 * Reconnect delays: exponential backoff with full jitter (a uniformly random delay between 0
 * and min(maxMs, initialMs · 2^attempt)), so clients of a restarted instance do not all come
 * back at once.
 */
export interface BackoffOptions {
  /** The ceiling of the first delay. @default 500 */
  initialMs?: number;
  /** The largest ceiling. @default 8000 */
  maxMs?: number;
}

export const BACKOFF_DEFAULTS: Required<BackoffOptions> = { initialMs: 500, maxMs: 8000 };

export function backoffDelay(attempt: number, options: Required<BackoffOptions>, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
