/** The fault campaign's schedule (test/chaos/nemesis.ts): a pure function of the seed, within its rules. */
import { expect } from 'chai';
import { Nemesis, planFaults, type FaultControl } from '../chaos/nemesis.js';
import { Rng } from '../chaos/prng.js';
import type { Fault, HistoryEvent } from '../chaos/history.js';

function overlapping(faults: Fault[], at: number): Fault[] {
  return faults.filter((f) => f.at <= at && at < f.at + f.durationMs);
}

describe('chaos nemesis schedule', () => {
  it('is the same for the same seed, and differs between seeds', () => {
    expect(planFaults(7, 60, { instances: 3, dataDir: false })).to.deep.equal(planFaults(7, 60, { instances: 3, dataDir: false }));
    expect(planFaults(7, 60, { instances: 3, dataDir: false })).to.not.deep.equal(planFaults(8, 60, { instances: 3, dataDir: false }));
    expect(Rng.fork(1, 'a').next()).to.equal(Rng.fork(1, 'a').next());
    expect(Rng.fork(1, 'a').next()).to.not.equal(Rng.fork(1, 'b').next());
  });

  for (const dataDir of [false, true]) {
    it(`keeps its rules over many seeds${dataDir ? ' (DATA_DIR: several kills at once allowed)' : ''}`, () => {
      let severalKills = false;
      const kinds = new Set<string>();
      for (let seed = 1; seed <= 200; seed++) {
        const faults = planFaults(seed, 120, { instances: 3, dataDir });
        expect(faults.length, `faults for seed ${seed}`).to.be.above(20);
        for (const f of faults) {
          kinds.add(f.kind);
          expect(f.durationMs).to.be.within(1, 8000);
          expect(f.at + f.durationMs).to.be.at.most(120_000);
          const now = overlapping(faults, f.at);
          expect(new Set(now.map((x) => x.target)).size, `one fault per host (seed ${seed})`).to.equal(now.length);
          expect(now.length).to.be.at.most(dataDir ? 3 : 2);
          const kills = now.filter((x) => x.kind === 'kill').length;
          if (!dataDir) expect(kills, `kills at once (seed ${seed})`).to.be.at.most(1);
          if (kills > 1) severalKills = true;
        }
      }
      expect([...kinds].sort()).to.deep.equal(['cut', 'isolate', 'kill', 'loss', 'pause']);
      expect(severalKills).to.equal(dataDir);
    });
  }

  it('runs a schedule without breaking its rules when a restart is slow', async () => {
    const down = new Set<number>();
    const faulty = new Set<number>();
    const problems: string[] = [];
    const ops: string[] = [];
    const later = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
    const hit = (slot: number, op: string) => {
      if (faulty.has(slot)) problems.push(`${op} h${slot + 1} while another fault is on it`);
      faulty.add(slot);
      ops.push(`${op} ${slot}`);
    };
    const unhit = (slot: number, op: string) => {
      faulty.delete(slot);
      ops.push(`${op} ${slot}`);
    };
    const control: FaultControl = {
      async kill(slot) {
        hit(slot, 'kill');
        if (down.size > 0) problems.push(`kill h${slot + 1} while h${[...down][0]! + 1} is down`);
        down.add(slot);
      },
      async restart(slot) {
        await later(60); // slow
        down.delete(slot);
        unhit(slot, 'restart');
      },
      pause: async (slot) => hit(slot, 'pause'),
      resume: async (slot) => unhit(slot, 'resume'),
      cut: async (slot) => hit(slot, 'cut'),
      uncut: async (slot) => unhit(slot, 'uncut'),
      isolate: async (slot) => hit(slot, 'isolate'),
      unisolate: async (slot) => unhit(slot, 'unisolate'),
      loss: async (slot) => hit(slot, 'loss'),
      unloss: async (slot) => unhit(slot, 'unloss'),
    };
    const schedule: Fault[] = [
      { n: 1, kind: 'kill', target: 0, at: 0, durationMs: 10 },
      { n: 2, kind: 'pause', target: 0, at: 20, durationMs: 10 }, // h1 is still restarting
      { n: 3, kind: 'kill', target: 1, at: 25, durationMs: 10 }, // h1 is still down
      { n: 4, kind: 'cut', target: 2, at: 30, durationMs: 500 }, // healed by stop()
    ];
    const events: HistoryEvent[] = [];
    const nemesis = new Nemesis(schedule, control, (e) => events.push(e), () => 0);
    nemesis.start();
    await later(250);
    await nemesis.stop();
    expect(problems).to.deep.equal([]);
    expect(nemesis.errors).to.deep.equal([]);
    expect(ops.indexOf('pause 0')).to.be.above(ops.indexOf('restart 0'));
    expect(ops.indexOf('kill 1')).to.be.above(ops.indexOf('restart 0'));
    expect(faulty.size, 'everything healed after stop()').to.equal(0);
    expect(events.filter((e) => e.type === 'fault-start')).to.have.length(4);
    expect(events.filter((e) => e.type === 'fault-end')).to.have.length(4);
  });
});
