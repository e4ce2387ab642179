import { expect } from 'chai';
import { tieBreak } from '../../lib/mesh/tie-break.js';

describe('duplicate-link tie-break', () => {
  const now = 1_000_000;
  const link = (dialerId: string, incarnation = 'i1', address = 'ws://127.0.0.1:1', lastSeen = now) => ({ dialerId, incarnation, address, lastSeen });

  it('keeps the link dialled by the smaller node id, whichever completed first', () => {
    expect(tieBreak(link('b'), link('a'), 4000, now)).to.equal('retire-old');
    expect(tieBreak(link('a'), link('b'), 4000, now)).to.equal('retire-new');
    expect(tieBreak(link('a'), link('a'), 4000, now)).to.equal('retire-new');
  });

  it('replaces the link of an older incarnation once that link is silent, from any address', () => {
    expect(tieBreak(link('a', 'i1', 'ws://h:1', now - 5000), link('a', 'i2'), 4000, now)).to.equal('replace-old');
    expect(tieBreak(link('a', 'i1', 'ws://h:1', now - 5000), link('a', 'i2', 'ws://h:2'), 4000, now)).to.equal('replace-old');
  });

  it('refuses a new incarnation while the linked one is alive, from another address or the same one', () => {
    expect(tieBreak(link('a', 'i1', 'ws://h:1', now - 100), link('a', 'i2', 'ws://h:2'), 4000, now)).to.equal('refuse-new');
    expect(tieBreak(link('a', 'i1', 'ws://h:1', now - 100), link('a', 'i2', 'ws://h:1'), 4000, now)).to.equal('refuse-new');
    expect(tieBreak(link('a', 'i1'), link('a', 'i2'), 4000, now)).to.equal('refuse-new');
  });
});
