/** Builds the peer sources that DISCOVERY and PEERS/PEERS_FILE ask for. */
import type { ChatmeshOptions } from '../config.js';
import type { Logger } from '../log.js';
import { DnsDiscovery } from './dns-discovery.js';
import { MdnsDiscovery } from './mdns-discovery.js';
import type { PeerSource } from './peer-source.js';
import { StaticDiscovery } from './static-discovery.js';

export type { DiscoverySink, PeerSource } from './peer-source.js';

export function createPeerSources(
  options: Pick<
    ChatmeshOptions,
    'discovery' | 'peers' | 'mdnsType' | 'mdnsQueryIntervalMs' | 'peersDns' | 'peersDnsPort' | 'peersDnsIntervalMs' | 'peersDnsServer'
  >,
  nodeId: string,
  meshPort: number,
  log: Logger,
): PeerSource[] {
  if (options.discovery === 'off') return [];
  const sources: PeerSource[] = [];
  // mdns and dns also honour a static list, so a fixed seed can be added to zero-config discovery.
  if (options.peers.length > 0) sources.push(new StaticDiscovery(options.peers, meshPort));
  if (options.discovery === 'mdns') {
    sources.push(new MdnsDiscovery({ nodeId, meshPort, type: options.mdnsType, queryIntervalMs: options.mdnsQueryIntervalMs }, log));
  }
  if (options.discovery === 'dns' && options.peersDns) {
    sources.push(
      new DnsDiscovery(
        { name: options.peersDns, port: options.peersDnsPort, meshPort, intervalMs: options.peersDnsIntervalMs, server: options.peersDnsServer },
        log,
      ),
    );
  }
  return sources;
}
