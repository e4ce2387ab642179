import { expect } from 'chai';
import type { Identity } from '../../lib/auth/identity.js';
import { mayJoin, roomMatches } from '../../lib/auth/rooms.js';

const who = (role: Identity['role'], rooms: string[] | null = null) => ({ role, rooms });

describe('token auth: room permissions (mayJoin)', () => {
  it('treats * as a wildcard only at the end', () => {
    expect(roomMatches('team:*', 'team:x')).to.equal(true);
    expect(roomMatches('team:*', 'team:')).to.equal(true);
    expect(roomMatches('team:*', 'team')).to.equal(false);
    expect(roomMatches('team:*', 'other:x')).to.equal(false);
    expect(roomMatches('*', 'anything')).to.equal(true);
    expect(roomMatches('*', '')).to.equal(true);
    expect(roomMatches('a*b', 'a*b')).to.equal(true);
    expect(roomMatches('a*b', 'axb')).to.equal(false);
    expect(roomMatches('*:x', 'team:x')).to.equal(false);
    expect(roomMatches('a**', 'a*z')).to.equal(true);
    expect(roomMatches('a**', 'az')).to.equal(false);
    expect(roomMatches('lobby', 'lobby')).to.equal(true);
    expect(roomMatches('lobby', 'lobby2')).to.equal(false);
  });

  it('with a rooms list, the list decides for every role', () => {
    for (const role of ['customer', 'agent', 'service'] as const) {
      const id = who(role, ['lobby', 'team:*']);
      expect(mayJoin(id, 'lobby', false)).to.equal(true);
      expect(mayJoin(id, 'team:blue', false)).to.equal(true);
      expect(mayJoin(id, 'support:alice', true)).to.equal(false);
      expect(mayJoin(who(role, []), 'lobby', true)).to.equal(false);
      expect(mayJoin(who(role, ['*']), 'whatever', false)).to.equal(true);
    }
  });

  it('without a rooms list: agents and services anywhere, customers only in their own conversation', () => {
    expect(mayJoin(who('agent'), 'support:alice', false)).to.equal(true);
    expect(mayJoin(who('service'), 'x', false)).to.equal(true);
    expect(mayJoin(who('customer'), 'support:alice', true)).to.equal(true);
    expect(mayJoin(who('customer'), 'support:bob', false)).to.equal(false);
  });
});
