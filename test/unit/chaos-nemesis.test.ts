/** The fault campaign's schedule (test/chaos/nemesis.ts): a pure function of the seed, within its rules. */
import { expect } from 'chai';
import { planFaults } from '../chaos/nemesis.js';
import { Rng } from '../chaos/prng.js';
import type { Fault } from '../chaos/history.js';

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
});
