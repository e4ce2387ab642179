import { expect } from 'chai';
import fc from 'fast-check';
import {
  MAX_REVOCATION_TIME,
  RevocationTable,
  parseRevocationEntry,
  revokeSubject,
  revokeToken,
  type RevocationEntry,
} from '../../lib/auth/revocation.js';

const T = 1_700_000_000;
const token = (sub: string, iat: number | null, jti: string | null = null) => ({ sub, iat, jti });

const arbEntry: fc.Arbitrary<RevocationEntry> = fc.oneof(
  fc.record({ kind: fc.constant('jti' as const), jti: fc.constantFrom('j1', 'j2', 'j3'), until: fc.integer({ min: T, max: T + 100 }) }),
  fc.integer({ min: T, max: T + 100 }).chain((before) =>
    fc.record({
      kind: fc.constant('sub' as const),
      sub: fc.constantFrom('alice', 'bob'),
      before: fc.constant(before),
      until: fc.integer({ min: before, max: before + 100 }),
    })),
);

describe('token auth: revocation table', () => {
  it('revokes by jti, and by sub for tokens issued before (or without iat)', () => {
    const t = new RevocationTable([
      { kind: 'jti', jti: 'j1', until: T + 60 },
      { kind: 'sub', sub: 'alice', before: T, until: T + 3600 },
    ]);
    expect(t.size).to.equal(2);
    expect(t.isRevoked(token('bob', T, 'j1'))).to.equal(true);
    expect(t.isRevoked(token('bob', T, 'j2'))).to.equal(false);
    expect(t.isRevoked(token('alice', T - 1))).to.equal(true);
    expect(t.isRevoked(token('alice', null))).to.equal(true);
    expect(t.isRevoked(token('alice', T))).to.equal(false);
    expect(t.isRevoked(token('alicia', T - 1))).to.equal(false);
  });

  it('add is idempotent and says whether anything changed', () => {
    const t = new RevocationTable();
    const e: RevocationEntry = { kind: 'sub', sub: 'alice', before: T, until: T + 10 };
    expect(t.add(e)).to.equal(true);
    expect(t.add({ ...e })).to.equal(false);
    expect(t.add({ ...e, until: T + 5 })).to.equal(false);
    expect(t.add({ kind: 'jti', jti: 'j', until: T })).to.equal(true);
    expect(t.add({ kind: 'jti', jti: 'j', until: T - 1 })).to.equal(false);
    expect(t.size).to.equal(2);
  });

  it('merging two entries for a sub keeps the later before (and the later until), in either order', () => {
    const a: RevocationEntry = { kind: 'sub', sub: 'alice', before: T, until: T + 500 };
    const b: RevocationEntry = { kind: 'sub', sub: 'alice', before: T + 100, until: T + 200 };
    const expected = [{ kind: 'sub', sub: 'alice', before: T + 100, until: T + 500 }];
    expect(new RevocationTable([a, b]).entries()).to.deep.equal(expected);
    expect(new RevocationTable([b, a]).entries()).to.deep.equal(expected);
  });

  it('expire drops entries whose until has passed', () => {
    const t = new RevocationTable([
      { kind: 'jti', jti: 'j1', until: T },
      { kind: 'jti', jti: 'j2', until: T + 1 },
      { kind: 'sub', sub: 'alice', before: T - 10, until: T - 1 },
      { kind: 'sub', sub: 'bob', before: T - 10, until: T },
    ]);
    expect(t.expire(T)).to.equal(1);
    expect(t.entries().map((e) => (e.kind === 'jti' ? e.jti : e.sub))).to.deep.equal(['j1', 'j2', 'bob']);
    expect(t.expire(T + 1)).to.equal(2);
    expect(t.isRevoked(token('bob', null))).to.equal(false);
  });

  it('helpers: revokeSubject covers tokens of this second, revokeToken lasts until exp plus tolerance', () => {
    const s = revokeSubject('alice', T + 0.7, 3600, 30);
    expect(s).to.deep.equal({ kind: 'sub', sub: 'alice', before: T + 1, until: T + 1 + 3600 + 30 });
    const t = new RevocationTable([s]);
    expect(t.isRevoked(token('alice', T))).to.equal(true);
    expect(t.isRevoked(token('alice', T + 1))).to.equal(false);
    expect(revokeToken({ jti: 'j', exp: T + 0.2 }, 30)).to.deep.equal({ kind: 'jti', jti: 'j', until: T + 31 });
    expect(() => revokeToken({ jti: null, exp: T }, 30)).to.throw(/subject/);
  });

  it('serializes the same whatever the order, duplicates or way of merging (property)', () => {
    fc.assert(
      fc.property(fc.array(arbEntry, { maxLength: 30 }), fc.array(arbEntry, { maxLength: 30 }), (xs, ys) => {
        const one = new RevocationTable([...xs, ...ys]);
        const reversed = new RevocationTable([...ys, ...xs].reverse());
        const twice = new RevocationTable([...xs, ...xs, ...ys, ...ys]);
        // Two peers that merge each other's tables.
        const peerA = new RevocationTable(xs);
        const peerB = new RevocationTable(ys);
        for (const e of peerB.entries()) peerA.add(e);
        for (const e of new RevocationTable(xs).entries()) peerB.add(e);
        for (const t of [reversed, twice, peerA, peerB]) expect(t.serialize()).to.equal(one.serialize());
      }),
    );
  });

  it('a merged table revokes everything either part revoked (property)', () => {
    fc.assert(
      fc.property(fc.array(arbEntry, { maxLength: 20 }), fc.array(arbEntry, { maxLength: 20 }), (xs, ys) => {
        const parts = [new RevocationTable(xs), new RevocationTable(ys)];
        const merged = new RevocationTable([...xs, ...ys]);
        for (const sub of ['alice', 'bob']) {
          for (const jti of ['j1', 'j2', 'j3', null]) {
            for (const iat of [null, T - 1, T, T + 50, T + 101]) {
              const id = token(sub, iat, jti);
              if (parts.some((p) => p.isRevoked(id))) expect(merged.isRevoked(id)).to.equal(true);
            }
          }
        }
      }),
    );
  });

  it('round-trips through serialize and parseRevocationEntry', () => {
    const t = new RevocationTable([{ kind: 'sub', sub: 'bob', before: T, until: T + 1 }, { kind: 'jti', jti: 'z', until: T }, { kind: 'jti', jti: 'a', until: T }]);
    const text = t.serialize();
    expect(text).to.equal('[{"kind":"jti","jti":"a","until":1700000000},{"kind":"jti","jti":"z","until":1700000000},{"kind":"sub","sub":"bob","before":1700000000,"until":1700000001}]');
    const copy = new RevocationTable((JSON.parse(text) as unknown[]).map((v) => {
      const parsed = parseRevocationEntry(v);
      if (!parsed.ok) throw new Error(parsed.error);
      return parsed.entry;
    }));
    expect(copy.serialize()).to.equal(text);
  });

  describe('parseRevocationEntry (untrusted peers)', () => {
    const bad = (value: unknown, limits = {}) => expect(parseRevocationEntry(value, limits).ok, JSON.stringify(value)).to.equal(false);

    it('accepts good entries and copies only the known fields', () => {
      expect(parseRevocationEntry({ kind: 'jti', jti: 'j', until: T, extra: 'x'.repeat(1e5) })).to.deep.equal({ ok: true, entry: { kind: 'jti', jti: 'j', until: T } });
      expect(parseRevocationEntry({ kind: 'sub', sub: 's', before: T, until: T, __proto__: { x: 1 } })).to.deep.equal({ ok: true, entry: { kind: 'sub', sub: 's', before: T, until: T } });
    });

    it('refuses bad shapes, strings and numbers', () => {
      for (const v of [null, 'x', 42, [], [{ kind: 'jti', jti: 'j', until: T }]]) bad(v);
      bad({ kind: 'user', sub: 's', before: T, until: T });
      bad({ kind: 'jti', jti: '', until: T });
      bad({ kind: 'jti', jti: 'x'.repeat(257), until: T });
      bad({ kind: 'jti', jti: 7, until: T });
      bad({ kind: 'sub', sub: 'x'.repeat(129), before: T, until: T });
      bad({ kind: 'sub', sub: 's', until: T });
      for (const n of [-1, 1.5, NaN, Infinity, '1700000000', MAX_REVOCATION_TIME + 1, 2 ** 53]) {
        bad({ kind: 'jti', jti: 'j', until: n });
        bad({ kind: 'sub', sub: 's', before: n, until: T });
      }
      bad({ kind: 'sub', sub: 's', before: T + 1, until: T });
    });

    it('refuses entries that would live beyond the horizon', () => {
      bad({ kind: 'jti', jti: 'j', until: T + 1000 }, { nowSec: T, maxHorizonSec: 999 });
      expect(parseRevocationEntry({ kind: 'jti', jti: 'j', until: T + 999 }, { nowSec: T, maxHorizonSec: 999 }).ok).to.equal(true);
    });
  });
});
