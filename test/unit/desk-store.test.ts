/**
 * The support desk's writes in the store on their own (issue 13): status, assignee and
 * metadata registers, read cursors, edits and client ids give the same state and digest in
 * every order, with duplicates; catch-up between two stores that saw different writes makes
 * them equal; a snooze ends by itself; unread counts and the inbox (filters, order, cursor).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ConversationStore, type StoreOptions, type StoreWrite } from '../../lib/core/conversation-store.js';
import { HybridClock, timestampId } from '../../lib/core/hybrid-clock.js';
import { conversationItem, decodeCursor, effectiveStatus, encodeCursor, inbox, unreadCount } from '../../lib/core/inbox.js';

const T0 = 1_700_000_000_000;
const HOUR = 3600_000;
const OPTIONS: StoreOptions = { conversationTtlMs: 1000 * HOUR, maxMessagesPerConversation: 1000, maxConversations: 1000, maxStoreBytes: Number.MAX_SAFE_INTEGER };

function makeStore(options: Partial<StoreOptions> = {}, now = () => T0 + 10_000): ConversationStore {
  return new ConversationStore({ ...OPTIONS, ...options }, 'node', new HybridClock(now), now);
}
const id = (ms: number, node = 'n1') => timestampId({ wall: T0 + ms, counter: 0 }, node);
const R = 'room';

const m1: StoreWrite = { type: 'message', room: R, id: id(10), user: 'alice', text: 'first', ts: T0 + 10, by: 'alice', cid: 'c1' };
const m2: StoreWrite = { type: 'message', room: R, id: id(20, 'n2'), user: 'agent', text: 'second', ts: T0 + 20, by: 'agent-7' };
const m3: StoreWrite = { type: 'message', room: R, id: id(30), user: 'alice', text: 'third', ts: T0 + 30, by: 'alice' };
const m4: StoreWrite = { type: 'message', room: R, id: id(40, 'n2'), user: 'agent', text: 'fourth', ts: T0 + 40, by: 'agent-7', cid: 'c1' };
/** The same client id again, stored on another node (a partition): the smallest id is the answer. */
const m1bis: StoreWrite = { type: 'message', room: R, id: id(35, 'n2'), user: 'alice', text: 'first', ts: T0 + 35, by: 'alice', cid: 'c1' };

const writes: StoreWrite[] = [
  { type: 'created', room: R, id: id(1), owner: 'alice' },
  m1, m2, m3, m4, m1bis,
  { type: 'deleted', room: R, id: m3.id, ts: m3.ts, at: id(50) },
  { type: 'field', room: R, id: id(60), f: 'status', v: 'pending' },
  { type: 'field', room: R, id: id(61, 'n2'), f: 'status', v: 'resolved', by: 'agent-7' },
  { type: 'field', room: R, id: id(62), f: 'assignee', v: 'agent-7' },
  { type: 'field', room: R, id: id(63, 'n2'), f: 'assignee', v: null },
  { type: 'field', room: R, id: id(64), f: 'metadata', v: { plan: 'pro', seats: 3 } },
  { type: 'read', room: R, id: id(70), user: 'agent-7', upTo: m1.id, at: m1.ts },
  // Later id, earlier position: the cursor never moves back.
  { type: 'read', room: R, id: id(80, 'n2'), user: 'agent-7', upTo: m1.id, at: m1.ts },
  { type: 'read', room: R, id: id(71), user: 'alice', upTo: m2.id, at: m2.ts },
  { type: 'edited', room: R, id: id(90), msg: m1.id, text: 'first, edited', ts: m1.ts, by: 'alice' },
  { type: 'edited', room: R, id: id(91, 'n2'), msg: m1.id, text: 'first, edited again', ts: m1.ts, by: 'agent-7' },
  // An edit of a deleted message: the delete wins.
  { type: 'edited', room: R, id: id(92), msg: m3.id, text: 'never shown', ts: m3.ts },
];

function stateOf(store: ConversationStore) {
  const conv = store.conversation(R)!;
  return {
    history: store.history(R),
    digest: store.digestOf(R),
    ids: [...store.idsOf(R)].sort(),
    item: conversationItem(conv, T0 + 10_000, 'agent-7'),
    unreadAlice: unreadCount(conv, 'alice'),
    dedupe: store.sentWithClientId(R, 'alice', 'c1')?.id,
  };
}

describe('desk store: registers, read cursors, edits and client ids', () => {
  it('every order of the writes, with duplicates, gives the same state and digest', () => {
    const reference = makeStore();
    for (const w of writes) reference.apply(w);
    const expected = stateOf(reference);
    expect(expected.history!.map((m) => m.content)).to.deep.equal(['first, edited again', 'second', 'first', 'fourth']);
    expect(expected.history![0].editedAt).to.equal(T0 + 91);
    expect(expected.history![1]).to.not.have.property('editedAt');
    expect(expected.item).to.include({ status: 'resolved', assignee: null, unread: 1 }) // m1bis: after its cursor (m1), not its own;
    expect(expected.item.metadata).to.deep.equal({ plan: 'pro', seats: 3 });
    expect(expected.unreadAlice).to.equal(1); // m4 (m3 is deleted; m1bis is alice's own)
    expect(expected.dedupe).to.equal(m1.id);
    fc.assert(
      fc.property(fc.array(fc.nat(writes.length - 1), { maxLength: 5 }), fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })), (dups, randoms) => {
        const order = [...writes, ...dups.map((i) => writes[i])];
        const it = randoms[Symbol.iterator]();
        order.sort(() => (it.next().value as number) - 0.5);
        const store = makeStore();
        for (const w of order) store.apply(w);
        expect(stateOf(store)).to.deep.equal(expected);
      }),
      { numRuns: 300, seed: 13 },
    );
  });

  it('catch-up between two stores that saw different writes makes them equal (both ways)', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: writes.length, maxLength: writes.length }), (split) => {
        const a = makeStore();
        const b = makeStore();
        writes.forEach((w, i) => (split[i] ? a : b).apply(w));
        for (const [to, from] of [[b, a], [a, b]] as const) {
          for (const entry of from.summary()) {
            if (to.digestOf(entry.c) === entry.d) continue;
            for (const w of from.writesMissingFrom(entry.c, new Set(to.idsOf(entry.c)))) to.apply(w);
          }
        }
        const full = makeStore();
        for (const w of writes) full.apply(w);
        expect(stateOf(a)).to.deep.equal(stateOf(full));
        expect(stateOf(b)).to.deep.equal(stateOf(full));
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  it('a losing write is a duplicate and changes nothing; the digest counts only winners', () => {
    const a = makeStore();
    a.apply(writes[0]);
    a.apply({ type: 'field', room: R, id: id(100), f: 'status', v: 'pending' });
    const digest = a.digestOf(R);
    expect(a.apply({ type: 'field', room: R, id: id(99), f: 'status', v: 'resolved' })).to.equal('duplicate');
    expect(a.digestOf(R)).to.equal(digest);
    // A store that only ever saw the winner has the same digest.
    const b = makeStore();
    b.apply(writes[0]);
    b.apply({ type: 'field', room: R, id: id(99), f: 'status', v: 'resolved' });
    b.apply({ type: 'field', room: R, id: id(100), f: 'status', v: 'pending' });
    expect(b.digestOf(R)).to.equal(digest);
  });

  it('a snooze reads as open once its until has passed, without any write', () => {
    const store = makeStore();
    store.apply(writes[0]);
    store.apply({ type: 'field', room: R, id: id(100), f: 'status', v: 'snoozed', until: T0 + 5000 });
    const conv = store.conversation(R)!;
    expect(effectiveStatus(conv, T0 + 4999)).to.deep.equal({ status: 'snoozed', snoozedUntil: T0 + 5000 });
    expect(effectiveStatus(conv, T0 + 5000)).to.deep.equal({ status: 'open' });
  });

  it('an edit trimmed out of the window with its message leaves nothing behind', () => {
    const store = makeStore({ maxMessagesPerConversation: 2 });
    store.apply(writes[0]);
    store.apply(m1);
    store.apply({ type: 'edited', room: R, id: id(90), msg: m1.id, text: 'edited', ts: m1.ts });
    const bytesWithEdit = store.usage().bytes;
    store.apply(m2);
    store.apply(m3);
    expect(store.usage().bytes).to.be.lessThan(bytesWithEdit + 1000);
    expect(store.idsOf(R).filter((x) => x.startsWith('e:'))).to.deep.equal([]);
    // An edit of a message older than the full window is moot.
    expect(store.apply({ type: 'edited', room: R, id: id(95), msg: m1.id, text: 'late', ts: m1.ts })).to.equal('ignored');
  });
});

describe('inbox: filters, order (updatedAt desc, then id), cursor', () => {
  function deskStore(): ConversationStore {
    const store = makeStore();
    const rooms = ['c-a', 'c-b', 'c-c', 'c-d', 'c-e'];
    rooms.forEach((room, i) => store.apply({ type: 'created', room, id: id(i), ...(i % 2 === 0 && { owner: 'alice' }) }));
    store.apply({ type: 'message', room: 'c-c', id: id(100), user: 'alice', text: 'x'.repeat(300), ts: T0 + 100, by: 'alice' });
    store.apply({ type: 'field', room: 'c-a', id: id(200), f: 'status', v: 'resolved' });
    store.apply({ type: 'field', room: 'c-b', id: id(200), f: 'assignee', v: 'agent-7' });
    // A read cursor is no activity: c-e keeps its place.
    store.apply({ type: 'read', room: 'c-e', id: id(300), user: 'alice', upTo: id(100), at: T0 + 100 });
    return store;
  }

  it('sorts by updatedAt, newest first, then by id; previews the last message in 200 characters', () => {
    const page = inbox(makeIterable(deskStore()), { limit: 50 }, T0 + 10_000);
    expect(page.items.map((i) => i.id)).to.deep.equal(['c-a', 'c-b', 'c-c', 'c-e', 'c-d']);
    expect(page.next).to.equal(null);
    const c = page.items.find((i) => i.id === 'c-c')!;
    expect(c.lastMessage!.content).to.have.length(200);
    expect(c.createdAt).to.equal(T0 + 2);
    expect(page.items.find((i) => i.id === 'c-d')!.lastMessage).to.equal(null);
  });

  it('filters by status, assignee (null: unassigned), updatedSince and owner', () => {
    const store = deskStore();
    const ids = (q: Parameters<typeof inbox>[1]) => inbox(makeIterable(store), q, T0 + 10_000).items.map((i) => i.id);
    expect(ids({ limit: 50, status: 'resolved' })).to.deep.equal(['c-a']);
    expect(ids({ limit: 50, status: 'open' })).to.deep.equal(['c-b', 'c-c', 'c-e', 'c-d']);
    expect(ids({ limit: 50, assignee: 'agent-7' })).to.deep.equal(['c-b']);
    expect(ids({ limit: 50, assignee: null })).to.deep.equal(['c-a', 'c-c', 'c-e', 'c-d']);
    expect(ids({ limit: 50, updatedSince: T0 + 100 })).to.deep.equal(['c-a', 'c-b', 'c-c']);
    expect(ids({ limit: 50, owner: 'alice' })).to.deep.equal(['c-a', 'c-c', 'c-e']);
  });

  it('pages with an opaque cursor: every conversation once, none skipped', () => {
    const store = deskStore();
    const seen: string[] = [];
    let after;
    for (let n = 0; n < 10; n++) {
      const page = inbox(makeIterable(store), { limit: 2, after }, T0 + 10_000);
      seen.push(...page.items.map((i) => i.id));
      if (page.next === null) break;
      after = decodeCursor(page.next)!;
    }
    expect(seen).to.deep.equal(['c-a', 'c-b', 'c-c', 'c-e', 'c-d']);
  });

  it('refuses cursor garbage', () => {
    for (const text of ['', 'not a cursor!', Buffer.from('[1]').toString('base64url'), Buffer.from('{"u":1}').toString('base64url'), Buffer.from('[-1,"x"]').toString('base64url'), Buffer.from('[1,""]').toString('base64url'), 'x'.repeat(3000)]) {
      expect(decodeCursor(text), text.slice(0, 40)).to.equal(null);
    }
    expect(decodeCursor(encodeCursor({ u: 5, id: 'c-a' }))).to.deep.equal({ u: 5, id: 'c-a' });
  });
});

function makeIterable(store: ConversationStore) {
  return store.liveConversations();
}
