/**
 * The hybrid logical clock and the ids built from it, with an injected wall clock.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { HybridClock, MAX_COUNTER, parseTimestampId, timestampId, type HlcTimestamp } from '../../lib/core/hybrid-clock.js';

/** (wall, counter) order. */
function cmp(a: HlcTimestamp, b: HlcTimestamp): number {
  return a.wall !== b.wall ? a.wall - b.wall : a.counter - b.counter;
}

/** A wall clock the test moves by hand. */
function manualClock(start: number): { now: () => number; set: (t: number) => void } {
  let t = start;
  return { now: () => t, set: (v) => (t = v) };
}

const T0 = 1_700_000_000_000;
const MAX_WALL = 36 ** 9 - 1;

describe('HybridClock.tick', () => {
  it('follows the wall clock when it moves forward', () => {
    const wall = manualClock(T0);
    const clock = new HybridClock(wall.now);
    expect(clock.tick()).to.deep.equal({ wall: T0, counter: 0 });
    wall.set(T0 + 5);
    expect(clock.tick()).to.deep.equal({ wall: T0 + 5, counter: 0 });
  });

  it('strictly increases with a frozen wall clock', () => {
    const clock = new HybridClock(() => T0);
    let prev = clock.tick();
    for (let i = 0; i < 1000; i++) {
      const next = clock.tick();
      expect(cmp(next, prev), `tick ${i}: ${JSON.stringify(prev)} then ${JSON.stringify(next)}`).to.be.greaterThan(0);
      expect(next.wall).to.equal(T0);
      prev = next;
    }
  });

  it('strictly increases when the wall clock goes backwards, and never reports the earlier time', () => {
    const wall = manualClock(T0);
    const clock = new HybridClock(wall.now);
    const first = clock.tick();
    wall.set(T0 - 10_000);
    const second = clock.tick();
    const third = clock.tick();
    expect(cmp(second, first)).to.be.greaterThan(0);
    expect(cmp(third, second)).to.be.greaterThan(0);
    expect(second.wall).to.equal(T0);
    // Once the wall clock passes the old high-water mark, it is followed again with counter 0.
    wall.set(T0 + 1);
    expect(clock.tick()).to.deep.equal({ wall: T0 + 1, counter: 0 });
  });

  it('strictly increases under any sequence of wall-clock readings (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: T0 - 100_000, max: T0 + 100_000 }), { minLength: 1, maxLength: 200 }), (readings) => {
        let i = 0;
        const clock = new HybridClock(() => readings[Math.min(i, readings.length - 1)]);
        let prev: HlcTimestamp | null = null;
        for (; i < readings.length; i++) {
          const ts = clock.tick();
          if (prev) expect(cmp(ts, prev)).to.be.greaterThan(0);
          expect(ts.wall).to.be.at.least(readings[i]);
          prev = ts;
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('HybridClock.observe', () => {
  it('makes the next tick greater than a remote timestamp ahead in wall time', () => {
    const clock = new HybridClock(() => T0);
    clock.tick();
    const remote = { wall: T0 + 30_000, counter: 7 };
    clock.observe(remote);
    const next = clock.tick();
    expect(cmp(next, remote)).to.be.greaterThan(0);
    expect(next).to.deep.equal({ wall: T0 + 30_000, counter: 8 });
  });

  it('makes the next tick greater than a remote timestamp in the same millisecond with a higher counter', () => {
    const clock = new HybridClock(() => T0);
    clock.tick(); // (T0, 0)
    const remote = { wall: T0, counter: 41 };
    clock.observe(remote);
    expect(clock.tick()).to.deep.equal({ wall: T0, counter: 42 });
  });

  it('is not moved back by an older remote timestamp', () => {
    const clock = new HybridClock(() => T0);
    clock.tick();
    clock.tick(); // (T0, 1)
    clock.observe({ wall: T0 - 5, counter: 99 });
    clock.observe({ wall: T0, counter: 0 });
    expect(clock.tick()).to.deep.equal({ wall: T0, counter: 2 });
  });

  it('ignores a remote timestamp more than 60 s ahead of the local wall clock', () => {
    const clock = new HybridClock(() => T0);
    clock.tick();
    clock.observe({ wall: T0 + 60_001, counter: 0 });
    clock.observe({ wall: T0 + 10 * 365 * 24 * 3600 * 1000, counter: 5 });
    expect(clock.tick()).to.deep.equal({ wall: T0, counter: 1 });
    // Exactly 60 s ahead is still followed (the boundary).
    clock.observe({ wall: T0 + 60_000, counter: 3 });
    expect(clock.tick()).to.deep.equal({ wall: T0 + 60_000, counter: 4 });
  });

  it('orders every tick after every timestamp observed within 60 s (property)', () => {
    const event = fc.oneof(
      fc.record({ kind: fc.constant('tick' as const), advance: fc.integer({ min: -50, max: 50 }) }),
      fc.record({ kind: fc.constant('observe' as const), ahead: fc.integer({ min: -1000, max: 59_000 }), counter: fc.integer({ min: 0, max: 1000 }) }),
    );
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 100 }), (events) => {
        let now = T0;
        const clock = new HybridClock(() => now);
        let highest: HlcTimestamp = { wall: 0, counter: 0 };
        for (const e of events) {
          if (e.kind === 'tick') {
            now += e.advance;
            const ts = clock.tick();
            expect(cmp(ts, highest), `${JSON.stringify(ts)} after ${JSON.stringify(highest)}`).to.be.greaterThan(0);
            highest = ts;
          } else {
            const remote = { wall: now + e.ahead, counter: e.counter };
            clock.observe(remote);
            if (cmp(remote, highest) > 0) highest = remote;
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('timestampId / parseTimestampId', () => {
  it('round-trips a timestamp and keeps the node id as a suffix', () => {
    const ts = { wall: T0, counter: 12 };
    const id = timestampId(ts, 'node-a');
    expect(id).to.match(/^[0-9a-z]{13}-node-a$/);
    expect(parseTimestampId(id)).to.deep.equal(ts);
  });

  it('round-trips the extremes of the fixed width', () => {
    for (const ts of [{ wall: 0, counter: 0 }, { wall: MAX_WALL, counter: MAX_COUNTER }, { wall: 1, counter: MAX_COUNTER }]) {
      const id = timestampId(ts, 'n');
      expect(id.length).to.equal(15);
      expect(parseTimestampId(id)).to.deep.equal(ts);
    }
  });

  it('round-trips any (wall, counter) in range (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_WALL }), fc.integer({ min: 0, max: MAX_COUNTER }), fc.stringMatching(/^[0-9a-z-]{1,20}$/), (wall, counter, node) => {
        expect(parseTimestampId(timestampId({ wall, counter }, node))).to.deep.equal({ wall, counter });
      }),
      { numRuns: 500 },
    );
  });

  it('sorts ids lexicographically in timestamp order (property)', () => {
    const ts = fc.record({ wall: fc.integer({ min: 0, max: MAX_WALL }), counter: fc.integer({ min: 0, max: MAX_COUNTER }) });
    // Small walls too, so equal walls (and the counter deciding) come up often.
    const near = fc.record({ wall: fc.integer({ min: T0, max: T0 + 3 }), counter: fc.integer({ min: 0, max: 40 }) });
    const node = fc.stringMatching(/^[0-9a-f]{1,12}$/);
    fc.assert(
      fc.property(fc.oneof(ts, near), fc.oneof(ts, near), node, node, (a, b, na, nb) => {
        const ia = timestampId(a, na);
        const ib = timestampId(b, nb);
        const c = cmp(a, b);
        if (c < 0) expect(ia < ib, `${ia} < ${ib}`).to.equal(true);
        else if (c > 0) expect(ia > ib, `${ia} > ${ib}`).to.equal(true);
        else expect(Math.sign(ia < ib ? -1 : ia > ib ? 1 : 0)).to.equal(Math.sign(na < nb ? -1 : na > nb ? 1 : 0));
      }),
      { numRuns: 1000 },
    );
  });

  it('sorts a whole list of ids like their timestamps (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ wall: fc.integer({ min: 0, max: MAX_WALL }), counter: fc.integer({ min: 0, max: MAX_COUNTER }) }), {
          minLength: 2,
          maxLength: 50,
          selector: (t) => `${t.wall}:${t.counter}`,
        }),
        (list) => {
          const byTimestamp = [...list].sort(cmp);
          const byId = list.map((t) => timestampId(t, 'x')).sort();
          expect(byId.map((id) => parseTimestampId(id))).to.deep.equal(byTimestamp);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects strings that are not timestamp ids', () => {
    const good = timestampId({ wall: T0, counter: 3 }, 'abc');
    const garbage = [
      '',
      'x',
      '-',
      'hello world',
      good.slice(0, 13), // no node id
      good.slice(0, 14), // dash but no node id
      good.slice(0, 13) + '_abc', // wrong separator
      good.slice(1), // one digit short
      '0' + good, // one digit too many
      good.toUpperCase(),
      'zz zzzzzzzzzz-abc',
      '-000000000000-abc',
      '+00000000000a-abc',
      '0000000000.00-abc',
      '00000000000 0-abc',
      '\u00e9000000000000-a',
      '0_00000000000-abc',
    ];
    for (const s of garbage) expect(parseTimestampId(s), JSON.stringify(s)).to.equal(null);
  });

  it('never throws and never returns a non-integer on arbitrary strings (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 30 }), fc.stringMatching(/^[0-9a-zA-Z+.\- ]{13}-[a-z]{1,3}$/)), (s) => {
        const parsed = parseTimestampId(s);
        if (parsed !== null) {
          expect(Number.isSafeInteger(parsed.wall) && parsed.wall >= 0).to.equal(true);
          expect(Number.isSafeInteger(parsed.counter) && parsed.counter >= 0).to.equal(true);
          // Anything accepted is exactly what timestampId would make.
          expect(timestampId(parsed, s.slice(14))).to.equal(s);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('HybridClock: a spent counter', () => {
  it('moves to the next millisecond instead of growing an id past its fixed width (a peer sending counter zzzz)', () => {
    const clock = new HybridClock(() => T0);
    clock.observe({ wall: T0, counter: MAX_COUNTER });
    const next = clock.tick();
    expect(next).to.deep.equal({ wall: T0 + 1, counter: 0 });
    const id = timestampId(next, 'node');
    expect(parseTimestampId(id)).to.deep.equal(next);
    for (let i = 0; i < 5; i++) expect(parseTimestampId(timestampId(clock.tick(), 'node'))).to.not.equal(null);
  });

  it('ignores a remote counter out of range', () => {
    const clock = new HybridClock(() => T0);
    clock.observe({ wall: T0, counter: MAX_COUNTER + 1 });
    clock.observe({ wall: T0, counter: -1 });
    expect(clock.tick()).to.deep.equal({ wall: T0, counter: 0 });
  });
});
