/**
 * Peer authentication by HMAC challenge-response: each side proves it knows the secret by
 * signing the other side's fresh nonce. The secret itself never crosses the wire, and a
 * recorded handshake cannot be replayed because every nonce is new.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { unmapIPv4 } from './address.js';

export function newNonce(): string {
  return randomBytes(18).toString('base64url');
}

export type Role = 'dialer' | 'acceptor';

/** The proof `role` sends: HMAC(secret, role | the other side's nonce | own id | other id). */
export function proofFor(secret: string | undefined, role: Role, peerNonce: string, ownId: string, peerId: string): string {
  if (secret === undefined) return '';
  return createHmac('sha256', secret).update(`chatmesh/1|${role}|${peerNonce}|${ownId}|${peerId}`).digest('base64url');
}

export function proofMatches(expected: string, received: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(received);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const plain = unmapIPv4(address);
  return plain === '::1' || /^127\.\d+\.\d+\.\d+$/.test(plain);
}
