/**
 * The fault campaign's checker (test/chaos/checker.ts) over hand-made histories: each check
 * passes a clean history and fails the history that breaks it, so a campaign that reports
 * nothing is known to be able to report something.
 */
import { expect } from 'chai';
import { check, checkCrashes, checkDiverged, checkDuplicates, checkLost, checkResumes, checkResurrected } from '../chaos/checker.js';
import type { FinalState, HistoryEvent, Key } from '../chaos/history.js';

const k = (ts: number, node = 'aaaaaaaaaaaa'): Key => ({ ts, id: `${ts.toString(36).padStart(9, '0')}0000-${node}` });
const m1 = k(1000);
const m2 = k(1005);
const m3 = k(1010);
const m4 = k(1020);
const i00 = { slot: 0, incarnation: 0 };
const i10 = { slot: 1, incarnation: 0 };
const i20 = { slot: 2, incarnation: 0 };

/** The same history of every conversation on all three instances. */
function final(convs: Record<string, Key[] | null>, converged = true): FinalState {
  return { histories: [convs, convs, convs].map((c) => ({ ...c })), converged };
}

function msg(client: number, conn: number, room: string, key: Key, at: { slot: number; incarnation: number }, echo = false, t = 0): HistoryEvent {
  return { type: 'ws-message', t, client, conn, room, key, user: `c${client}`, echo, ...at };
}

function joined(client: number, conn: number, room: string, history: Key[], at: { slot: number; incarnation: number }, resume?: { since: Key; gap: boolean }, t = 0): HistoryEvent {
  return { type: 'ws-joined', t, client, conn, room, history, ...(resume ?? {}), ...at };
}

describe('chaos checker', () => {
  it('a clean history passes every check', () => {
    const events: HistoryEvent[] = [
      { type: 'start', t: 0, nodeId: 'n0', ...i00 },
      joined(0, 1, 'r', [], i00),
      msg(0, 1, 'r', m1, i00, true, 10),
      msg(0, 1, 'r', m2, i00, false, 20),
      { type: 'exit', t: 30, byNemesis: true, code: null, signal: 'SIGKILL', ...i00 },
      joined(0, 2, 'r', [m3], i10, { since: m2, gap: false }, 40),
      { type: 'rest-created', t: 5, writer: 0, conv: 'c', ...i10 },
      { type: 'rest-posted', t: 6, writer: 0, conv: 'c', key: m1, ...i10 },
      { type: 'rest-posted', t: 7, writer: 0, conv: 'c', key: m2, ...i10 },
      { type: 'rest-deleted', t: 8, writer: 0, conv: 'c', id: m2.id, ...i20 },
    ];
    const result = check(events, final({ r: [m1, m2, m3], c: [m1] }), { dataDir: false });
    expect(result.ok, JSON.stringify(result)).to.equal(true);
    expect(result.figures.acknowledged).to.deep.equal({ restMessages: 2, wsMessages: 1, conversations: 1, deletes: 1, total: 5 });
    expect(result.figures.resumes).to.equal(1);
  });

  it('an exit the nemesis did not cause is a crash', () => {
    const events: HistoryEvent[] = [
      { type: 'exit', t: 5, byNemesis: true, code: null, signal: 'SIGKILL', ...i00 },
      { type: 'exit', t: 9, byNemesis: false, code: 1, signal: null, ...i10 },
    ];
    expect(checkCrashes(events)).to.deep.equal([{ slot: 1, incarnation: 0, t: 9, code: 1, signal: null }]);
  });

  describe('lost writes', () => {
    it('an acknowledged message missing while its holder ran to the end is lost', () => {
      const events: HistoryEvent[] = [{ type: 'rest-posted', t: 6, writer: 0, conv: 'c', key: m1, ...i10 }];
      const lost = checkLost(events, final({ c: [] }), { dataDir: false });
      expect(lost).to.have.length(1);
      expect(lost[0]).to.include({ what: 'message', id: m1.id, via: 'rest' });
      expect(lost[0]!.holders).to.deep.equal([{ slot: 1, incarnation: 0, survived: true }]);
    });

    it('not when every holder was killed; but with DATA_DIR it is', () => {
      const events: HistoryEvent[] = [
        { type: 'rest-posted', t: 6, writer: 0, conv: 'c', key: m1, ...i10 },
        { type: 'exit', t: 7, byNemesis: true, code: null, signal: 'SIGKILL', ...i10 },
        { type: 'start', t: 9, nodeId: 'x', slot: 1, incarnation: 1 },
      ];
      expect(checkLost(events, final({ c: [] }), { dataDir: false })).to.deep.equal([]);
      expect(checkLost(events, final({ c: [] }), { dataDir: true })).to.have.length(1);
    });

    it('an instance a client received the message from holds it too', () => {
      const events: HistoryEvent[] = [
        msg(0, 1, 'r', m1, i00, true, 6),
        { type: 'exit', t: 7, byNemesis: true, code: null, signal: 'SIGKILL', ...i00 },
        // another client saw it on slot 2, which ran to the end
        joined(1, 1, 'r', [m1], i20, undefined, 8),
      ];
      const lost = checkLost(events, final({ r: [] }), { dataDir: false });
      expect(lost.map((l) => l.id)).to.deep.equal([m1.id]);
      expect(lost[0]!.holders).to.deep.include({ slot: 2, incarnation: 0, survived: true });
    });

    it('a message whose delete was attempted (answered or timed out) may be gone', () => {
      const events: HistoryEvent[] = [
        { type: 'rest-posted', t: 6, writer: 0, conv: 'c', key: m1, ...i10 },
        { type: 'rest-posted', t: 6, writer: 0, conv: 'c', key: m2, ...i10 },
        { type: 'rest-deleted', t: 7, writer: 0, conv: 'c', id: m1.id, ...i10 },
        { type: 'rest-unknown', t: 7, writer: 0, op: 'delete', conv: 'c', id: m2.id, error: 'timeout', ...i00 },
      ];
      expect(checkLost(events, final({ c: [] }), { dataDir: false })).to.deep.equal([]);
    });

    it('an acknowledged conversation that no instance has is lost', () => {
      const events: HistoryEvent[] = [{ type: 'rest-created', t: 6, writer: 0, conv: 'c', ...i10 }];
      expect(checkLost(events, final({ c: [] }), { dataDir: false })).to.deep.equal([]);
      expect(checkLost(events, final({ c: null }), { dataDir: false }).map((l) => l.what)).to.deep.equal(['conversation']);
    });
  });

  it('instances with different histories have diverged', () => {
    const state: FinalState = { histories: [{ c: [m1, m2] }, { c: [m1] }, { c: [m1, m2] }], converged: false };
    const d = checkDiverged(state);
    expect(d).to.have.length(1);
    expect(d[0]!.detail).to.contain(`slot 1: 1 messages, missing ${m2.id}`);
    expect(checkDiverged(final({ c: [m1] }))).to.deep.equal([]);
  });

  it('a message deleted with a 204 that is back is resurrected', () => {
    const events: HistoryEvent[] = [{ type: 'rest-deleted', t: 7, writer: 0, conv: 'c', id: m1.id, ...i10 }];
    expect(checkResurrected(events, final({ c: [m1, m2] }), { dataDir: false })).to.deep.equal([
      { conv: 'c', id: m1.id, slots: [0, 1, 2], deletedAt: 7, holders: [{ slot: 1, incarnation: 0, survived: true }] },
    ]);
    expect(checkResurrected(events, final({ c: [m2] }), { dataDir: false })).to.deep.equal([]);
  });

  it('unless every process that held the delete was killed (not with DATA_DIR)', () => {
    const killed: HistoryEvent[] = [
      { type: 'rest-deleted', t: 7, writer: 0, conv: 'c', id: m1.id, ...i10 },
      { type: 'exit', t: 8, byNemesis: true, code: null, signal: 'SIGKILL', ...i10 },
    ];
    expect(checkResurrected(killed, final({ c: [m1] }), { dataDir: false })).to.deep.equal([]);
    expect(checkResurrected(killed, final({ c: [m1] }), { dataDir: true })).to.have.length(1);
    // a client got the deleted frame from slot 2, which ran to the end: it held the delete
    const seen: HistoryEvent[] = [...killed, { type: 'ws-deleted', t: 7, client: 0, conn: 1, room: 'c', id: m1.id, ...i20 }];
    expect(checkResurrected(seen, final({ c: [m1] }), { dataDir: false }).map((r) => r.id)).to.deep.equal([m1.id]);
  });

  it('the same id twice on one connection is a duplicate, on two connections it is not', () => {
    const events: HistoryEvent[] = [
      joined(0, 1, 'r', [m1], i00),
      msg(0, 1, 'r', m1, i00),
      msg(0, 1, 'r', m2, i00),
      joined(0, 2, 'r', [m2], i10, { since: m1, gap: false }),
    ];
    expect(checkDuplicates(events)).to.deep.equal([{ client: 0, conn: 1, id: m1.id, count: 2 }]);
  });

  describe('resumes', () => {
    it('a gap:false resume that misses a message sorting before its since is broken', () => {
      // m1 (ts 1000) was written on the other side of a partition; the client saw m2 (ts 1005),
      // left, and resumed from m2 after m1 had arrived: the server replays only what sorts after m2.
      const events: HistoryEvent[] = [
        joined(0, 1, 'r', [], i00, undefined, 0),
        msg(0, 1, 'r', m2, i00, false, 10),
        joined(0, 2, 'r', [m3], i10, { since: m2, gap: false }, 50),
        msg(0, 2, 'r', m4, i10, false, 60),
      ];
      const broken = checkResumes(events, final({ r: [m1, m2, m3, m4] }));
      expect(broken).to.have.length(1);
      expect(broken[0]).to.deep.include({ client: 0, room: 'r', missing: m1, newest: m4, excuse: null });
      expect(broken[0]!.resume).to.deep.equal({ conn: 2, t: 50, since: m2, slot: 1, incarnation: 0 });
      expect(broken[0]!.firstSeen).to.equal(null);
      expect(broken[0]!.heldAtResume).to.equal(false);
    });

    it('the resume blamed is the last one that skipped the message, with proof when its instance held it', () => {
      const events: HistoryEvent[] = [
        joined(0, 1, 'r', [], i00, undefined, 0),
        msg(0, 1, 'r', m2, i00, false, 10),
        // m1 is on slot 2 only (cut off): this resume could not have carried it
        joined(0, 2, 'r', [], i10, { since: m2, gap: false }, 20),
        msg(1, 1, 'r', m1, i20, true, 25),
        // slot 1 got m1 by catch-up while client 0 was away; another client saw it there
        msg(2, 1, 'r', m1, i10, false, 30),
        joined(0, 3, 'r', [m3], i10, { since: m2, gap: false }, 40),
      ];
      const broken = checkResumes(events, final({ r: [m1, m2, m3] }));
      expect(broken).to.have.length(1);
      expect(broken[0]!.resume).to.deep.include({ conn: 3, t: 40 });
      expect(broken[0]!.firstSeen).to.deep.equal({ t: 25, slot: 2 });
      expect(broken[0]!.heldAtResume).to.equal(true);
      expect(check(events, final({ r: [m1, m2, m3, m4] }), { dataDir: false }).ok).to.equal(false);
    });

    it('a live delivery that misses a message is broken too (no resume to blame)', () => {
      const events: HistoryEvent[] = [joined(0, 1, 'r', [], i00), msg(0, 1, 'r', m1, i00), msg(0, 1, 'r', m3, i00)];
      const broken = checkResumes(events, final({ r: [m1, m2, m3] }));
      expect(broken.map((b) => [b.missing.id, b.resume])).to.deep.equal([[m2.id, null]]);
    });

    it('gap:true excuses what sorts before the first message of its history', () => {
      const events: HistoryEvent[] = [
        joined(0, 1, 'r', [], i00),
        msg(0, 1, 'r', m1, i00),
        joined(0, 2, 'r', [m3, m4], i10, { since: m1, gap: true }),
      ];
      expect(checkResumes(events, final({ r: [m1, m2, m3, m4] }))).to.deep.equal([]);
    });

    it('gap:true with an empty history excuses nothing: the catch-up must arrive live', () => {
      const events: HistoryEvent[] = [
        joined(0, 1, 'r', [], i00),
        msg(0, 1, 'r', m1, i00),
        joined(0, 2, 'r', [], { slot: 0, incarnation: 1 }, { since: m1, gap: true }),
        msg(0, 2, 'r', m3, { slot: 0, incarnation: 1 }),
      ];
      expect(checkResumes(events, final({ r: [m1, m2, m3] })).map((b) => b.missing.id)).to.deep.equal([m2.id]);
    });

    it('a first join excuses what sorts before its history; what is newer than the newest received is not owed', () => {
      const events: HistoryEvent[] = [joined(0, 1, 'r', [m2], i00), msg(0, 1, 'r', m3, i00)];
      expect(checkResumes(events, final({ r: [m1, m2, m3, m4] }))).to.deep.equal([]);
    });
  });
});
