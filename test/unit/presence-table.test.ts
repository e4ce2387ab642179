/**
 * The presence table's per-room index: members() without a scan of every entry.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { PresenceTable } from '../../lib/core/presence-table.js';

const NOW = 1_700_000_000_000;

describe('PresenceTable.members: an index per room', () => {
  /** What members() was before the index: a scan of every entry. */
  const scan = (t: PresenceTable, room: string) => [...new Set(t.snapshots().flatMap((s) => s.members.filter((m) => m.room === room).map((m) => m.user)))].sort();
  /** The nodes with members in a room, by a scan (what nodesIn answers from its index). */
  const scanNodes = (t: PresenceTable, room: string) => t.snapshots().filter((s) => s.members.some((m) => m.room === room)).map((s) => s.origin).sort();

  it('agrees with a scan of every table (names and nodes) after any mix of local and remote joins, leaves, snapshots and drops', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('join' as const), conn: fc.nat(4), room: fc.constantFrom('r1', 'r2'), user: fc.constantFrom('ann', 'bob', 'cy') }),
      fc.record({ k: fc.constant('leave' as const), conn: fc.nat(4), room: fc.constantFrom('r1', 'r2') }),
      fc.record({ k: fc.constant('event' as const), origin: fc.constantFrom('o1', 'o2'), join: fc.boolean(), conn: fc.nat(4), room: fc.constantFrom('r1', 'r2'), user: fc.constantFrom('ann', 'bob', 'dee') }),
      fc.record({
        k: fc.constant('snapshot' as const),
        origin: fc.constantFrom('o1', 'o2'),
        members: fc.array(fc.record({ conn: fc.nat(4), room: fc.constantFrom('r1', 'r2'), user: fc.constantFrom('ann', 'eve') }), { maxLength: 6 }),
      }),
      fc.record({ k: fc.constant('drop' as const), origin: fc.constantFrom('o1', 'o2') }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const t = new PresenceTable('self', () => NOW);
        let version = 1;
        for (const o of ops) {
          if (o.k === 'join') t.localJoin(o.conn, o.room, o.user);
          else if (o.k === 'leave') t.localLeave(o.conn, o.room);
          else if (o.k === 'event') t.applyEvent(o.origin, version++, o.join ? 'join' : 'leave', { conn: o.conn, room: o.room, user: o.user });
          else if (o.k === 'snapshot') t.applySnapshot({ origin: o.origin, version: version++, members: o.members });
          else t.dropOrigin(o.origin);
          for (const room of ['r1', 'r2', 'r3']) {
            expect(t.members(room), `${room} after ${JSON.stringify(o)}`).to.deep.equal(scan(t, room));
            expect([...t.nodesIn(room)].sort(), `nodes in ${room} after ${JSON.stringify(o)}`).to.deep.equal(scanNodes(t, room));
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('lists a name once however many connections and origins hold it, until the last leaves', () => {
    const t = new PresenceTable('self', () => NOW);
    t.localJoin(1, 'lobby', 'ann');
    t.localJoin(2, 'lobby', 'ann');
    t.applyEvent('o1', 1, 'join', { conn: 7, room: 'lobby', user: 'ann' });
    expect(t.members('lobby')).to.deep.equal(['ann']);
    t.localLeave(1, 'lobby');
    t.dropOrigin('o1');
    expect(t.members('lobby')).to.deep.equal(['ann']);
    t.localLeave(2, 'lobby');
    expect(t.members('lobby')).to.deep.equal([]);
  });
});
