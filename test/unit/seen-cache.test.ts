import { expect } from 'chai';
import { SeenCache } from '../../lib/mesh/seen-cache.js';

/** A hand-driven clock. */
function fakeClock(start = 0) {
  let t = start;
  return {
    now: () => t,
    set: (v: number) => {
      t = v;
    },
    advance: (ms: number) => {
      t += ms;
    },
  };
}

/** Small deterministic PRNG (mulberry32). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('SeenCache', () => {
  it('add returns true for a new id and false for a repeat', () => {
    const clock = fakeClock();
    const cache = new SeenCache(1000, 100, clock.now);
    expect(cache.add('a')).to.equal(true);
    expect(cache.add('a')).to.equal(false);
    expect(cache.add('a')).to.equal(false);
    expect(cache.size).to.equal(1);
  });

  it('tracks distinct ids independently', () => {
    const cache = new SeenCache(1000, 100, fakeClock().now);
    expect(cache.add('a')).to.equal(true);
    expect(cache.add('b')).to.equal(true);
    expect(cache.add('a')).to.equal(false);
    expect(cache.add('b')).to.equal(false);
    expect(cache.has('a')).to.equal(true);
    expect(cache.has('c')).to.equal(false);
    expect(cache.size).to.equal(2);
  });

  it('forgets an id once its TTL has passed (injected clock)', () => {
    const clock = fakeClock(5000);
    const cache = new SeenCache(1000, 100, clock.now);
    expect(cache.add('x')).to.equal(true);
    clock.set(5999);
    expect(cache.has('x')).to.equal(true);
    expect(cache.add('x')).to.equal(false);
    clock.set(6000); // exactly one TTL later: expired
    expect(cache.has('x')).to.equal(false);
    expect(cache.add('x')).to.equal(true);
    expect(cache.add('x')).to.equal(false);
  });

  it('prunes expired entries on add', () => {
    const clock = fakeClock();
    const cache = new SeenCache(100, 1000, clock.now);
    for (let i = 0; i < 50; i++) cache.add(`old-${i}`);
    expect(cache.size).to.equal(50);
    clock.advance(100);
    cache.add('new');
    expect(cache.size).to.equal(1);
    expect(cache.has('old-0')).to.equal(false);
    expect(cache.has('new')).to.equal(true);
  });

  it('keeps at most maxEntries ids and evicts the oldest first', () => {
    const max = 100;
    const extra = 37;
    const cache = new SeenCache(60_000, max, fakeClock().now);
    for (let i = 0; i < max + extra; i++) {
      expect(cache.add(`id-${i}`)).to.equal(true);
      expect(cache.size).to.be.at.most(max);
    }
    expect(cache.size).to.equal(max);
    for (let i = 0; i < extra; i++) expect(cache.has(`id-${i}`), `id-${i} should be evicted`).to.equal(false);
    for (let i = extra; i < max + extra; i++) expect(cache.has(`id-${i}`), `id-${i} should be kept`).to.equal(true);
    // The newest survivors still dedupe.
    expect(cache.add(`id-${max + extra - 1}`)).to.equal(false);
  });

  it('an evicted id counts as new again', () => {
    const cache = new SeenCache(60_000, 2, fakeClock().now);
    cache.add('a');
    cache.add('b');
    cache.add('c'); // evicts a
    expect(cache.add('a')).to.equal(true);
    expect(cache.has('b')).to.equal(false); // a's return evicted b, now the oldest
    expect(cache.has('c')).to.equal(true);
  });

  it('stays bounded by the ids added within one TTL over a long simulated run', () => {
    const ttl = 50;
    const clock = fakeClock();
    // maxEntries far above the window so only time-based pruning can keep the size down.
    const cache = new SeenCache(ttl, 1_000_000, clock.now);
    const rand = mulberry32(42);
    const window: number[] = []; // add times still inside (now - ttl, now]
    let maxSize = 0;
    for (let i = 0; i < 100_000; i++) {
      clock.advance(Math.floor(rand() * 4)); // 0..3 ms between ids, several ids per tick at times
      const now = clock.now();
      if (!cache.add(`m-${i}`)) expect.fail(`m-${i} was reported as seen`);
      window.push(now);
      while (window.length > 0 && window[0] <= now - ttl) window.shift();
      if (cache.size > window.length) {
        expect.fail(`after ${i + 1} adds at t=${now}: size ${cache.size} > ${window.length} ids added within one TTL`);
      }
      maxSize = Math.max(maxSize, cache.size);
    }
    expect(clock.now()).to.be.greaterThan(100 * ttl); // the run really spanned many TTLs
    expect(maxSize).to.be.at.most(ttl * 3 + 1);
    expect(cache.size).to.equal(window.length);
  });
});
