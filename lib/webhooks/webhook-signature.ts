/**
 * The signature of a webhook request, as Stripe and GitHub sign theirs: an HMAC-SHA256, keyed
 * with WEBHOOK_SECRET, of the timestamp, a dot, and the exact body bytes. The timestamp is
 * signed too, so a receiver can refuse old requests (a replay) by checking it is recent.
 *   X-Chatmesh-Timestamp: 1795456105                  (seconds since the epoch)
 *   X-Chatmesh-Signature: sha256=<hex>
 */
import { createHmac } from 'node:crypto';

export const TIMESTAMP_HEADER = 'x-chatmesh-timestamp';
export const SIGNATURE_HEADER = 'x-chatmesh-signature';

/** The hex HMAC-SHA256 of `${timestamp}.${body}`. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The headers that sign a request sent at `nowMs` (only the timestamp without a secret). */
export function signatureHeaders(secret: string | undefined, body: string, nowMs: number): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  if (secret === undefined) return { [TIMESTAMP_HEADER]: timestamp };
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: `sha256=${webhookSignature(secret, timestamp, body)}` };
}
