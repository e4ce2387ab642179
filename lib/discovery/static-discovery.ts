/**
 * Peers from a fixed list (PEERS or PEERS_FILE). The node's own address, if the list holds
 * it (the same list is often deployed to every node), is skipped.
 */
import type { DiscoverySink, PeerSource } from './peer-source.js';
import { isLocalHost, portOf, preferLoopback } from './local-addresses.js';

export class StaticDiscovery implements PeerSource {
  readonly name = 'static';

  constructor(
    private readonly peers: readonly string[],
    private readonly ownMeshPort: number,
  ) {}

  start(sink: DiscoverySink): void {
    for (const peer of this.peers) {
      const url = new URL(peer);
      if (isLocalHost(url.hostname) && portOf(url) === this.ownMeshPort) continue;
      sink.add(preferLoopback(peer), this.name);
    }
  }

  async close(): Promise<void> {}
}
