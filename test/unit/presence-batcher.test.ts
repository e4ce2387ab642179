/**
 * The presence batcher on its own: one frame per member per turn, the single-event shape kept
 * for a lone event, names netted, counts only above the limit (throttled, the last count
 * always sent), and the whole list when the room is back under it.
 */
import { expect } from 'chai';
import { PresenceTable } from '../../lib/core/presence-table.js';
import { RoomRegistry } from '../../lib/core/room-registry.js';
import type { ClientConnection } from '../../lib/gateway/client-connection.js';
import { OCCUPANCY_INTERVAL_MS, PresenceBatcher, memberView } from '../../lib/gateway/presence-batcher.js';
import { poll } from '../helpers/wait.js';

class FakeMember {
  readonly frames: Record<string, unknown>[] = [];
  sendFrame(_frame: Buffer, payload: Buffer): void {
    this.frames.push(JSON.parse(payload.toString()));
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

function setup(max: number) {
  const rooms = new RoomRegistry<ClientConnection>();
  const table = new PresenceTable('node-a');
  const counters = { deliveries: 0 };
  const batcher = new PresenceBatcher(rooms, table, max, counters);
  const members: FakeMember[] = [];
  let conn = 0;
  const join = (user: string, member = new FakeMember()) => {
    rooms.join('r', member as unknown as ClientConnection);
    table.localJoin(++conn, 'r', user);
    batcher.add('r', 'join', user, member as unknown as ClientConnection);
    members.push(member);
    return { member, conn };
  };
  return { rooms, table, batcher, counters, members, join };
}

describe('presence batcher', () => {
  let close: (() => void) | null = null;
  afterEach(() => close?.());

  it('a lone event keeps the single-event shape, and the joiner does not hear itself', async () => {
    const s = setup(10);
    close = () => s.batcher.close();
    const alice = s.join('alice').member;
    await turn();
    expect(alice.frames).to.deep.equal([]);
    const bob = s.join('bob').member;
    await turn();
    expect(alice.frames).to.deep.equal([{ type: 'presence', event: 'join', room: 'r', user: 'bob' }]);
    expect(bob.frames).to.deep.equal([]);
    expect(s.counters.deliveries).to.equal(1);
  });

  it('several events in a turn: one frame per member, each name once as it ended the turn', async () => {
    const s = setup(10);
    close = () => s.batcher.close();
    const alice = s.join('alice').member;
    await turn();
    s.join('bob');
    s.join('carol');
    const { conn } = s.join('dave');
    s.table.localLeave(conn, 'r');
    s.batcher.add('r', 'leave', 'dave');
    await turn();
    expect(alice.frames).to.deep.equal([{ type: 'presence', room: 'r', joined: ['bob', 'carol'], left: ['dave'] }]);
    expect(s.members.every((m) => m.frames.length === 1)).to.equal(true);
  });

  it('above the limit: occupancy at most once per interval, the last count always follows; members and joined carry the count', async () => {
    const s = setup(3);
    close = () => s.batcher.close();
    for (const user of ['a', 'b', 'c']) s.join(user);
    await turn();
    const first = s.members[0];
    expect(first.frames).to.deep.equal([{ type: 'presence', room: 'r', joined: ['a', 'b', 'c'], left: [] }]);
    expect(memberView(s.table, 'r', 3)).to.deep.equal({ members: ['a', 'b', 'c'] });
    s.join('d');
    await turn();
    expect(first.frames.at(-1)).to.deep.equal({ type: 'occupancy', room: 'r', count: 4 });
    expect(memberView(s.table, 'r', 3)).to.deep.equal({ count: 4, truncated: true });
    const sentAt = Date.now();
    s.join('e');
    await turn();
    s.join('f');
    await turn();
    expect(first.frames.filter((f) => f.type === 'occupancy')).to.have.length(1);
    await poll(() => first.frames.filter((f) => f.type === 'occupancy').length === 2, { timeoutMs: 3000, what: 'the trailing count' });
    expect(Date.now() - sentAt).to.be.at.least(OCCUPANCY_INTERVAL_MS - 50);
    expect(first.frames.at(-1)).to.deep.equal({ type: 'occupancy', room: 'r', count: 6 });
    expect(first.frames.some((f) => f.type === 'presence' && (f.joined as string[]).includes('e'))).to.equal(false);
    expect(s.batcher.occupancyRooms).to.equal(1);
  });

  it('back under the limit: the whole list once, then events again', async () => {
    const s = setup(2);
    close = () => s.batcher.close();
    const joins = ['a', 'b', 'c'].map((u) => s.join(u));
    await turn();
    const first = s.members[0];
    expect(first.frames.at(-1)).to.deep.equal({ type: 'occupancy', room: 'r', count: 3 });
    s.rooms.leave('r', joins[2].member as unknown as ClientConnection);
    s.table.localLeave(joins[2].conn, 'r');
    s.batcher.add('r', 'leave', 'c');
    await turn();
    expect(first.frames.at(-1)).to.deep.equal({ type: 'members', room: 'r', members: ['a', 'b'] });
    expect(s.batcher.occupancyRooms).to.equal(0);
    s.rooms.leave('r', joins[1].member as unknown as ClientConnection);
    s.table.localLeave(joins[1].conn, 'r');
    s.batcher.add('r', 'leave', 'b');
    await turn();
    expect(first.frames.at(-1)).to.deep.equal({ type: 'presence', event: 'leave', room: 'r', user: 'b' });
  });
});
