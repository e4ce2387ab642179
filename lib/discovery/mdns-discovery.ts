/**
 * Zero-configuration discovery over mDNS (bonjour-service): publishes this node as a
 * `_chatmesh._tcp` service whose TXT record carries the node id, and browses for the others.
 * The only file that imports bonjour-service.
 */
import { Bonjour, type Browser, type Service } from 'bonjour-service';
import type { Logger } from '../log.js';
import type { DiscoverySink, PeerSource } from './peer-source.js';
import { isLocalHost, localAddresses } from './local-addresses.js';

export interface MdnsDiscoveryOptions {
  nodeId: string;
  meshPort: number;
  type: string;
  queryIntervalMs: number;
}

export class MdnsDiscovery implements PeerSource {
  readonly name = 'mdns';
  private bonjour: Bonjour | null = null;
  private browser: Browser | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Address we dial for each service name, so a goodbye removes the right one. */
  private readonly addresses = new Map<string, string>();

  constructor(
    private readonly options: MdnsDiscoveryOptions,
    private readonly log: Logger,
  ) {}

  start(sink: DiscoverySink): void {
    // bonjour-service throws from its socket handlers unless given an error callback.
    this.bonjour = new Bonjour({}, (err: Error) => this.log.warn('mDNS error', { error: err.message }));
    this.bonjour
      .publish({ name: `chatmesh-${this.options.nodeId}`, type: this.options.type, port: this.options.meshPort, txt: { id: this.options.nodeId, v: '1' } })
      .on('error', (err: Error) => this.log.warn('mDNS publish failed', { error: err.message }));
    this.browser = this.bonjour.find({ type: this.options.type });
    this.browser.on('up', (service) => this.onUp(service, sink));
    this.browser.on('srv-update', (service) => this.onUp(service, sink));
    this.browser.on('down', (service) => {
      const address = this.addresses.get(service.name);
      if (!address) return;
      this.addresses.delete(service.name);
      this.log.info('mDNS: peer said goodbye', { address });
      sink.remove(address, this.name);
    });
    // Announcements can be lost (a busy or lossy network): ask again now and then.
    this.timer = setInterval(() => this.browser?.update(), this.options.queryIntervalMs);
    this.log.info('mDNS discovery on', { type: this.options.type, port: this.options.meshPort });
  }

  private onUp(service: Service, sink: DiscoverySink): void {
    const id = typeof service.txt?.id === 'string' ? service.txt.id : undefined;
    if (id === this.options.nodeId || !service.port) return;
    const host = this.pickHost(service);
    if (!host) return;
    const address = `ws://${host}:${service.port}`;
    const previous = this.addresses.get(service.name);
    if (previous === address) return;
    if (previous) sink.remove(previous, this.name);
    this.addresses.set(service.name, address);
    this.log.info('mDNS: found peer', { peer: id, address });
    sink.add(address, this.name);
  }

  /**
   * A service on this host is reached on loopback. Otherwise prefer the address the answer
   * came from (it is on a network we share), then an advertised IPv4, then IPv6.
   */
  private pickHost(service: Service): string | null {
    const local = localAddresses();
    const candidates = [...(service.addresses ?? []), ...(service.referer ? [service.referer.address] : [])];
    if (candidates.length === 0 || candidates.some((a) => isLocalHost(a, local))) return '127.0.0.1';
    const referer = service.referer?.address;
    if (referer) return referer.includes(':') ? `[${referer}]` : referer;
    const v4 = candidates.find((a) => !a.includes(':'));
    if (v4) return v4;
    return `[${candidates[0]}]`;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.browser?.stop();
    this.browser = null;
    const bonjour = this.bonjour;
    this.bonjour = null;
    if (!bonjour) return;
    // Send goodbyes so peers stop dialling us at once, but never hang a shutdown on it.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      bonjour.unpublishAll(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await new Promise<void>((resolve) => bonjour.destroy(() => resolve()));
  }
}
