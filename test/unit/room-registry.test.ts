import { expect } from 'chai';
import { RoomRegistry } from '../../lib/core/room-registry.js';

interface Member {
  name: string;
}

describe('RoomRegistry', () => {
  const a: Member = { name: 'a' };
  const b: Member = { name: 'b' };

  it('starts empty', () => {
    const reg = new RoomRegistry<Member>();
    expect(reg.size).to.equal(0);
    expect(reg.members('lobby').size).to.equal(0);
    expect(reg.has('lobby', a)).to.equal(false);
  });

  it('join returns true the first time and false for a repeat', () => {
    const reg = new RoomRegistry<Member>();
    expect(reg.join('lobby', a)).to.equal(true);
    expect(reg.join('lobby', a)).to.equal(false);
    expect(reg.join('lobby', b)).to.equal(true);
    expect(reg.members('lobby').size).to.equal(2);
  });

  it('one member can be in several rooms', () => {
    const reg = new RoomRegistry<Member>();
    expect(reg.join('r1', a)).to.equal(true);
    expect(reg.join('r2', a)).to.equal(true);
    expect(reg.size).to.equal(2);
    expect(reg.has('r1', a)).to.equal(true);
    expect(reg.has('r2', a)).to.equal(true);
    expect(reg.has('r3', a)).to.equal(false);
  });

  it('identifies members by identity, not by value', () => {
    const reg = new RoomRegistry<Member>();
    reg.join('lobby', a);
    expect(reg.has('lobby', { name: 'a' })).to.equal(false);
    expect(reg.join('lobby', { name: 'a' })).to.equal(true);
    expect(reg.members('lobby').size).to.equal(2);
  });

  it('leave returns true when the member was there and false otherwise', () => {
    const reg = new RoomRegistry<Member>();
    reg.join('lobby', a);
    reg.join('lobby', b);
    expect(reg.leave('lobby', a)).to.equal(true);
    expect(reg.leave('lobby', a)).to.equal(false);
    expect(reg.leave('unknown', a)).to.equal(false);
    expect(reg.leave('lobby', { name: 'b' })).to.equal(false);
    expect(reg.has('lobby', a)).to.equal(false);
    expect(reg.has('lobby', b)).to.equal(true);
    expect([...reg.members('lobby')]).to.deep.equal([b]);
  });

  it('drops a room as soon as its last member leaves', () => {
    const reg = new RoomRegistry<Member>();
    reg.join('r1', a);
    reg.join('r1', b);
    reg.join('r2', a);
    expect(reg.size).to.equal(2);
    reg.leave('r1', a);
    expect(reg.size).to.equal(2);
    reg.leave('r1', b);
    expect(reg.size).to.equal(1);
    expect(reg.members('r1').size).to.equal(0);
    reg.leave('r2', a);
    expect(reg.size).to.equal(0);
  });

  it('a failed leave does not create a room', () => {
    const reg = new RoomRegistry<Member>();
    reg.leave('ghost', a);
    reg.has('ghost', a);
    reg.members('ghost');
    expect(reg.size).to.equal(0);
  });

  it('members() of an unknown room is empty, and is not shared with a later room', () => {
    const reg = new RoomRegistry<Member>();
    const none = reg.members('nowhere');
    expect(none.size).to.equal(0);
    reg.join('nowhere', a);
    expect(none.size).to.equal(0);
    expect([...reg.members('nowhere')]).to.deep.equal([a]);
    expect(reg.members('elsewhere').size).to.equal(0);
  });

  it('a room can be rejoined after it was dropped', () => {
    const reg = new RoomRegistry<Member>();
    reg.join('lobby', a);
    reg.leave('lobby', a);
    expect(reg.join('lobby', a)).to.equal(true);
    expect(reg.size).to.equal(1);
    expect(reg.has('lobby', a)).to.equal(true);
  });

  it('room names are exact (case and unicode sensitive)', () => {
    const reg = new RoomRegistry<string>();
    reg.join('Lobby', 'x');
    expect(reg.has('lobby', 'x')).to.equal(false);
    reg.join('e\u0301', 'x');
    expect(reg.has('\u00e9', 'x')).to.equal(false);
    expect(reg.size).to.equal(2);
  });

  it('stays consistent over many joins and leaves', () => {
    const reg = new RoomRegistry<number>();
    const model = new Map<string, Set<number>>();
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 5000; i++) {
      const room = `r${rnd(20)}`;
      const member = rnd(10);
      const set = model.get(room) ?? new Set<number>();
      if (rnd(2) === 0) {
        expect(reg.join(room, member)).to.equal(!set.has(member));
        set.add(member);
        model.set(room, set);
      } else {
        expect(reg.leave(room, member)).to.equal(set.has(member));
        set.delete(member);
        if (set.size === 0) model.delete(room);
      }
      expect(reg.size).to.equal(model.size);
    }
    for (const [room, set] of model) expect(new Set(reg.members(room))).to.deep.equal(set);
  });
});
