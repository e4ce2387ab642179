/**
 * Discovery by DNS, as a Kubernetes headless Service provides it: every PEERS_DNS_INTERVAL_MS
 * the name PEERS_DNS is resolved, and each address in the answer is a peer.
 *
 * - A plain name (`chatmesh-peers.ns.svc.cluster.local`) is resolved to its A and AAAA records;
 *   each IP becomes `ws://<ip>:<port>`, the port being PEERS_DNS_PORT, or else this node's
 *   mesh port (in a headless Service every pod listens on the same port).
 * - A name starting with `_` (`_mesh._tcp.chatmesh-peers.ns.svc.cluster.local`) is resolved
 *   to its SRV records, and each SRV target to its A/AAAA records: the port is the SRV one.
 *
 * Addresses that leave the answer are withdrawn (sink.remove: the mesh stops redialling them;
 * a live link is not cut). This node's own address (one of its interfaces, on its mesh port)
 * is skipped. PEERS_DNS_SERVER makes the lookups go to that server instead of the system's
 * (resolv.conf) ones.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '../log.js';
import type { DiscoverySink, PeerSource } from './peer-source.js';
import { isLocalHost, localAddresses, preferLoopback } from './local-addresses.js';

/** The part of dns.promises.Resolver this source uses (a fake one in unit tests). */
export interface DnsResolverLike {
  resolve4(hostname: string): Promise<string[]>;
  resolve6(hostname: string): Promise<string[]>;
  resolveSrv(hostname: string): Promise<{ name: string; port: number; priority: number; weight: number }[]>;
  cancel?(): void;
}

export interface DnsDiscoveryOptions {
  /** The name to resolve; SRV records if it starts with `_`, A/AAAA records otherwise. */
  name: string;
  /** Port of the peers found through A/AAAA records. @default meshPort */
  port?: number;
  /** This node's mesh port: its own address on this port is skipped. */
  meshPort: number;
  /** Time between the end of one lookup and the start of the next. */
  intervalMs: number;
  /** `ip:port` (`[v6]:port`) of the DNS server to ask; the system's resolvers when undefined. */
  server?: string;
  /** Replaces the resolver (tests). */
  resolver?: DnsResolverLike;
  /** This host's addresses (tests). @default localAddresses() */
  localAddresses?: () => Set<string>;
}

/** One answer as it was last received, by query (`A name`, `AAAA name`, `SRV name`). */
type Records = string[] | { name: string; port: number }[];

interface Problem {
  query: string;
  code: string;
  message: string;
}

export class DnsDiscovery implements PeerSource {
  readonly name = 'dns';
  private readonly resolver: DnsResolverLike;
  private readonly srv: boolean;
  private sink: DiscoverySink | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private closed = false;
  /** Addresses the sink was told about: the current answer. */
  private known = new Set<string>();
  /** The last good answer of each query, used in place of a query that fails. */
  private lastGood = new Map<string, Records>();
  /** The problems of the last lookup, as a key: a warning is logged when it changes. */
  private lastProblem: string | null = null;

  constructor(
    private readonly options: DnsDiscoveryOptions,
    private readonly log: Logger,
  ) {
    this.srv = options.name.startsWith('_');
    if (options.resolver) {
      this.resolver = options.resolver;
    } else {
      // Short timeouts, few tries: a lookup that fails is retried an interval later anyway, and
      // meanwhile the last answer stands. (c-ares doubles the timeout on each retry.)
      const timeout = Math.min(Math.max(Math.floor(options.intervalMs / 2), 500), 2000);
      const resolver = new Resolver({ timeout, tries: 2 });
      if (options.server) resolver.setServers([options.server]);
      this.resolver = resolver;
    }
  }

  start(sink: DiscoverySink): void {
    this.sink = sink;
    this.log.info('DNS discovery on', {
      name: this.options.name,
      records: this.srv ? 'SRV' : 'A/AAAA',
      ...(this.srv ? {} : { port: this.peerPort }),
      intervalMs: this.options.intervalMs,
      server: this.options.server ?? 'system',
    });
    void this.refresh();
  }

  private get peerPort(): number {
    return this.options.port ?? this.options.meshPort;
  }

  /**
   * Resolves the name now and applies the answer; resolves when done (never rejects). If a
   * lookup is already running, returns that one. The next lookup is due an interval later.
   */
  refresh(): Promise<void> {
    if (this.closed || !this.sink) return Promise.resolve();
    if (this.inFlight) return this.inFlight;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.inFlight = this.lookup()
      .catch((err: unknown) => this.log.error('DNS discovery: lookup crashed', { error: err }))
      .finally(() => {
        this.inFlight = null;
        // One lookup at a time: the next starts an interval after this one ended.
        if (!this.closed) this.timer = setTimeout(() => void this.refresh(), this.options.intervalMs);
      });
    return this.inFlight;
  }

  private async lookup(): Promise<void> {
    const problems: Problem[] = [];
    const used = new Map<string, Records>();
    const endpoints: { ip: string; port: number }[] = [];
    if (this.srv) {
      const records = (await this.query('SRV', this.options.name, problems, used)) as { name: string; port: number }[];
      const targets = new Map<string, Set<number>>();
      for (const { name, port } of records) {
        // An SRV target of "." means "no such service here".
        if (!name || name === '.' || !Number.isInteger(port) || port < 1 || port > 65535) continue;
        const key = name.toLowerCase().replace(/\.$/, '');
        if (!targets.has(key)) targets.set(key, new Set());
        targets.get(key)!.add(port);
      }
      const hosts = await Promise.all([...targets.keys()].map((host) => this.addressesOf(host, problems, used)));
      [...targets.values()].forEach((ports, i) => {
        for (const ip of hosts[i]) for (const port of ports) endpoints.push({ ip, port });
      });
    } else {
      for (const ip of await this.addressesOf(this.options.name, problems, used)) endpoints.push({ ip, port: this.peerPort });
    }
    if (this.closed) return;
    this.lastGood = used;
    this.report(problems);
    this.apply(endpoints);
  }

  /**
   * A and AAAA records of a host. A query that fails is replaced by its last good answer, so
   * that one failed lookup (a timeout, a DNS server restarting) never drops peers that are
   * still there: only an answer that no longer lists an address removes it.
   */
  private async addressesOf(host: string, problems: Problem[], used: Map<string, Records>): Promise<string[]> {
    if (isIP(host)) return [host];
    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(host), this.resolver.resolve6(host)]);
    const gotSome = [v4, v6].some((r) => r.status === 'fulfilled' && r.value.length > 0);
    const out: string[] = [];
    for (const [type, result] of [['A', v4], ['AAAA', v6]] as const) {
      const key = `${type} ${host}`;
      if (result.status === 'fulfilled') {
        used.set(key, result.value);
        out.push(...result.value);
        continue;
      }
      const code = errorCode(result.reason);
      // ENODATA: the name exists but has no record of this type. ENOTFOUND (no such name)
      // for one type while the other has records is read the same way.
      if (code === 'ENODATA' || (code === 'ENOTFOUND' && gotSome)) {
        used.set(key, []);
        continue;
      }
      problems.push({ query: key, code, message: errorMessage(result.reason) });
      const previous = this.lastGood.get(key) as string[] | undefined;
      if (previous) {
        used.set(key, previous);
        out.push(...previous);
      }
    }
    return out;
  }

  /** One query; on failure (but "no records") the last good answer of the same query. */
  private async query(type: 'SRV', name: string, problems: Problem[], used: Map<string, Records>): Promise<Records> {
    const key = `${type} ${name}`;
    try {
      const records = (await this.resolver.resolveSrv(name)).map(({ name, port }) => ({ name, port }));
      used.set(key, records);
      return records;
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ENODATA') {
        used.set(key, []);
        return [];
      }
      problems.push({ query: key, code, message: errorMessage(err) });
      // Keep the last good answer: a failed lookup says nothing about the peers.
      const previous = this.lastGood.get(key) ?? [];
      used.set(key, previous);
      return previous;
    }
  }

  /** Logs failures at warn once per change of what failed (every failure at debug). */
  private report(problems: Problem[]): void {
    const key = problems.length === 0 ? null : [...new Set(problems.map((p) => `${p.query}: ${p.code}`))].sort().join('; ');
    if (key !== null) {
      this.log.debug('DNS discovery: lookup failed', { name: this.options.name, errors: problems.map((p) => p.message) });
    }
    if (key === this.lastProblem) return;
    if (key !== null) {
      this.log.warn('DNS discovery: lookup failed, keeping the last answer', {
        name: this.options.name,
        errors: problems.map((p) => p.message),
        peers: this.known.size,
      });
    } else {
      this.log.info('DNS discovery: lookups answered again', { name: this.options.name, peers: this.known.size });
    }
    this.lastProblem = key;
  }

  private apply(endpoints: { ip: string; port: number }[]): void {
    const sink = this.sink;
    if (!sink) return;
    const local = (this.options.localAddresses ?? localAddresses)();
    const next = new Set<string>();
    for (const { ip, port } of endpoints) {
      // Our own entry in the answer: the mesh would drop a self-dial, but do not dial it at all.
      if (port === this.options.meshPort && isLocalHost(ip, local)) continue;
      const host = ip.includes(':') ? `[${ip}]` : ip;
      next.add(preferLoopback(`ws://${host}:${port}`, local));
    }
    for (const address of this.known) {
      if (next.has(address)) continue;
      this.log.info('DNS discovery: peer left the answer', { name: this.options.name, address });
      sink.remove(address, this.name);
    }
    for (const address of next) {
      if (this.known.has(address)) continue;
      this.log.info('DNS discovery: found peer', { name: this.options.name, address });
      sink.add(address, this.name);
    }
    this.known = next;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // Pending queries fail with ECANCELLED, which nobody reports: the source is closed.
    this.resolver.cancel?.();
    await this.inFlight;
    this.sink = null;
  }
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
