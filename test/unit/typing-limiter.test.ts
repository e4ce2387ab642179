import { expect } from 'chai';
import { TypingLimiter } from '../../lib/core/typing-limiter.js';

describe('TypingLimiter', () => {
  it('lets one per (user, room) through per interval, and forgets what has expired', () => {
    let now = 1000;
    const limiter = new TypingLimiter(2000, () => now);
    expect(limiter.take('alice', 'r')).to.equal(true);
    expect(limiter.take('alice', 'r')).to.equal(false);
    expect(limiter.take('alice', 'other')).to.equal(true);
    expect(limiter.take('bob', 'r')).to.equal(true);
    now += 1999;
    expect(limiter.take('alice', 'r')).to.equal(false);
    now += 1;
    expect(limiter.take('alice', 'r')).to.equal(true);
    expect(limiter.size).to.equal(1); // the others expired and were swept
    // A name holding the separator cannot pass for another pair.
    expect(limiter.take('alice\u0000r', '')).to.equal(true);
  });
});
