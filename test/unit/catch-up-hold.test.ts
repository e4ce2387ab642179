/**
 * CatchUpHold on its own: what is held, what is released, in which order, and that a peer
 * that never completes (an older version, a slow link) only delays, never loses.
 */
import { expect } from 'chai';
import { CatchUpHold } from '../../lib/replication/catch-up-hold.js';

describe('CatchUpHold', () => {
  let out: string[];
  let hold: CatchUpHold;
  const p = (s: string) => Buffer.from(s);

  beforeEach(() => {
    out = [];
    hold = new CatchUpHold((room, payload) => out.push(`${room}:${payload}`), 50);
  });

  afterEach(() => hold.close());

  it('delivers at once when no catch-up is under way', () => {
    hold.offer('r', p('a'), 'a');
    expect(out).to.deep.equal(['r:a']);
  });

  it('holds every room from the link-up until the summary, then only the rooms awaiting a give', () => {
    hold.linked('B');
    hold.offer('r', p('1'), '1');
    hold.offer('s', p('2'), '2');
    expect(out).to.deep.equal([]);
    hold.awaiting('B', 'r');
    hold.summarised('B');
    expect(out).to.deep.equal(['s:2']);
    hold.offer('r', p('3'), '3');
    hold.given('B', 'r');
    expect(out).to.deep.equal(['s:2', 'r:1', 'r:3']);
    hold.offer('r', p('4'), '4');
    expect(out.at(-1)).to.equal('r:4');
  });

  it('keeps a room held until every peer catching up on it has given', () => {
    hold.linked('B');
    hold.linked('C');
    hold.awaiting('B', 'r');
    hold.awaiting('C', 'r');
    hold.summarised('B');
    hold.summarised('C');
    hold.offer('r', p('x'), 'x');
    hold.given('B', 'r');
    expect(out).to.deep.equal([]);
    hold.given('C', 'r');
    expect(out).to.deep.equal(['r:x']);
  });

  it('releases a peer that goes down, and one that never completes at its deadline', async () => {
    hold.linked('B');
    hold.offer('r', p('1'), '1');
    hold.release('B');
    expect(out).to.deep.equal(['r:1']);
    hold.linked('C'); // never sends a summary (an older peer)
    hold.offer('r', p('2'), '2');
    expect(out).to.deep.equal(['r:1']);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(out).to.deep.equal(['r:1', 'r:2']);
  });

  it('names the ids it holds per room (a joined reply leaves them out: they come live)', () => {
    hold.linked('B');
    hold.offer('r', p('1'), 'id-1');
    hold.offer('r', p('2'), 'id-2');
    expect([...(hold.heldIds('r') ?? [])]).to.deep.equal(['id-1', 'id-2']);
    expect(hold.heldIds('s')).to.equal(null);
    hold.summarised('B');
    expect(hold.heldIds('r')).to.equal(null);
  });

  it('ignores a give or summary from a peer it is not catching up with', () => {
    hold.awaiting('X', 'r');
    hold.offer('r', p('1'), '1');
    hold.given('X', 'r');
    hold.summarised('X');
    expect(out).to.deep.equal(['r:1']);
  });
});
