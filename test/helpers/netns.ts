/**
 * A private network for tests: Linux network namespaces ("hosts") joined by a bridge.
 *
 *   root namespace: bridge cmbrSSSS, 10.X.Y.254/24  (not connected to any physical interface)
 *     ├─ veth cmSSSSv1 ── eth0 10.X.Y.1/24 in namespace cmSSSS-h1
 *     ├─ veth cmSSSSv2 ── eth0 10.X.Y.2/24 in namespace cmSSSS-h2
 *     └─ ...
 *
 * The test process stays in the root namespace and reaches an instance at 10.X.Y.k:port
 * (through the bridge's own address). Instances run inside a namespace with
 * `Instance.start({ netns: host.name, host: host.address, ... })`.
 *
 * Multicast (mDNS) works inside a host (multicast loopback) and between hosts across the
 * bridge, because every host gets `224.0.0.0/4 dev eth0`; nothing leaves the machine because
 * the bridge has no physical port and the root namespace does not route multicast.
 *
 * SSSS is a random 4-hex suffix that also encodes the subnet (X = 100 + high byte, Y = low
 * byte), so two concurrent runs never share names or addresses. Every network is torn down by
 * `destroy()` (idempotent, never throws), by a synchronous process 'exit' hook if a test run
 * dies without calling it, and networks left by a run that was killed outright (SIGKILL) are
 * reaped by the next `create()`, processes left inside them included: the bridge carries the
 * owner's pid in its alias.
 *
 * Needs root and iproute2 (`ip`, `tc`). See `netnsAvailable()` and `requireNetns()`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Prefix of the bridge alias that marks a bridge as ours: `chatmesh-test pid=N start=T`. */
const ALIAS_PREFIX = 'chatmesh-test';
/** The interface name inside every host. */
export const HOST_IF = 'eth0';
const MCAST_ROUTE = ['224.0.0.0/4', 'dev', HOST_IF];

export interface NetHost {
  /** Namespace name: pass it as `netns` to Instance.start. */
  name: string;
  /** The host's IPv4 address on the bridge (10.X.Y.k): pass it as `host` to Instance.start. */
  address: string;
  /** Host-side end of the veth pair, in the root namespace. */
  veth: string;
  /** Interface name inside the namespace (always eth0). */
  ifname: string;
}

/** Runs `ip ARGS...` (or another iproute2 tool); rejects with stderr in the message. */
async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

async function ip(...args: string[]): Promise<string> {
  return sh('ip', args);
}

/** Best effort: runs and ignores every failure. */
async function tryIp(...args: string[]): Promise<void> {
  await ip(...args).catch(() => {});
}

function trySync(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 5000 });
  } catch {
    // best effort
  }
}

/** The kernel's start time of a process (field 22 of /proc/PID/stat), or null if it is gone. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const OWNER = `${ALIAS_PREFIX} pid=${process.pid} start=${processStart(process.pid) ?? '?'}`;

// ---------------------------------------------------------------------------------------
// Availability

export interface NetnsCheck {
  ok: boolean;
  /** Why namespaces cannot be used, when !ok. */
  reason?: string;
}

let availability: Promise<NetnsCheck> | null = null;

/** True when this process can create namespaces, veths and bridges (root + iproute2). Cached. */
export function netnsAvailable(): Promise<NetnsCheck> {
  availability ??= checkNetns();
  return availability;
}

async function checkNetns(): Promise<NetnsCheck> {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root (this process is not uid 0)' };
  try {
    await sh('ip', ['-V']);
  } catch {
    return { ok: false, reason: "`ip` (iproute2) is not installed: apt-get install -y iproute2" };
  }
  // `ip netns list` works in unprivileged containers too; only creating one proves we may.
  const probe = `cmprobe${process.pid}-${randomInt(1 << 16).toString(16)}`;
  try {
    await ip('netns', 'add', probe);
  } catch (err) {
    return { ok: false, reason: `cannot create a network namespace: ${(err as Error).message}` };
  } finally {
    await tryIp('netns', 'del', probe);
  }
  return { ok: true };
}

/**
 * For a mocha `before` hook: fails the suite with a clear message when namespaces cannot be
 * used, or skips it when CHATMESH_SKIP_NETNS=1. Never skips silently.
 */
export async function requireNetns(ctx: Mocha.Context): Promise<void> {
  const check = await netnsAvailable();
  if (check.ok) return;
  if (process.env.CHATMESH_SKIP_NETNS === '1') {
    console.warn(`    (skipping network-namespace tests: ${check.reason}; CHATMESH_SKIP_NETNS=1)`);
    ctx.skip();
  }
  throw new Error(
    `network-namespace tests cannot run: ${check.reason}. ` +
      'They need root and iproute2 (`ip netns`). Set CHATMESH_SKIP_NETNS=1 to skip them knowingly.',
  );
}

const NO_NETEM = 'this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is not set, or sch_netem is not loaded)';
let netemCheck: Promise<NetnsCheck> | null = null;

/**
 * Whether `TestNetwork.netem()` can work: some kernels (this machine's among them) are built
 * without netem. Tests that need it should fail or skip on this, as requireNetns() does. Cached.
 */
export function netemAvailable(): Promise<NetnsCheck> {
  netemCheck ??= (async () => {
    const ns = await netnsAvailable();
    if (!ns.ok) return ns;
    const probe = `cmprobe${process.pid}-${randomInt(1 << 16).toString(16)}`;
    try {
      await ip('netns', 'add', probe);
      await ip('-n', probe, 'link', 'set', 'lo', 'up');
      await sh('ip', ['netns', 'exec', probe, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']);
      return { ok: true };
    } catch (err) {
      const message = (err as Error).message;
      return { ok: false, reason: /qdisc kind is unknown/i.test(message) ? NO_NETEM : `netem unusable: ${message}` };
    } finally {
      await tryIp('netns', 'del', probe);
    }
  })();
  return netemCheck;
}

// ---------------------------------------------------------------------------------------
// Cleanup of networks a crashed run left behind, and of ours at exit

const live = new Set<TestNetwork>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const net of live) net.destroySync();
  });
  // A signal that would kill us: clean up, then let the signal do what it would have done.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      for (const net of live) net.destroySync();
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

/** Deletes bridges (and their namespaces) whose owner process is gone. */
async function reapStale(): Promise<void> {
  let links: Array<{ ifname: string; ifalias?: string }>;
  try {
    links = JSON.parse(await ip('-j', 'link', 'show', 'type', 'bridge')) as typeof links;
  } catch {
    return;
  }
  const namespaces = await listNamespaces();
  for (const link of links) {
    const m = /^chatmesh-test pid=(\d+) start=(\S+)$/.exec(link.ifalias ?? '');
    if (!m || !/^cmbr[0-9a-f]{4}$/.test(link.ifname)) continue;
    const start = processStart(Number(m[1]));
    if (start !== null && start === m[2]) continue; // owner still running
    const suffix = link.ifname.slice(4);
    for (const ns of namespaces.filter((n) => n.startsWith(`cm${suffix}-h`))) {
      // Instances the dead run left inside would keep running in an unnamed namespace.
      killPids(await ip('netns', 'pids', ns).catch(() => ''));
      await tryIp('link', 'del', `cm${suffix}v${ns.slice(`cm${suffix}-h`.length)}`);
      await tryIp('netns', 'del', ns);
    }
    await tryIp('link', 'del', link.ifname);
  }
}

async function listNamespaces(): Promise<string[]> {
  try {
    return (await ip('netns', 'list'))
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------
// Bridged traffic and br_netfilter

const BRIDGE_NF = '/proc/sys/net/bridge/bridge-nf-call-iptables';

/**
 * True if a TCP SYN from `from` reaches `to` and its answer comes back. Nothing listens on
 * the port: "connection refused" (an RST) proves the round trip; a timeout means a drop.
 */
async function tcpReaches(from: NetHost, to: NetHost): Promise<boolean> {
  const script =
    `const s=require('net').connect({host:${JSON.stringify(to.address)},port:9});` +
    `s.on('connect',()=>process.exit(0));` +
    `s.on('error',e=>process.exit(e.code==='ECONNREFUSED'?0:3));` +
    `setTimeout(()=>process.exit(4),1500)`;
  try {
    await run('ip', ['netns', 'exec', from.name, process.execPath, '-e', script], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------

export class TestNetwork {
  readonly hosts: NetHost[] = [];
  /** Hosts whose setup completed (addHost may run concurrently). */
  private readonly ready: NetHost[] = [];
  private destroyed = false;
  private checkedForwarding = false;

  private constructor(
    /** The random 4-hex suffix in every name of this network. */
    readonly suffix: string,
    /** The first three octets, e.g. '10.123.45'. */
    readonly subnet: string,
  ) {}

  /** The bridge's name (root namespace). */
  get bridge(): string {
    return `cmbr${this.suffix}`;
  }

  /** The root namespace's address on the bridge (10.X.Y.254). */
  get gateway(): string {
    return `${this.subnet}.254`;
  }

  /** Makes the bridge, up, with 10.X.Y.254/24. */
  static async create(): Promise<TestNetwork> {
    const check = await netnsAvailable();
    if (!check.ok) throw new Error(`network namespaces unavailable: ${check.reason}`);
    installExitHooks();
    await reapStale();
    for (let attempt = 0; ; attempt++) {
      const n = randomInt(0x8000); // 15 bits: X = 100..227, Y = 0..255
      const suffix = n.toString(16).padStart(4, '0');
      const subnet = `10.${100 + (n >> 8)}.${n & 0xff}`;
      if (await subnetInUse(subnet)) continue;
      const net = new TestNetwork(suffix, subnet);
      try {
        // Fails if the name exists: another run owns it, pick another.
        await ip('link', 'add', net.bridge, 'type', 'bridge');
      } catch (err) {
        if (attempt >= 10) throw err;
        continue;
      }
      live.add(net);
      try {
        await ip('link', 'set', net.bridge, 'alias', OWNER);
        await ip('addr', 'add', `${net.gateway}/24`, 'dev', net.bridge);
        await ip('link', 'set', net.bridge, 'up');
      } catch (err) {
        await net.destroy();
        throw err;
      }
      return net;
    }
  }

  /** A new namespace on the bridge, with lo up (multicast on) and eth0 = 10.X.Y.k/24. */
  async addHost(): Promise<NetHost> {
    if (this.destroyed) throw new Error('network destroyed');
    const k = this.hosts.length + 1;
    if (k > 253) throw new Error('a TestNetwork holds at most 253 hosts');
    const host: NetHost = { name: `cm${this.suffix}-h${k}`, address: `${this.subnet}.${k}`, veth: `cm${this.suffix}v${k}`, ifname: HOST_IF };
    // Recorded first so destroy() removes it even if a step below fails.
    this.hosts.push(host);
    await ip('netns', 'add', host.name);
    await ip('-n', host.name, 'link', 'set', 'lo', 'up');
    await ip('-n', host.name, 'link', 'set', 'lo', 'multicast', 'on');
    await ip('link', 'add', host.veth, 'type', 'veth', 'peer', 'name', HOST_IF, 'netns', host.name);
    await ip('link', 'set', host.veth, 'master', this.bridge);
    await ip('link', 'set', host.veth, 'up');
    await ip('-n', host.name, 'addr', 'add', `${host.address}/24`, 'dev', HOST_IF);
    await ip('-n', host.name, 'link', 'set', HOST_IF, 'up');
    // Without this route nothing multicast is sent or heard (there is no default route).
    await ip('-n', host.name, 'route', 'replace', ...MCAST_ROUTE);
    const other = this.ready[0];
    this.ready.push(host);
    if (other && !this.checkedForwarding) await this.ensureBridgeForwards(host, other);
    return host;
  }

  /**
   * Checks that the bridge forwards between namespaces. A host with br_netfilter loaded and
   * `net.bridge.bridge-nf-call-iptables=1` passes bridged frames through iptables' FORWARD
   * chain; with a DROP policy there (Docker sets one) namespaces cannot talk to each other
   * although each reaches the root namespace. The per-bridge nf_call_iptables option cannot
   * override the global key (the kernel ORs them), so then, and only then, the global key is
   * set to 0 (it is left so: resetting it could break a concurrent run).
   */
  private async ensureBridgeForwards(a: NetHost, b: NetHost): Promise<void> {
    this.checkedForwarding = true;
    if (await tcpReaches(a, b)) return;
    let detail = 'and br_netfilter is not loaded';
    if (existsSync(BRIDGE_NF) && readFileSync(BRIDGE_NF, 'utf8').trim() === '1') {
      console.warn(`    (netns harness: bridged traffic is filtered by iptables; setting net.bridge.bridge-nf-call-iptables=0)`);
      await sh('sysctl', ['-q', '-w', 'net.bridge.bridge-nf-call-iptables=0']).catch(() => {});
      if (await tcpReaches(a, b)) return;
      detail = 'even with net.bridge.bridge-nf-call-iptables=0';
    }
    throw new Error(`netns harness: ${a.name} cannot reach ${b.address} across bridge ${this.bridge} (${detail}); check nftables/ebtables rules`);
  }

  /** Cuts the host off the network (its eth0 goes down). */
  async partition(host: NetHost): Promise<void> {
    await ip('-n', host.name, 'link', 'set', HOST_IF, 'down');
  }

  /** Reconnects a partitioned host; restores the multicast route the kernel dropped. */
  async heal(host: NetHost): Promise<void> {
    await ip('-n', host.name, 'link', 'set', HOST_IF, 'up');
    await ip('-n', host.name, 'route', 'replace', ...MCAST_ROUTE);
  }

  /**
   * Applies a netem spec to the host's eth0 (its outgoing traffic), e.g. 'delay 100ms loss 5%'.
   * Throws a clear error on a kernel built without netem: check `netemAvailable()` first.
   */
  async netem(host: NetHost, spec: string): Promise<void> {
    const args = spec.trim().split(/\s+/).filter(Boolean);
    try {
      await sh('ip', ['netns', 'exec', host.name, 'tc', 'qdisc', 'replace', 'dev', HOST_IF, 'root', 'netem', ...args]);
    } catch (err) {
      if (/qdisc kind is unknown/i.test((err as Error).message)) throw new Error(`${NO_NETEM} (${(err as Error).message})`);
      throw err;
    }
  }

  /** Removes any netem from the host's eth0. */
  async clearNetem(host: NetHost): Promise<void> {
    await sh('ip', ['netns', 'exec', host.name, 'tc', 'qdisc', 'del', 'dev', HOST_IF, 'root']).catch(() => {});
  }

  /** Runs a command inside the host's namespace; resolves with stdout. */
  async exec(host: NetHost, command: string, args: string[] = []): Promise<string> {
    return sh('ip', ['netns', 'exec', host.name, command, ...args]);
  }

  /**
   * Deletes every namespace and the bridge. Idempotent; never throws. Stop the instances
   * first (a process still inside keeps its namespace alive, unnamed).
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const host of this.hosts) {
      // Stragglers inside our namespaces (started by this run) would keep them alive, unnamed.
      killPids(await ip('netns', 'pids', host.name).catch(() => ''));
      // Deleting the root end removes the pair now; namespace teardown alone is asynchronous.
      await tryIp('link', 'del', host.veth);
      await tryIp('netns', 'del', host.name);
    }
    await tryIp('link', 'del', this.bridge);
    live.delete(this);
  }

  /** destroy(), synchronously: for process 'exit' and signal handlers. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const host of this.hosts) {
      try {
        killPids(execFileSync('ip', ['netns', 'pids', host.name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }));
      } catch {
        // no such namespace
      }
      trySync('ip', ['link', 'del', host.veth]);
      trySync('ip', ['netns', 'del', host.name]);
    }
    trySync('ip', ['link', 'del', this.bridge]);
    live.delete(this);
  }
}

/** SIGKILLs the pids listed (one a line, as `ip netns pids` prints them), never ourselves. */
function killPids(list: string): void {
  for (const pid of list.split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number)) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** True if some address or route of the root namespace already covers 10.X.Y.0/24. */
async function subnetInUse(subnet: string): Promise<boolean> {
  try {
    const routes = await ip('-4', 'route', 'show', 'match', `${subnet}.1`);
    if (routes.split('\n').some((l) => l.trim() !== '' && !l.startsWith('default'))) return true;
    const addrs = await ip('-4', '-o', 'addr', 'show', 'to', `${subnet}.0/24`);
    return addrs.trim() !== '';
  } catch {
    return false;
  }
}

/** Prints the last lines of each instance's output (for an afterEach when a test failed). */
export function dumpInstanceOutput(instances: Array<{ nodeId: string; options: { netns?: string }; port: number; exitCode: number | null; exitSignal: string | null; output: string[] }>, lines: number): void {
  for (const i of instances) {
    console.error(`\n---- instance ${i.nodeId || '?'} ${i.options.netns}:${i.port} (exit ${i.exitCode ?? i.exitSignal ?? 'running'}) ----`);
    console.error(i.output.slice(-lines).join('\n'));
  }
}

/** `n` distinct ports; nothing else listens inside a fresh namespace. */
export function distinctPorts(n: number): number[] {
  const out = new Set<number>();
  while (out.size < n) out.add(20_000 + Math.floor(Math.random() * 10_000));
  return [...out];
}
