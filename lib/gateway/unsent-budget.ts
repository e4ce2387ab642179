/**
 * One budget of unsent bytes for all clients together (MAX_UNSENT_BYTES). Each client has
 * its own limits (soft, deadline, hard), but a few thousand clients each just under them
 * could still hold more memory than the process has: over the budget, the clients holding
 * the most are cut as slow consumers (1013) until the rest fit.
 */
import type { ClientConnection } from './client-connection.js';

/** How often the budget is checked. */
export const UNSENT_BUDGET_CHECK_MS = 1000;

/** Cuts the biggest holders until the total fits in `maxBytes`; returns how many were cut. */
export function enforceUnsentBudget(connections: Iterable<ClientConnection>, maxBytes: number): number {
  let total = 0;
  const holders: Array<{ conn: ClientConnection; bytes: number }> = [];
  for (const conn of connections) {
    const bytes = conn.unsentBytes;
    if (bytes === 0) continue;
    total += bytes;
    holders.push({ conn, bytes });
  }
  if (total <= maxBytes) return 0;
  holders.sort((a, b) => b.bytes - a.bytes);
  let cut = 0;
  for (const { conn, bytes } of holders) {
    if (total <= maxBytes) break;
    conn.cutAsSlowConsumer('slow consumer: server-wide send budget full');
    total -= bytes;
    cut++;
  }
  return cut;
}
