/**
 * One fault campaign (issue 16), the way Jepsen works: three instances, one per network
 * namespace, WebSocket clients and REST writers (workload.ts) while a seeded nemesis
 * (nemesis.ts) kills, pauses and partitions them; then everything is healed, the campaign
 * waits until every instance holds the same state, and the checker (checker.ts) judges the
 * recorded history.
 *
 *   runCampaign({ seed, seconds }) → CampaignResult (never throws for a failed check; it
 *   throws only when the campaign itself could not run, e.g. no namespaces)
 *
 * Everything it starts (processes, namespaces, bridge, nftables tables inside namespaces,
 * sockets) is torn down in a finally; an interrupted run (options.signal) tears down too,
 * and TestNetwork's own exit and signal hooks remove the namespaces if this process dies.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Instance } from '../helpers/instance.js';
import { TestNetwork, distinctPorts, type NetHost } from '../helpers/netns.js';
import { poll } from '../helpers/wait.js';
import { check, type CheckResult } from './checker.js';
import type { Fault, FinalState, HistoryEvent, Key } from './history.js';
import { Nemesis, describeFault, planFaults, type FaultControl } from './nemesis.js';
import { Rng } from './prng.js';
import { ChaosClient, RestWriter, type Endpoints } from './workload.js';

export interface CampaignOptions {
  seed: number;
  /** Seconds of workload under faults (setup, heal and convergence come on top). */
  seconds: number;
  /** Give every instance DATA_DIR=<dataDir>/h<k>; the checker then expects no loss at all. */
  dataDir?: string;
  clients?: number;
  writers?: number;
  rooms?: number;
  /** Progress lines (the schedule, each fault, each phase). */
  log?: (line: string) => void;
  /** Aborting it stops the run early (no checks) and tears everything down. */
  signal?: AbortSignal;
}

export interface CampaignResult {
  seed: number;
  seconds: number;
  dataDir: boolean;
  ok: boolean;
  schedule: Fault[];
  check: CheckResult;
  /** Faults the nemesis could not apply or heal (an instance that would not restart...). */
  nemesisErrors: string[];
  /** Clients that never got their final echo (so their resume check may be incomplete). */
  barrierFailures: string[];
  /** Error frames clients got, by code (should be none). */
  clientErrors: Record<string, number>;
  /** Time from the heal to the instances holding the same state. */
  convergeMs: number;
  durationMs: number;
  /** Last lines of output of processes that exited by themselves. */
  crashOutput: string[];
  /** The recorded history and the final state (for --history: to study a failing seed). */
  events: HistoryEvent[];
  final: FinalState;
}

const run = promisify(execFile);
const SECRET = 'chaos-campaign-secret';

/** Short timers so faults are noticed, and healed, within a couple of seconds. */
const INSTANCE_ENV = {
  DISCOVERY: 'static',
  MESH_SECRET: SECRET,
  LOG_LEVEL: 'info',
  PEER_HEARTBEAT_MS: '250',
  PEER_TIMEOUT_MS: '1500',
  PEER_HANDSHAKE_TIMEOUT_MS: '1000',
  PEER_REDIAL_MAX_MS: '1000',
  // The whole history stays (no message drops out of the window during a run) and a `joined`
  // with gap:true carries all of it, so a gap excuses as little as possible.
  MAX_MESSAGES_PER_CONVERSATION: '1000000',
  HISTORY_ON_JOIN: '1000000',
};

const LOSS_PERCENT = 25;

interface Slot {
  host: NetHost;
  port: number;
  instance: Instance | null;
  incarnation: number;
  /** Set while the nemesis or the teardown stops the process: its exit is expected. */
  expectExit: boolean;
  /** Every process this slot ran (for output on a crash). */
  all: Instance[];
}

class Cluster implements FaultControl, Endpoints {
  readonly slots: Slot[];
  teardown = false;

  constructor(
    readonly net: TestNetwork,
    hosts: NetHost[],
    ports: number[],
    private readonly env: (k: number) => Record<string, string>,
    private readonly record: (e: HistoryEvent) => void,
    private readonly now: () => number,
  ) {
    this.slots = hosts.map((host, k) => ({ host, port: ports[k]!, instance: null, incarnation: -1, expectExit: false, all: [] }));
  }

  get instances(): number {
    return this.slots.length;
  }

  wsUrl(slot: number): string {
    const s = this.slots[slot]!;
    return `ws://${s.host.address}:${s.port}`;
  }

  httpUrl(slot: number): string {
    const s = this.slots[slot]!;
    return `http://${s.host.address}:${s.port}`;
  }

  incarnation(slot: number): number {
    return Math.max(0, this.slots[slot]!.incarnation);
  }

  alive(slot: number): boolean {
    return this.slots[slot]!.instance?.alive ?? false;
  }

  async startSlot(k: number): Promise<void> {
    const s = this.slots[k]!;
    let lastError: Error | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const instance = await Instance.start({ netns: s.host.name, host: s.host.address, port: s.port, env: this.env(k) });
        s.incarnation++;
        s.expectExit = false;
        s.instance = instance;
        s.all.push(instance);
        const at = { slot: k, incarnation: s.incarnation };
        this.record({ type: 'start', t: this.now(), nodeId: instance.nodeId, ...at });
        const onExit = () =>
          this.record({ type: 'exit', t: this.now(), byNemesis: s.expectExit || this.teardown, code: instance.exitCode, signal: instance.exitSignal, ...at });
        if (instance.alive) instance.proc.once('exit', () => setImmediate(onExit));
        else onExit();
        return;
      } catch (err) {
        lastError = err as Error;
      }
    }
    throw lastError!;
  }

  async kill(slot: number): Promise<void> {
    const s = this.slots[slot]!;
    if (!s.instance?.alive) throw new Error(`h${slot + 1} is not running`);
    s.expectExit = true;
    await s.instance.kill('SIGKILL');
  }

  async restart(slot: number): Promise<void> {
    if (this.alive(slot)) return;
    await this.startSlot(slot);
  }

  async pause(slot: number): Promise<void> {
    this.slots[slot]!.instance?.signal('SIGSTOP');
  }

  async resume(slot: number): Promise<void> {
    this.slots[slot]!.instance?.signal('SIGCONT');
  }

  async cut(slot: number): Promise<void> {
    await this.net.partition(this.slots[slot]!.host);
  }

  async uncut(slot: number): Promise<void> {
    await this.net.heal(this.slots[slot]!.host);
  }

  private async nft(slot: number, ...args: string[]): Promise<void> {
    await this.net.exec(this.slots[slot]!.host, 'nft', args);
  }

  async isolate(slot: number): Promise<void> {
    const others = this.slots.filter((_, k) => k !== slot).map((s) => s.host.address).join(', ');
    await this.nft(slot, 'add', 'table', 'inet', 'chaos_isolate');
    await this.nft(slot, 'add', 'chain', 'inet', 'chaos_isolate', 'in', '{ type filter hook input priority 0 ; policy accept ; }');
    await this.nft(slot, 'add', 'chain', 'inet', 'chaos_isolate', 'out', '{ type filter hook output priority 0 ; policy accept ; }');
    await this.nft(slot, 'add', 'rule', 'inet', 'chaos_isolate', 'in', 'ip', 'saddr', `{ ${others} }`, 'drop');
    await this.nft(slot, 'add', 'rule', 'inet', 'chaos_isolate', 'out', 'ip', 'daddr', `{ ${others} }`, 'drop');
  }

  async unisolate(slot: number): Promise<void> {
    await this.nft(slot, 'delete', 'table', 'inet', 'chaos_isolate');
  }

  async loss(slot: number): Promise<void> {
    await this.nft(slot, 'add', 'table', 'inet', 'chaos_loss');
    for (const [chain, hook] of [['in', 'input'], ['out', 'output']] as const) {
      await this.nft(slot, 'add', 'chain', 'inet', 'chaos_loss', chain, `{ type filter hook ${hook} priority 0 ; policy accept ; }`);
      await this.nft(slot, 'add', 'rule', 'inet', 'chaos_loss', chain, 'meta', 'l4proto', 'tcp', 'numgen', 'random', 'mod', '100', '<', String(LOSS_PERCENT), 'drop');
    }
  }

  async unloss(slot: number): Promise<void> {
    await this.nft(slot, 'delete', 'table', 'inet', 'chaos_loss');
  }

  /** Every instance running, none paused, every host linked, no nftables rule: for the end. */
  async healAll(): Promise<void> {
    for (let k = 0; k < this.slots.length; k++) {
      const s = this.slots[k]!;
      s.instance?.signal('SIGCONT');
      await this.net.heal(s.host).catch(() => {});
      await this.nft(k, 'delete', 'table', 'inet', 'chaos_isolate').catch(() => {});
      await this.nft(k, 'delete', 'table', 'inet', 'chaos_loss').catch(() => {});
      if (!this.alive(k)) await this.startSlot(k);
    }
  }

  /** Stops every process (their exits are expected). */
  async stopAll(): Promise<void> {
    this.teardown = true;
    await Promise.all(
      this.slots.map(async (s) => {
        s.instance?.signal('SIGCONT');
        await s.instance?.kill('SIGKILL').catch(() => {});
      }),
    );
  }
}

/** GET /api/conversations/:id on one instance: its messages as keys, null for 404. */
async function readConversation(cluster: Cluster, slot: number, conv: string): Promise<Key[] | null> {
  const res = await fetch(`${cluster.httpUrl(slot)}/api/conversations/${encodeURIComponent(conv)}`, { signal: AbortSignal.timeout(5000) });
  if (res.status === 404) {
    await res.text();
    return null;
  }
  if (res.status !== 200) throw new Error(`GET ${conv} on h${slot + 1}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { messages: Array<{ id: string; timestamp: number }> };
  return body.messages.map((m) => ({ ts: m.timestamp, id: m.id }));
}

async function readAll(cluster: Cluster, convs: string[]): Promise<FinalState['histories']> {
  return Promise.all(
    cluster.slots.map(async (_, slot) => {
      const out: Record<string, Key[] | null> = {};
      for (const conv of convs) out[conv] = await readConversation(cluster, slot, conv);
      return out;
    }),
  );
}

/**
 * Polls until every instance holds the same history of every conversation, twice in a row.
 * Resolves with the last reading and whether it converged before the deadline.
 */
async function converge(cluster: Cluster, convs: string[], timeoutMs: number): Promise<FinalState> {
  const deadline = Date.now() + timeoutMs;
  let previous = '';
  let last: FinalState['histories'] | null = null;
  for (;;) {
    try {
      last = await readAll(cluster, convs);
      const texts = last.map((h) => JSON.stringify(h));
      const same = texts.every((t) => t === texts[0]);
      if (same && texts[0] === previous) return { histories: last, converged: true };
      previous = same ? texts[0]! : '';
    } catch {
      previous = '';
    }
    if (Date.now() > deadline) {
      return { histories: last ?? cluster.slots.map(() => ({})), converged: false };
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Resolves at `ms` after `origin`, or early when the signal aborts (pacing, not synchronising). */
function until(origin: number, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, Math.max(0, origin + ms - Date.now()));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new Error('campaign interrupted');
}

/** The isolate and loss faults need nftables; say so up front rather than as nemesis errors. */
async function requireNft(): Promise<void> {
  try {
    await run('nft', ['--version'], { timeout: 5000 });
  } catch {
    throw new Error('`nft` is not installed: apt-get install -y nftables (.ci/run installs it); the isolate and loss faults need it');
  }
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const { seed, seconds, signal } = options;
  const log = options.log ?? (() => {});
  const nClients = options.clients ?? 4;
  const nWriters = options.writers ?? 2;
  const nRooms = options.rooms ?? 3;
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const events: HistoryEvent[] = [];
  const record = (e: HistoryEvent) => events.push(e);

  const schedule = planFaults(seed, seconds, { instances: 3, dataDir: options.dataDir !== undefined });
  log(`seed ${seed}, ${seconds} s, ${schedule.length} faults planned${options.dataDir ? `, DATA_DIR under ${options.dataDir}` : ''}:`);
  for (const f of schedule) log(`  ${describeFault(f)}`);

  await requireNft();
  const net = await TestNetwork.create();
  let cluster: Cluster | null = null;
  const clients: ChaosClient[] = [];
  const writers: RestWriter[] = [];
  let nemesis: Nemesis | null = null;
  try {
    const hosts = [await net.addHost(), await net.addHost(), await net.addHost()];
    const ports = distinctPorts(3);
    const env = (k: number): Record<string, string> => ({
      ...INSTANCE_ENV,
      PEERS: hosts
        .map((h, j) => (j === k ? null : `ws://${h.address}:${ports[j]}`))
        .filter((p): p is string => p !== null)
        .join(','),
      ...(options.dataDir ? { DATA_DIR: join(options.dataDir, `h${k + 1}`) } : {}),
    });
    if (options.dataDir) for (let k = 0; k < 3; k++) mkdirSync(join(options.dataDir, `h${k + 1}`), { recursive: true });
    const c = (cluster = new Cluster(net, hosts, ports, env, record, now));
    await Promise.all([0, 1, 2].map((k) => c.startSlot(k)));
    const nodeIds = c.slots.map((s) => s.instance!.nodeId);
    await Promise.all(c.slots.map((s) => s.instance!.waitForPeersUp(nodeIds.filter((id) => id !== s.instance!.nodeId), 15_000)));
    throwIfAborted(signal);
    log(`cluster up: ${c.slots.map((s, k) => `h${k + 1}=${s.host.address}:${s.port} (${s.instance!.nodeId})`).join(', ')}`);

    // The workload: rooms and the clients' choice of them are seeded too.
    const roomRng = Rng.fork(seed, 'rooms');
    const rooms = Array.from({ length: nRooms }, (_, i) => `room${i}-s${seed}`);
    const ctx = { seed, endpoints: c, record, now };
    for (let i = 0; i < nClients; i++) {
      const first = roomRng.int(nRooms);
      const mine = roomRng.chance(0.5) ? [rooms[first]!, rooms[(first + 1 + roomRng.int(nRooms - 1)) % nRooms]!] : [rooms[first]!];
      clients.push(new ChaosClient(i, mine, ctx));
    }
    // Every room has a member (so it exists as a conversation before writers post to it).
    for (const room of rooms) if (!clients.some((cl) => cl.rooms.includes(room))) (clients[0]!.rooms as string[]).push(room);
    log(`clients: ${clients.map((cl) => `${cl.user}→${cl.rooms.join('+')}`).join(', ')}; writers: ${nWriters}`);
    for (const cl of clients) cl.start();
    await poll(() => clients.every((cl) => cl.ready), { timeoutMs: 15_000, what: 'every client connected and joined' });
    for (let i = 0; i < nWriters; i++) writers.push(new RestWriter(i, rooms, ctx));

    const workStart = Date.now();
    for (const cl of clients) cl.startTraffic();
    for (const w of writers) w.start();
    nemesis = new Nemesis(schedule, c, record, now, (line) => log(`${(now() / 1000).toFixed(1).padStart(6)}s ${line}`), options.dataDir === undefined);
    nemesis.start();
    await until(workStart, seconds * 1000, signal);
    throwIfAborted(signal);

    // Heal everything, stop writing, wait for one state everywhere, then the clients' barrier.
    log(`${(now() / 1000).toFixed(1)}s healing and stopping the workload`);
    await nemesis.stop();
    for (const cl of clients) cl.stopTraffic();
    await Promise.all(writers.map((w) => w.stop()));
    await c.healAll();
    const healedAt = Date.now();
    const convs = [...rooms, ...writers.flatMap((w) => w.conversations)];
    const ids = () => c.slots.map((s) => s.instance!.nodeId);
    await Promise.all(
      c.slots.map((s) => s.instance!.waitForPeersUp(ids().filter((id) => id !== s.instance!.nodeId), 30_000).catch((err: Error) => log(`warning: ${err.message}`))),
    );
    throwIfAborted(signal);
    let state = await converge(c, convs, 30_000);
    const convergeMs = Date.now() - healedAt;
    log(`${(now() / 1000).toFixed(1)}s ${state.converged ? `converged in ${(convergeMs / 1000).toFixed(1)} s` : 'did NOT converge within 30 s'}`);
    throwIfAborted(signal);
    const barrierDeadline = Date.now() + 20_000;
    const barrier = await Promise.all(clients.map((cl) => cl.barrier(barrierDeadline)));
    const barrierFailures = clients.filter((_, i) => !barrier[i]).map((cl) => cl.user);
    throwIfAborted(signal);
    state = await converge(c, convs, 30_000);
    for (const cl of clients) cl.stop();

    const result = check(events, state, { dataDir: options.dataDir !== undefined });
    const clientErrors: Record<string, number> = {};
    for (const cl of clients) for (const [code, n] of Object.entries(cl.errors)) clientErrors[code] = (clientErrors[code] ?? 0) + n;
    const crashOutput: string[] = [];
    for (const crash of result.crashes) {
      const inst = c.slots[crash.slot]!.all[crash.incarnation];
      if (inst) crashOutput.push(`---- h${crash.slot + 1} incarnation ${crash.incarnation} (${inst.nodeId}) ----`, ...inst.output.slice(-40));
    }
    const ok = result.ok && nemesis.errors.length === 0 && barrierFailures.length === 0;
    return {
      seed,
      seconds,
      dataDir: options.dataDir !== undefined,
      ok,
      schedule,
      check: result,
      nemesisErrors: nemesis.errors,
      barrierFailures,
      clientErrors,
      convergeMs,
      durationMs: Date.now() - t0,
      crashOutput,
      events,
      final: state,
    };
  } finally {
    for (const cl of clients) cl.stop();
    await Promise.all(writers.map((w) => w.stop().catch(() => {})));
    await nemesis?.stop({ heal: false }).catch(() => {});
    await cluster?.stopAll();
    await net.destroy();
  }
}
