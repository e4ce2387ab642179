/**
 * Peers on this very host are reached over loopback, never over the host's other addresses:
 * traffic between two processes on one machine has no business on the LAN.
 */
import { networkInterfaces } from 'node:os';
import { isLoopback } from '../links/auth.js';

/** Every address of this host's interfaces (loopback included). */
export function localAddresses(): Set<string> {
  const out = new Set<string>(['127.0.0.1', '::1']);
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) out.add(info.address);
  }
  return out;
}

/** True if the host (an IP or 'localhost') is this machine. */
export function isLocalHost(host: string, local: Set<string> = localAddresses()): boolean {
  const plain = host.replace(/^\[|\]$/g, '');
  return plain === 'localhost' || isLoopback(plain) || local.has(plain);
}

/** Rewrites ws://<one of our addresses>:port to ws://127.0.0.1:port; other addresses stay. */
export function preferLoopback(address: string, local: Set<string> = localAddresses()): string {
  const url = new URL(address);
  if (!isLocalHost(url.hostname, local)) return address;
  return `${url.protocol}//127.0.0.1:${portOf(url)}`;
}

/** The port of a ws:// or wss:// URL, the scheme's default included (URL gives '' for it). */
export function portOf(url: URL): number {
  return Number(url.port || (url.protocol === 'wss:' ? 443 : 80));
}
