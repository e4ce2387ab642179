/**
 * What every discovery mechanism provides: addresses of peers to link to, as they come and go.
 * The mesh dials them; a source never touches links itself.
 */
export interface DiscoverySink {
  /** A peer is (still) at this address, ws://host:port. */
  add(address: string, source: string): void;
  /** The peer at this address is gone (for example it said goodbye over mDNS). */
  remove(address: string, source: string): void;
}

export interface PeerSource {
  readonly name: string;
  start(sink: DiscoverySink): void;
  close(): Promise<void>;
}
