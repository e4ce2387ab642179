/**
 * DnsDiscovery with a fake resolver: what each answer turns into (sink.add/remove), what a
 * failed lookup does (nothing but one warning), and that close() stops everything.
 */
import { expect } from 'chai';
import { DnsDiscovery, type DnsResolverLike } from '../../lib/discovery/dns-discovery.js';
import type { Logger } from '../../lib/log.js';
import { normalizeDnsServer, resolveOptions } from '../../lib/config.js';
import { optionsFromEnv } from '../../lib/config-env.js';

type Answer = string[] | { name: string; port: number }[] | string; // a string is an error code

function dnsError(code: string, syscall: string, name: string): Error {
  return Object.assign(new Error(`${syscall} ${code} ${name}`), { code });
}

/** Answers from `records` by `TYPE name`; a missing entry is NXDOMAIN (ENOTFOUND). */
class FakeResolver implements DnsResolverLike {
  records = new Map<string, Answer>();
  calls: string[] = [];
  cancelled = 0;
  private answer<T>(type: string, syscall: string, name: string): Promise<T> {
    this.calls.push(`${type} ${name}`);
    const a = this.records.get(`${type} ${name}`);
    if (a === undefined) return Promise.reject(dnsError('ENOTFOUND', syscall, name));
    if (typeof a === 'string') return Promise.reject(dnsError(a, syscall, name));
    return Promise.resolve(a as T);
  }
  resolve4(name: string): Promise<string[]> {
    return this.answer('A', 'queryA', name);
  }
  resolve6(name: string): Promise<string[]> {
    return this.answer('AAAA', 'queryAaaa', name);
  }
  resolveSrv(name: string): Promise<{ name: string; port: number; priority: number; weight: number }[]> {
    return this.answer<{ name: string; port: number }[]>('SRV', 'querySrv', name).then((l) => l.map((r) => ({ ...r, priority: 0, weight: 0 })));
  }
  cancel(): void {
    this.cancelled++;
  }
}

function fakeLog(): Logger & { lines: { level: string; msg: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function recordingSink() {
  const events: string[] = [];
  const current = new Set<string>();
  return {
    events,
    current,
    add(address: string, source: string) {
      expect(source).to.equal('dns');
      events.push(`+${address}`);
      current.add(address);
    },
    remove(address: string, source: string) {
      expect(source).to.equal('dns');
      events.push(`-${address}`);
      current.delete(address);
    },
  };
}

const LOCAL = () => new Set(['127.0.0.1', '::1', '10.0.0.5', 'fd00::5']);
const sources: DnsDiscovery[] = [];

function make(name: string, resolver: FakeResolver, extra: { port?: number; meshPort?: number } = {}) {
  const log = fakeLog();
  const source = new DnsDiscovery(
    { name, meshPort: extra.meshPort ?? 3001, port: extra.port, intervalMs: 3_600_000, resolver, localAddresses: LOCAL },
    log,
  );
  sources.push(source);
  const sink = recordingSink();
  return { source, sink, log };
}

afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
});

describe('DnsDiscovery (fake resolver)', () => {
  it('A/AAAA: every address is a peer on the mesh port; its own address is skipped, IPv6 is bracketed', async () => {
    const r = new FakeResolver();
    r.records.set('A peers.test', ['10.0.0.5', '10.0.0.6', '10.0.0.7']);
    r.records.set('AAAA peers.test', ['fd00::6']);
    const { source, sink } = make('peers.test', r);
    source.start(sink);
    await source.refresh();
    expect([...sink.current].sort()).to.deep.equal(['ws://10.0.0.6:3001', 'ws://10.0.0.7:3001', 'ws://[fd00::6]:3001']);
  });

  it('PEERS_DNS_PORT: a local address on another port is a peer, reached over loopback', async () => {
    const r = new FakeResolver();
    r.records.set('A peers.test', ['10.0.0.5', '10.0.0.6']);
    r.records.set('AAAA peers.test', 'ENODATA');
    const { source, sink } = make('peers.test', r, { port: 4000, meshPort: 3001 });
    source.start(sink);
    await source.refresh();
    expect([...sink.current].sort()).to.deep.equal(['ws://10.0.0.6:4000', 'ws://127.0.0.1:4000']);
  });

  it('adds what appears, removes what disappears, and says nothing when the answer is the same', async () => {
    const r = new FakeResolver();
    r.records.set('A peers.test', ['10.0.0.6', '10.0.0.7']);
    r.records.set('AAAA peers.test', 'ENODATA');
    const { source, sink } = make('peers.test', r);
    source.start(sink);
    await source.refresh();
    r.records.set('A peers.test', ['10.0.0.7', '10.0.0.8']);
    await source.refresh();
    await source.refresh();
    expect(sink.events).to.deep.equal(['+ws://10.0.0.6:3001', '+ws://10.0.0.7:3001', '-ws://10.0.0.6:3001', '+ws://10.0.0.8:3001']);
  });

  it('a name with no address at all (ENODATA twice) is an empty answer: peers are withdrawn', async () => {
    const r = new FakeResolver();
    r.records.set('A peers.test', ['10.0.0.6']);
    r.records.set('AAAA peers.test', 'ENODATA');
    const { source, sink, log } = make('peers.test', r);
    source.start(sink);
    await source.refresh();
    r.records.set('A peers.test', 'ENODATA');
    await source.refresh();
    expect(sink.events).to.deep.equal(['+ws://10.0.0.6:3001', '-ws://10.0.0.6:3001']);
    expect(log.lines.filter((l) => l.level === 'warn')).to.deep.equal([]);
  });

  it('a failed lookup keeps the last answer and warns once per change of error; success is said once', async () => {
    const r = new FakeResolver();
    r.records.set('A peers.test', ['10.0.0.6']);
    r.records.set('AAAA peers.test', 'ENODATA');
    const { source, sink, log } = make('peers.test', r);
    source.start(sink);
    await source.refresh();
    r.records.delete('A peers.test');
    r.records.delete('AAAA peers.test'); // NXDOMAIN for both
    await source.refresh();
    await source.refresh();
    r.records.set('A peers.test', 'ETIMEOUT');
    r.records.set('AAAA peers.test', 'ETIMEOUT');
    await source.refresh();
    await source.refresh();
    expect(sink.events, 'nothing withdrawn').to.deep.equal(['+ws://10.0.0.6:3001']);
    const warnings = log.lines.filter((l) => l.level === 'warn');
    expect(warnings.map((w) => (w.fields!.errors as string[]).join())).to.deep.equal([
      'queryA ENOTFOUND peers.test,queryAaaa ENOTFOUND peers.test',
      'queryA ETIMEOUT peers.test,queryAaaa ETIMEOUT peers.test',
    ]);
    expect(log.lines.filter((l) => l.msg === 'DNS discovery: lookup failed'), 'every failure at debug').to.have.length(4);
    r.records.set('A peers.test', ['10.0.0.6', '10.0.0.9']);
    r.records.set('AAAA peers.test', 'ENODATA');
    await source.refresh();
    await source.refresh();
    expect(log.lines.filter((l) => l.msg === 'DNS discovery: lookups answered again')).to.have.length(1);
    expect(sink.events).to.deep.equal(['+ws://10.0.0.6:3001', '+ws://10.0.0.9:3001']);
  });

  it('one family failing keeps that family\'s last answer while the other is updated', async () => {
    const r = new FakeResolver();
    r.records.set('A peers.test', ['10.0.0.6']);
    r.records.set('AAAA peers.test', ['fd00::6']);
    const { source, sink, log } = make('peers.test', r);
    source.start(sink);
    await source.refresh();
    r.records.set('A peers.test', ['10.0.0.7']);
    r.records.set('AAAA peers.test', 'ETIMEOUT');
    await source.refresh();
    expect([...sink.current].sort()).to.deep.equal(['ws://10.0.0.7:3001', 'ws://[fd00::6]:3001']);
    expect(log.lines.filter((l) => l.level === 'warn')).to.have.length(1);
  });

  it('NXDOMAIN for one family while the other has records is "no records of that type"', async () => {
    const r = new FakeResolver();
    r.records.set('A peers.test', ['10.0.0.6']);
    const { source, sink, log } = make('peers.test', r);
    source.start(sink);
    await source.refresh();
    expect([...sink.current]).to.deep.equal(['ws://10.0.0.6:3001']);
    expect(log.lines.filter((l) => l.level === 'warn')).to.deep.equal([]);
  });

  it('SRV: targets resolved to addresses, ports from the records, "." and duplicates skipped, itself skipped', async () => {
    const r = new FakeResolver();
    r.records.set('SRV _mesh._tcp.peers.test', [
      { name: 'a.peers.test', port: 3001 },
      { name: 'b.peers.test', port: 3001 },
      { name: 'b.peers.test', port: 3001 },
      { name: 'c.peers.test', port: 4000 },
      { name: '.', port: 3001 },
      { name: '10.0.0.9', port: 3002 },
    ]);
    r.records.set('A a.peers.test', ['10.0.0.5']); // this node
    r.records.set('AAAA a.peers.test', 'ENODATA');
    r.records.set('A b.peers.test', ['10.0.0.6']);
    r.records.set('AAAA b.peers.test', ['fd00::6']);
    r.records.set('A c.peers.test', ['10.0.0.7']);
    r.records.set('AAAA c.peers.test', 'ENODATA');
    const { source, sink } = make('_mesh._tcp.peers.test', r, { port: 9999 });
    source.start(sink);
    await source.refresh();
    expect([...sink.current].sort()).to.deep.equal(['ws://10.0.0.6:3001', 'ws://10.0.0.7:4000', 'ws://10.0.0.9:3002', 'ws://[fd00::6]:3001']);
    expect(r.calls.filter((c) => c === 'A b.peers.test'), 'one lookup per target').to.have.length(1);
    expect(r.calls.some((c) => c.endsWith(' .'))).to.equal(false);
  });

  it('SRV: a failed SRV lookup keeps the last records; a failed target keeps its last addresses', async () => {
    const r = new FakeResolver();
    r.records.set('SRV _mesh._tcp.peers.test', [{ name: 'b.peers.test', port: 3001 }, { name: 'c.peers.test', port: 3001 }]);
    r.records.set('A b.peers.test', ['10.0.0.6']);
    r.records.set('AAAA b.peers.test', 'ENODATA');
    r.records.set('A c.peers.test', ['10.0.0.7']);
    r.records.set('AAAA c.peers.test', 'ENODATA');
    const { source, sink, log } = make('_mesh._tcp.peers.test', r);
    source.start(sink);
    await source.refresh();
    r.records.set('SRV _mesh._tcp.peers.test', 'ECONNREFUSED');
    r.records.set('A c.peers.test', ['10.0.0.8']);
    await source.refresh();
    expect([...sink.current].sort(), 'SRV kept, c re-resolved').to.deep.equal(['ws://10.0.0.6:3001', 'ws://10.0.0.8:3001']);
    r.records.set('SRV _mesh._tcp.peers.test', [{ name: 'b.peers.test', port: 3001 }, { name: 'c.peers.test', port: 3001 }]);
    r.records.set('A b.peers.test', 'ESERVFAIL');
    await source.refresh();
    expect([...sink.current].sort(), 'b kept').to.deep.equal(['ws://10.0.0.6:3001', 'ws://10.0.0.8:3001']);
    expect(log.lines.filter((l) => l.level === 'warn')).to.have.length(2);
  });

  it('looks up again every interval, and close() stops the timer, cancels queries and calls the sink no more', async () => {
    const r = new FakeResolver();
    r.records.set('A peers.test', ['10.0.0.6']);
    r.records.set('AAAA peers.test', 'ENODATA');
    const log = fakeLog();
    const source = new DnsDiscovery({ name: 'peers.test', meshPort: 3001, intervalMs: 5, resolver: r, localAddresses: LOCAL }, log);
    sources.push(source);
    const sink = recordingSink();
    source.start(sink);
    const deadline = Date.now() + 5000;
    while (r.calls.length < 8 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(r.calls.length, 'four lookups by the timer').to.be.at.least(8);
    await source.close();
    expect(r.cancelled).to.equal(1);
    const calls = r.calls.length;
    r.records.set('A peers.test', ['10.0.0.7']);
    await source.refresh(); // what a timer left behind would call: a no-op once closed
    expect(r.calls.length, 'no lookup after close').to.equal(calls);
    expect(sink.events).to.deep.equal(['+ws://10.0.0.6:3001']);
  });
});

describe('config: DISCOVERY=dns', () => {
  it('reads PEERS_DNS, PEERS_DNS_PORT, PEERS_DNS_INTERVAL_MS and PEERS_DNS_SERVER', () => {
    const o = optionsFromEnv({ DISCOVERY: 'dns', PEERS_DNS: '_mesh._tcp.peers.test', PEERS_DNS_PORT: '4000', PEERS_DNS_INTERVAL_MS: '1000', PEERS_DNS_SERVER: '127.0.0.1:5353' });
    expect(o).to.include({ discovery: 'dns', peersDns: '_mesh._tcp.peers.test', peersDnsPort: 4000, peersDnsIntervalMs: 1000, peersDnsServer: '127.0.0.1:5353' });
  });

  it('defaults: no name, the mesh port, 5000 ms, the system resolvers', () => {
    expect(resolveOptions()).to.include({ peersDns: undefined, peersDnsPort: undefined, peersDnsIntervalMs: 5000, peersDnsServer: undefined });
  });

  it('names the variable at fault', () => {
    const cases: [Record<string, string>, string][] = [
      [{ DISCOVERY: 'dns' }, 'PEERS_DNS'],
      [{ DISCOVERY: 'dns', PEERS_DNS: 'bad name!' }, 'PEERS_DNS'],
      [{ DISCOVERY: 'dns', PEERS_DNS: 'p.test', PEERS_DNS_PORT: '0' }, 'PEERS_DNS_PORT'],
      [{ DISCOVERY: 'dns', PEERS_DNS: 'p.test', PEERS_DNS_INTERVAL_MS: '0' }, 'PEERS_DNS_INTERVAL_MS'],
      [{ DISCOVERY: 'dns', PEERS_DNS: 'p.test', PEERS_DNS_SERVER: 'dns.example' }, 'PEERS_DNS_SERVER'],
      [{ DISCOVERY: 'dns', PEERS_DNS: 'p.test', PEERS_DNS_SERVER: '10.0.0.10:99999' }, 'PEERS_DNS_SERVER'],
    ];
    for (const [env, variable] of cases) {
      expect(() => optionsFromEnv(env), JSON.stringify(env)).to.throw(new RegExp(`^${variable}: `));
    }
  });

  it('normalizes the DNS server to what Resolver.setServers takes', () => {
    expect(normalizeDnsServer('10.0.0.10')).to.equal('10.0.0.10:53');
    expect(normalizeDnsServer(' 127.0.0.1:5353 ')).to.equal('127.0.0.1:5353');
    expect(normalizeDnsServer('[fd00::a]:53')).to.equal('[fd00::a]:53');
    expect(normalizeDnsServer('fd00::a')).to.equal('[fd00::a]:53');
    expect(normalizeDnsServer('[::1]')).to.equal('[::1]:53');
  });
});
