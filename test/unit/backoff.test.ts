import { expect } from 'chai';
import { Backoff } from '../../lib/links/backoff.js';

const ALMOST_ONE = 0.999999;

describe('Backoff', () => {
  it('with random≈1 the delays follow base, 2·base, 4·base… capped at max', () => {
    const b = new Backoff(100, 1000, () => ALMOST_ONE);
    const delays = Array.from({ length: 8 }, () => b.next());
    // floor(0.999999 * ceiling) = ceiling - 1 for these ceilings
    expect(delays).to.deep.equal([99, 199, 399, 799, 999, 999, 999, 999]);
  });

  it('caps at max even when max is not a power-of-two multiple of base', () => {
    const b = new Backoff(300, 1000, () => ALMOST_ONE);
    expect([b.next(), b.next(), b.next(), b.next()]).to.deep.equal([299, 599, 999, 999]);
  });

  it('does not overflow after very many attempts', () => {
    const b = new Backoff(250, 5000, () => ALMOST_ONE);
    let last = -1;
    for (let i = 0; i < 200; i++) last = b.next();
    expect(last).to.equal(4999);
    expect(b.attempts).to.equal(200);
  });

  it('with random 0 every delay is 0', () => {
    const b = new Backoff(100, 1000, () => 0);
    for (let i = 0; i < 20; i++) expect(b.next()).to.equal(0);
    expect(b.attempts).to.equal(20);
  });

  it('counts attempts and reset() starts again from base', () => {
    const b = new Backoff(100, 10_000, () => ALMOST_ONE);
    expect(b.attempts).to.equal(0);
    b.next();
    b.next();
    b.next();
    expect(b.attempts).to.equal(3);
    b.reset();
    expect(b.attempts).to.equal(0);
    expect(b.next()).to.equal(99);
    expect(b.next()).to.equal(199);
  });

  it('scales the random draw across [0, ceiling)', () => {
    const b = new Backoff(1000, 100_000, () => 0.5);
    expect([b.next(), b.next(), b.next()]).to.deep.equal([500, 1000, 2000]);
  });

  it('is never negative, never above max nor the current ceiling, over 1000 draws of Math.random', () => {
    const base = 250;
    const max = 5000;
    const b = new Backoff(base, max);
    let resets = 0;
    let n = 0;
    for (let i = 0; i < 1000; i++) {
      if (i % 97 === 96) {
        b.reset();
        n = 0;
        resets++;
      }
      const d = b.next();
      expect(Number.isInteger(d), `draw ${i}: ${d}`).to.equal(true);
      expect(d).to.be.at.least(0);
      expect(d).to.be.at.most(max);
      expect(d).to.be.at.most(Math.min(max, base * 2 ** n));
      n++;
    }
    expect(resets).to.be.greaterThan(0);
  });
});
