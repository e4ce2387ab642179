/**
 * The nemesis: a seeded schedule of faults (planFaults, pure) and its execution against a
 * cluster (Nemesis). Fault kinds:
 *
 * - kill:    SIGKILL the instance; at the end of the fault, restart it in the same namespace
 *            on the same port (a new process with an empty store: it catches up from peers).
 * - pause:   SIGSTOP, then SIGCONT.
 * - cut:     the host's eth0 goes down (TestNetwork.partition): cut off from its peers and
 *            from the clients and writers too; then up again (TestNetwork.heal).
 * - isolate: nftables in the host's namespace drop everything to and from the other hosts:
 *            a partition between instances while clients and writers still reach both sides.
 * - loss:    nftables drop 25 % of the host's TCP packets, in and out.
 *
 * Rules of the schedule: at most two faults at once (three with DATA_DIR), never two on one
 * host, at most one instance killed at a time unless DATA_DIR is set; every fault lasts a
 * seeded 1-8 s (cut short by the end of the run); 0.5-3 s between two starts.
 */
import { Rng } from './prng.js';
import type { Fault, FaultKind, HistoryEvent } from './history.js';

export interface PlanOptions {
  instances: number;
  /** With DATA_DIR several (even all) instances may be down at once. */
  dataDir: boolean;
}

const WEIGHTS: Record<FaultKind, number> = { kill: 3, pause: 2, cut: 2, isolate: 2, loss: 1 };

/** The fault schedule for a seed: a pure function of its arguments. */
export function planFaults(seed: number, seconds: number, options: PlanOptions): Fault[] {
  const rng = Rng.fork(seed, 'nemesis');
  const endMs = seconds * 1000;
  const maxAtOnce = options.dataDir ? options.instances : 2;
  const faults: Fault[] = [];
  let t = rng.range(1000, 2500);
  while (t < endMs - 1000) {
    const active = faults.filter((f) => f.at + f.durationMs > t);
    let kind = rng.weighted(WEIGHTS);
    const target = rng.int(options.instances);
    const durationMs = rng.range(1000, 8000);
    if (kind === 'kill' && !options.dataDir && active.some((f) => f.kind === 'kill')) kind = 'pause';
    const free = [...Array(options.instances).keys()].filter((s) => !active.some((f) => f.target === s));
    if (active.length < maxAtOnce && free.length > 0) {
      // The target drawn, or the next free host after it.
      const slot = free.find((s) => s >= target) ?? free[0]!;
      faults.push({ n: faults.length + 1, kind, target: slot, at: t, durationMs: Math.min(durationMs, endMs - t) });
    }
    t += rng.range(500, 3000);
  }
  return faults;
}

export function describeFault(f: Fault): string {
  return `#${f.n} ${f.kind.padEnd(7)} h${f.target + 1} at ${(f.at / 1000).toFixed(1)}s for ${(f.durationMs / 1000).toFixed(1)}s`;
}

/** What the nemesis does to the cluster; each call resolves once the fault is in place (or gone). */
export interface FaultControl {
  kill(slot: number): Promise<void>;
  restart(slot: number): Promise<void>;
  pause(slot: number): Promise<void>;
  resume(slot: number): Promise<void>;
  cut(slot: number): Promise<void>;
  uncut(slot: number): Promise<void>;
  isolate(slot: number): Promise<void>;
  unisolate(slot: number): Promise<void>;
  loss(slot: number): Promise<void>;
  unloss(slot: number): Promise<void>;
}

/**
 * Runs a schedule: each fault starts at its time after start() and is healed after its
 * duration. Execution keeps the schedule's rules even when a step takes long (a restart can
 * take a second or more): a fault waits until the previous fault on its host is healed, and,
 * with `oneKillAtATime`, a kill waits until every other killed instance is running again. A
 * fault that had to wait still lasts its full duration.
 */
export class Nemesis {
  readonly errors: string[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Faults in place (or being put in place), with the promise of that step. */
  private readonly active = new Map<number, { fault: Fault; applying: Promise<boolean>; healed: () => void }>();
  private readonly healing = new Set<Promise<void>>();
  /** Per host: resolves when the last fault planned on it so far is healed. */
  private readonly lastOnTarget = new Map<number, Promise<void>>();
  /** Kills not yet healed. */
  private readonly kills = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly schedule: readonly Fault[],
    private readonly control: FaultControl,
    private readonly record: (e: HistoryEvent) => void,
    private readonly now: () => number,
    private readonly log: (line: string) => void = () => {},
    private readonly oneKillAtATime = true,
  ) {}

  start(): void {
    const origin = Date.now();
    for (const fault of this.schedule) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.inject(fault, origin);
      }, fault.at);
      this.timers.add(timer);
    }
  }

  private inject(fault: Fault, origin: number): void {
    if (this.stopped) return;
    const before = [this.lastOnTarget.get(fault.target) ?? Promise.resolve()];
    if (fault.kind === 'kill' && this.oneKillAtATime) before.push(...this.kills);
    let healed!: () => void;
    const done = new Promise<void>((resolve) => (healed = resolve));
    this.lastOnTarget.set(fault.target, done);
    if (fault.kind === 'kill') {
      this.kills.add(done);
      void done.then(() => this.kills.delete(done));
    }
    void Promise.all(before).then(() => {
      if (this.stopped) {
        healed();
        return;
      }
      const late = Date.now() - (origin + fault.at);
      this.record({ type: 'fault-start', t: this.now(), fault });
      this.log(`fault ${describeFault(fault)}${late > 500 ? ` (${(late / 1000).toFixed(1)} s late: waited for an earlier fault to heal)` : ''}`);
      const endAt = Date.now() + fault.durationMs;
      const applying = this.apply(fault).then(
        () => true,
        (err: Error) => {
          this.errors.push(`applying ${describeFault(fault)}: ${err.message}`);
          return false;
        },
      );
      this.active.set(fault.n, { fault, applying, healed });
      void applying.then(() => {
        if (this.stopped) return;
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          if (!this.stopped) this.startHeal(fault);
        }, Math.max(0, endAt - Date.now()));
        this.timers.add(timer);
      });
    });
  }

  private startHeal(fault: Fault): void {
    const entry = this.active.get(fault.n);
    if (!entry) return;
    this.active.delete(fault.n);
    const p = entry.applying
      .then(() => this.heal(fault))
      .then(
        () => {
          this.record({ type: 'fault-end', t: this.now(), fault });
          this.log(`healed #${fault.n} ${fault.kind} h${fault.target + 1}`);
        },
        (err: Error) => {
          this.errors.push(`healing ${describeFault(fault)}: ${err.message}`);
        },
      )
      .finally(() => {
        this.healing.delete(p);
        entry.healed();
      });
    this.healing.add(p);
  }

  /**
   * No new faults; heals every fault in place and waits until all of them are healed.
   * With `heal: false` (an interrupted run about to tear everything down) it only stops.
   */
  async stop(options: { heal?: boolean } = {}): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (options.heal === false) return;
    for (const { fault } of [...this.active.values()]) this.startHeal(fault);
    while (this.healing.size > 0) await Promise.all([...this.healing]);
  }

  private apply(f: Fault): Promise<void> {
    const c = this.control;
    switch (f.kind) {
      case 'kill':
        return c.kill(f.target);
      case 'pause':
        return c.pause(f.target);
      case 'cut':
        return c.cut(f.target);
      case 'isolate':
        return c.isolate(f.target);
      case 'loss':
        return c.loss(f.target);
    }
  }

  private heal(f: Fault): Promise<void> {
    const c = this.control;
    switch (f.kind) {
      case 'kill':
        return c.restart(f.target);
      case 'pause':
        return c.resume(f.target);
      case 'cut':
        return c.uncut(f.target);
      case 'isolate':
        return c.unisolate(f.target);
      case 'loss':
        return c.unloss(f.target);
    }
  }
}
