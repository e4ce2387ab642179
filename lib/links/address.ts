/** Peer addresses: the socket's remote address as the mesh names it. */

/** An IPv4-mapped IPv6 address (::ffff:10.0.0.1) as plain IPv4; any other address as it is. */
export function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** An address as it goes in a URL: IPv4-mapped IPv6 unwrapped, IPv6 in brackets. */
export function formatHost(address: string): string {
  const plain = unmapIPv4(address);
  return plain.includes(':') ? `[${plain}]` : plain;
}
