/**
 * The conversation store on its own, with an injected clock: writes are idempotent and
 * order-independent, deletes win, history is ordered by (timestamp, id), causality holds
 * through the hybrid clock, bounds and TTL apply, and catch-up (summary / digest / ids /
 * missing writes) makes two stores equal. The key property: any number of stores applying
 * the same writes in any order, with duplicates, end in the same state.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ConversationStore, type StoreOptions, type StoreWrite, type StoredMessage } from '../../lib/core/conversation-store.js';
import { HybridClock, parseTimestampId, timestampId } from '../../lib/core/hybrid-clock.js';

const T0 = 1_700_000_000_000;
const HOUR = 3600_000;

const UNBOUNDED: StoreOptions = {
  conversationTtlMs: 1000 * HOUR,
  maxMessagesPerConversation: 1_000_000,
  maxConversations: 1_000_000,
  maxStoreBytes: Number.MAX_SAFE_INTEGER,
};

/** A wall clock the test moves by hand. */
class ManualClock {
  constructor(public t: number = T0) {}
  readonly now = (): number => this.t;
}

function makeStore(options: Partial<StoreOptions> = {}, nodeId = 'node', clock = new ManualClock()): { store: ConversationStore; clock: ManualClock } {
  const store = new ConversationStore({ ...UNBOUNDED, ...options }, nodeId, new HybridClock(clock.now), clock.now);
  return { store, clock };
}

const id = (wall: number, counter: number, node: string) => timestampId({ wall, counter }, node);

function created(room: string, writeIdValue: string): StoreWrite {
  return { type: 'created', room, id: writeIdValue };
}

function message(room: string, messageId: string, ts: number, text = `text of ${messageId}`, user = 'customer'): StoreWrite {
  return { type: 'message', id: messageId, room, user, text, ts };
}

/** A delete of `messageId`, whose message has timestamp `ts` (its place in the order). */
function deleted(room: string, messageId: string, ts: number, at: string): StoreWrite {
  return { type: 'deleted', room, id: messageId, ts, at };
}

/** The delete of a message write, as the API makes it (the message's id and ts). */
function deleteOf(m: StoreWrite, at: string): StoreWrite {
  if (m.type !== 'message') throw new Error('deleteOf needs a message write');
  return deleted(m.room, m.id, m.ts, at);
}

/** A message this store makes, the way the API and the gateway do (id from the clock, ts = its wall time unless given). */
function localMessage(store: ConversationStore, room: string, text: string, ts?: number): StoreWrite & { type: 'message' } {
  const stamp = store.nextStamp();
  return { type: 'message', id: stamp.id, room, user: 'agent', text, ts: ts ?? stamp.wall };
}

const ids = (history: StoredMessage[] | null) => (history ?? []).map((m) => m.id);
const sortedSummary = (store: ConversationStore) => [...store.summary()].sort((a, b) => (a.c < b.c ? -1 : a.c > b.c ? 1 : 0));

/** What the replicator does when a link comes up, in one direction: `to` pulls from `from` what differs. */
function pull(to: ConversationStore, from: ConversationStore): void {
  for (const entry of from.summary()) {
    if (to.digestOf(entry.c) === entry.d) continue;
    const theirs = new Set(to.idsOf(entry.c));
    for (const write of from.writesMissingFrom(entry.c, theirs)) to.apply(write);
  }
}

function catchUp(a: ConversationStore, b: ConversationStore): void {
  pull(b, a);
  pull(a, b);
}

/** The messages and tombstones a store holds (not its activity times). */
function contentOf(store: ConversationStore) {
  const rooms = store.summary().map((e) => e.c).sort();
  return Object.fromEntries(rooms.map((r) => [r, { history: store.history(r), digest: store.digestOf(r), ids: [...store.idsOf(r)].sort() }]));
}

function permutations<T>(list: T[]): T[][] {
  if (list.length <= 1) return [list];
  return list.flatMap((x, i) => permutations([...list.slice(0, i), ...list.slice(i + 1)]).map((rest) => [x, ...rest]));
}

function writeLabel(w: StoreWrite): string {
  return w.type === 'deleted' ? `del(${w.id} at ${w.at})` : `${w.type}(${w.id})`;
}

describe('ConversationStore: apply', () => {
  it('is idempotent: a second copy of any write is a duplicate and changes nothing', () => {
    const { store } = makeStore();
    const m1 = message('r', id(T0, 1, 'a'), T0);
    const m2 = message('r', id(T0, 2, 'a'), T0);
    const del = deleteOf(m1, id(T0, 3, 'a'));
    const writes = [created('r', id(T0, 0, 'a')), m1, m2, del];
    for (const w of writes) expect(store.apply(w), JSON.stringify(w)).to.equal('applied');
    const before = { history: store.history('r'), summary: store.summary(), stats: store.stats(), ids: store.idsOf('r') };
    for (const w of writes) expect(store.apply(w), JSON.stringify(w)).to.equal('duplicate');
    // A copy of the message after its delete must not bring it back either.
    expect(store.apply({ ...m1 })).to.equal('duplicate');
    expect({ history: store.history('r'), summary: store.summary(), stats: store.stats(), ids: store.idsOf('r') }).to.deep.equal(before);
    expect(ids(store.history('r'))).to.deep.equal([m2.id]);
    expect(store.stats()).to.deep.equal({ conversations: 1, messages: 1, tombstones: 1 });
  });

  it('ignores a write whose id is not a timestamp id', () => {
    const { store } = makeStore();
    expect(store.apply(created('r', 'not-a-timestamp-id'))).to.equal('ignored');
    expect(store.apply(message('r', 'garbage', T0))).to.equal('ignored');
    expect(store.apply(deleted('r', id(T0, 0, 'a'), T0, 'garbage'))).to.equal('ignored');
    expect(store.has('r')).to.equal(false);
    expect(store.stats()).to.deep.equal({ conversations: 0, messages: 0, tombstones: 0 });
  });

  it('a message creates its conversation even when the `created` write has not arrived', () => {
    const { store } = makeStore();
    const m = message('r', id(T0, 5, 'a'), T0);
    expect(store.apply(m)).to.equal('applied');
    expect(store.has('r')).to.equal(true);
    expect(store.apply(created('r', id(T0, 0, 'a')))).to.equal('applied');
    expect(ids(store.history('r'))).to.deep.equal([m.id]);
  });

  it('a delete that arrives before its message wins: the message never appears', () => {
    const a = makeStore().store;
    const b = makeStore().store;
    const m = message('r', id(T0, 1, 'x'), T0);
    const keep = message('r', id(T0, 2, 'x'), T0);
    const del = deleteOf(m, id(T0, 3, 'y'));

    expect(a.apply(del)).to.equal('applied');
    expect(a.apply(keep)).to.equal('applied');
    a.apply(m);
    expect(a.hasMessage('r', m.id)).to.equal(false);
    expect(ids(a.history('r'))).to.deep.equal([keep.id]);
    expect(a.recent('r', 10).map((x) => x.id)).to.deep.equal([keep.id]);
    expect(a.stats()).to.deep.equal({ conversations: 1, messages: 1, tombstones: 1 });
    // And again (a late duplicate of the message).
    a.apply({ ...m });
    expect(ids(a.history('r'))).to.deep.equal([keep.id]);

    // The other order gives the same state.
    for (const w of [m, keep, del]) b.apply(w);
    expect(b.history('r')).to.deep.equal(a.history('r'));
    expect(b.digestOf('r')).to.equal(a.digestOf('r'));
    expect(b.stats()).to.deep.equal(a.stats());
  });

  it('a deleted message leaves no content behind in the history', () => {
    const { store } = makeStore();
    const m = message('r', id(T0, 1, 'x'), T0, 'secret');
    store.apply(m);
    store.apply(deleteOf(m, id(T0, 2, 'x')));
    expect(JSON.stringify(store.history('r'))).to.not.include('secret');
    expect(JSON.stringify(store.recent('r', 10))).to.not.include('secret');
  });
});

describe('ConversationStore: history order', () => {
  it('orders by timestamp first, then by id, whatever the arrival order', () => {
    // ids in id order: i1 < i2 < i3 < i4 < i5; timestamps deliberately out of that order and with ties.
    const i1 = id(T0, 0, 'b');
    const i2 = id(T0, 0, 'c');
    const i3 = id(T0, 1, 'a');
    const i4 = id(T0 + 1, 0, 'a');
    const i5 = id(T0 + 2, 0, 'a');
    const writes = [message('r', i1, 300), message('r', i2, 100), message('r', i3, 100), message('r', i4, 200), message('r', i5, 100)];
    const expected = [i2, i3, i5, i4, i1];
    const orders = [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3], [1, 4, 0, 3, 2]];
    for (const order of orders) {
      const { store } = makeStore();
      for (const k of order) store.apply(writes[k]);
      expect(ids(store.history('r')), `order ${order}`).to.deep.equal(expected);
      expect(store.history('r')!.map((m) => m.timestamp)).to.deep.equal([100, 100, 100, 200, 300]);
    }
  });

  it('recent(n) gives the last n of that order, oldest first', () => {
    const { store } = makeStore();
    const list = [5, 1, 4, 2, 3].map((ts, k) => message('r', id(T0, k, 'a'), ts));
    for (const w of list) store.apply(w);
    expect(store.recent('r', 2).map((m) => m.timestamp)).to.deep.equal([4, 5]);
    expect(store.recent('r', 99).map((m) => m.timestamp)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(store.recent('nope', 3)).to.deep.equal([]);
  });

  it('keeps the stored fields: sender = user, content = text, timestamp = ts', () => {
    const { store } = makeStore();
    const mid = id(T0, 0, 'a');
    store.apply({ type: 'message', id: mid, room: 'r', user: 'agent', text: 'héllo 👋', ts: 42 });
    expect(store.history('r')).to.deep.equal([{ id: mid, sender: 'agent', content: 'héllo 👋', timestamp: 42 }]);
    expect(store.history('other')).to.equal(null);
  });
});

describe('ConversationStore: causality through the hybrid clock', () => {
  it('a message made after observing another sorts after it, with a slower local clock', () => {
    // Node "zz" runs 500 ms ahead of node "aa"; "aa" would sort first on a tie of wall and counter.
    const fast = makeStore({}, 'zz', new ManualClock(T0 + 500)).store;
    const slow = makeStore({}, 'aa', new ManualClock(T0)).store;
    const first = localMessage(fast, 'r', 'first');
    fast.apply(first);
    expect(slow.apply(first)).to.equal('applied');
    const second = localMessage(slow, 'r', 'second');
    expect(second.ts, 'the slow node takes the later wall time it saw').to.be.at.least(first.ts);
    slow.apply(second);
    fast.apply(second);
    for (const s of [fast, slow]) expect(s.history('r')!.map((m) => m.content)).to.deep.equal(['first', 'second']);
  });

  it('a message made after observing another sorts after it within the same millisecond', () => {
    const one = makeStore({}, 'zz', new ManualClock(T0)).store;
    const two = makeStore({}, 'aa', new ManualClock(T0)).store;
    // A chain of replies bouncing between the two nodes, all in the same millisecond.
    const chain: StoreWrite[] = [];
    for (let k = 0; k < 20; k++) {
      const [author, other] = k % 2 === 0 ? [one, two] : [two, one];
      const w = localMessage(author, 'r', `reply ${k}`);
      author.apply(w);
      other.apply(w);
      chain.push(w);
    }
    const expected = chain.map((w) => (w as { text: string }).text);
    for (const s of [one, two]) expect(s.history('r')!.map((m) => m.content)).to.deep.equal(expected);
    // A third store receiving them shuffled agrees.
    const third = makeStore().store;
    for (const w of [...chain].reverse()) third.apply(w);
    expect(third.history('r')!.map((m) => m.content)).to.deep.equal(expected);
  });

  it('observing a delete or a created write also moves the clock', () => {
    const { store } = makeStore({}, 'aa', new ManualClock(T0));
    store.apply(deleted('r', 'whatever', T0, id(T0 + 700, 3, 'zz')));
    expect(parseTimestampId(store.nextId())).to.deep.equal({ wall: T0 + 700, counter: 4 });
    store.apply(created('q', id(T0 + 900, 0, 'zz')));
    expect(parseTimestampId(store.nextStamp().id)).to.deep.equal({ wall: T0 + 900, counter: 1 });
  });
});

describe('ConversationStore: bounds', () => {
  it('keeps the newest N messages of a conversation by (timestamp, id)', () => {
    const { store } = makeStore({ maxMessagesPerConversation: 3 });
    const list = Array.from({ length: 6 }, (_, k) => message('r', id(T0 + k, 0, 'a'), 1000 + k));
    for (const w of list) store.apply(w);
    expect(ids(store.history('r'))).to.deep.equal(list.slice(3).map((w) => (w as { id: string }).id));
    expect(store.stats().messages).to.equal(3);
    // An older message arriving late is outside the window: ignored, and nothing changes.
    const before = store.history('r');
    expect(store.apply(message('r', id(T0 + 10, 0, 'b'), 999))).to.equal('ignored');
    expect(store.history('r')).to.deep.equal(before);
    // A newer one pushes the oldest out.
    const newer = message('r', id(T0 + 11, 0, 'b'), 2000);
    expect(store.apply(newer)).to.equal('applied');
    expect(store.history('r')!.map((m) => m.timestamp)).to.deep.equal([1004, 1005, 2000]);
  });

  it('a deleted message keeps its place in the window, so the window does not depend on delete order', () => {
    const list = Array.from({ length: 4 }, (_, k) => message('r', id(T0 + k, 0, 'a'), 1000 + k));
    const del = deleteOf(list[2], id(T0 + 10, 0, 'a'));
    const a = makeStore({ maxMessagesPerConversation: 3 }).store;
    const b = makeStore({ maxMessagesPerConversation: 3 }).store;
    for (const w of [...list, del]) a.apply(w);
    for (const w of [del, ...list]) b.apply(w);
    expect(a.history('r')!.map((m) => m.timestamp)).to.deep.equal([1001, 1003]);
    expect(b.history('r')).to.deep.equal(a.history('r'));
    expect(b.digestOf('r')).to.equal(a.digestOf('r'));
  });

  it('at the conversation cap, evicts only empty conversations (least recently active first), then refuses with store_full', () => {
    const { store } = makeStore({ maxConversations: 2 });
    store.apply(created('a', id(T0 + 10, 0, 'n')));
    store.apply(created('b', id(T0 + 20, 0, 'n')));
    // A message in `a`: it is never evicted to make room.
    store.apply(message('a', id(T0 + 30, 0, 'n'), T0 + 30));
    store.apply(created('c', id(T0 + 40, 0, 'n')));
    expect([store.has('a'), store.has('b'), store.has('c')]).to.deep.equal([true, false, true]);
    expect(store.history('b')).to.equal(null);
    expect(store.stats().conversations).to.equal(2);
    store.apply(created('d', id(T0 + 50, 0, 'n')));
    expect([store.has('a'), store.has('c'), store.has('d')]).to.deep.equal([true, false, true]);
    // Both hold messages now: nothing may go, a new conversation is refused.
    store.apply(message('d', id(T0 + 60, 0, 'n'), T0 + 60));
    expect(store.apply(created('e', id(T0 + 70, 0, 'n')))).to.equal('store_full');
    expect(store.apply(message('f', id(T0 + 80, 0, 'n'), T0 + 80))).to.equal('store_full');
    expect([store.has('a'), store.has('d'), store.has('e'), store.has('f')]).to.deep.equal([true, true, false, false]);
  });

  it('is bounded in bytes (maxStoreBytes): a message or conversation that does not fit is refused with store_full; a delete frees room', () => {
    const { store } = makeStore({ maxStoreBytes: 20_000 });
    store.apply(created('r', id(T0, 0, 'n')));
    const text = 'x'.repeat(2000);
    const results = Array.from({ length: 10 }, (_, k) => store.apply(message('r', id(T0 + 1 + k, 0, 'n'), T0 + 1 + k, text)));
    const stored = results.filter((r) => r === 'applied').length;
    expect(stored).to.be.within(3, 5);
    expect(results.slice(stored).every((r) => r === 'store_full')).to.equal(true);
    expect(store.usage().bytes).to.be.at.most(20_000);
    expect(store.history('r')).to.have.length(stored);
    // A delete is always taken, and frees the text.
    expect(store.apply(deleted('r', id(T0 + 1, 0, 'n'), T0 + 1, id(T0 + 100, 0, 'n')))).to.equal('applied');
    expect(store.apply(message('r', id(T0 + 101, 0, 'n'), T0 + 101, text))).to.equal('applied');
    expect(store.usage().bytes).to.be.at.most(20_000);
  });

  it('more deletes than the bound: the same writes in another order give the same state, and no deleted message reappears', () => {
    // Window of 2; four messages; the three newest deleted. Every order must end with an empty
    // history (m0 is out of the window, m1..m3 deleted).
    const opts = { maxMessagesPerConversation: 2 };
    const msgs = [0, 1, 2, 3].map((k) => message('r0', id(T0 + k, 0, 'a'), T0 + k, `m${k}`));
    const dels = [1, 2, 3].map((k, i) => deleteOf(msgs[k], id(T0 + 10 + i, 0, 'b')));
    const orders = [
      [...msgs, ...dels],
      [...[...dels].reverse(), ...msgs],
      [dels[2], dels[0], dels[1], ...msgs],
    ];
    const states = orders.map((order) => {
      const { store } = makeStore(opts, 's', new ManualClock(T0 + 1000));
      for (const w of order) store.apply(w);
      return stateOf(store);
    });
    expect(states[0].histories.r0, 'messages first, then deletes').to.deep.equal([]);
    for (const [k, st] of states.entries()) {
      expect(st.histories.r0!.map((m) => m.content), `order ${k}: deleted message visible`).to.deep.equal([]);
      expect(st, `order ${k} vs order 0`).to.deep.equal(states[0]);
    }
  });

  it('a deleted message keeps its slot in the window as a placeholder until pushed out, and its tombstone goes with it', () => {
    const list = Array.from({ length: 5 }, (_, k) => message('r', id(T0 + k, 0, 'a'), 1000 + k, `m${k}`));
    const del = deleteOf(list[1], id(T0 + 10, 0, 'a'));
    const { store } = makeStore({ maxMessagesPerConversation: 3 });
    for (const w of [list[0], list[1], list[2], del]) expect(store.apply(w), JSON.stringify(w)).to.equal('applied');
    expect(store.history('r')!.map((m) => m.content)).to.deep.equal(['m0', 'm2']);
    expect(store.stats()).to.deep.equal({ conversations: 1, messages: 2, tombstones: 1 });
    expect(store.idsOf('r')).to.include.members([list[1].id, 't:' + list[1].id]);
    // m3 pushes out m0, the oldest entry: the placeholder of m1 still holds its slot.
    expect(store.apply(list[3])).to.equal('applied');
    expect(store.history('r')!.map((m) => m.content)).to.deep.equal(['m2', 'm3']);
    expect(store.stats()).to.deep.equal({ conversations: 1, messages: 2, tombstones: 1 });
    // m4 pushes out the placeholder, and the tombstone with it.
    expect(store.apply(list[4])).to.equal('applied');
    expect(store.history('r')!.map((m) => m.content)).to.deep.equal(['m2', 'm3', 'm4']);
    expect(store.stats()).to.deep.equal({ conversations: 1, messages: 3, tombstones: 0 });
    expect([...store.idsOf('r')].sort()).to.deep.equal([list[2].id, list[3].id, list[4].id].sort());
    // Every arrival order of the same writes holds the same messages and tombstones.
    const writes = [...list, del];
    const expected = contentOf(store);
    for (const order of permutations(writes)) {
      const other = makeStore({ maxMessagesPerConversation: 3 }).store;
      for (const w of order) other.apply(w);
      expect(contentOf(other), order.map((w) => writeLabel(w)).join(' ')).to.deep.equal(expected);
    }
  });

  it('drops tombstones once the window moves past their place, deletes of messages never seen here included', () => {
    const opts = { maxMessagesPerConversation: 2 };
    // Deletes of messages this store never sees, placed before everything it will keep.
    const ghosts = [0, 1, 2, 3, 4].map((k) => deleted('r', id(T0, k, 'gone'), 500 + k, id(T0 + k, 0, 'a')));
    const m1 = message('r', id(T0 + 20, 0, 'a'), 1000);
    const m2 = message('r', id(T0 + 21, 0, 'a'), 1002);
    const m3 = message('r', id(T0 + 22, 0, 'a'), 1003);
    // A delete of a message never seen here, placed between m1 and m2.
    const between = deleted('r', id(T0, 9, 'gone'), 1001, id(T0 + 23, 0, 'a'));
    const { store } = makeStore(opts);
    for (const g of ghosts) expect(store.apply(g)).to.equal('applied');
    // The window is not full: every place is in it.
    expect(store.stats().tombstones).to.equal(5);
    store.apply(m1);
    expect(store.stats().tombstones).to.equal(5);
    // Full now ([m1, m2]): every ghost sorts before the window.
    store.apply(m2);
    expect(store.stats(), 'tombstones before a full window').to.deep.equal({ conversations: 1, messages: 2, tombstones: 0 });
    expect(store.idsOf('r').filter((i) => i.startsWith('t:'))).to.deep.equal([]);
    // A delete placed inside the full window is kept...
    expect(store.apply(between)).to.equal('applied');
    expect(store.stats().tombstones).to.equal(1);
    // ...until the window moves past it.
    store.apply(m3);
    expect(store.stats()).to.deep.equal({ conversations: 1, messages: 2, tombstones: 0 });
    expect(store.history('r')!.map((m) => m.timestamp)).to.deep.equal([1002, 1003]);
    // The same writes in every order: the same messages and tombstones.
    const expected = contentOf(store);
    for (const order of permutations([ghosts[0], ghosts[4], m1, m2, m3, between])) {
      const other = makeStore(opts).store;
      for (const w of order) other.apply(w);
      expect(contentOf(other), order.map((w) => writeLabel(w)).join(' ')).to.deep.equal(expected);
    }
  });

  it('a delete older than a full window is ignored, and one that arrived before the window filled is dropped when it fills', () => {
    const opts = { maxMessagesPerConversation: 2 };
    const ghost = deleted('r', id(T0, 0, 'gone'), 500, id(T0 + 5, 0, 'a'));
    const m1 = message('r', id(T0 + 1, 0, 'a'), 1000);
    const m2 = message('r', id(T0 + 2, 0, 'a'), 1001);
    const after = makeStore(opts).store;
    for (const w of [m1, m2]) after.apply(w);
    const before = contentOf(after);
    expect(after.apply(ghost)).to.equal('ignored');
    expect(contentOf(after), 'an ignored delete changes no content').to.deep.equal(before);
    // It still counts as activity, as on every node that receives it.
    expect(after.summary().map((e) => e.a)).to.deep.equal([T0 + 5]);
    const first = makeStore(opts).store;
    for (const w of [ghost, m1, m2]) first.apply(w);
    expect(contentOf(first), 'delete first, then the window fills exactly').to.deep.equal(contentOf(after));
  });

  it('a late copy of a deleted message never reappears while the delete is in the window, and is ignored once older than a full window', () => {
    const { store } = makeStore({ maxMessagesPerConversation: 2 });
    const m1 = message('r', id(T0 + 1, 0, 'a'), 1000, 'deleted text');
    const m2 = message('r', id(T0 + 2, 0, 'a'), 1001, 'two');
    const m3 = message('r', id(T0 + 3, 0, 'a'), 1002, 'three');
    const del = deleteOf(m1, id(T0 + 4, 0, 'b'));
    expect(store.apply(del)).to.equal('applied');
    expect(store.apply(m2)).to.equal('applied');
    // The message arrives after its delete: it takes its slot, as deleted.
    expect(store.apply(m1)).to.equal('applied');
    expect(store.apply({ ...m1 })).to.equal('duplicate');
    expect(store.history('r')!.map((m) => m.content)).to.deep.equal(['two']);
    expect(JSON.stringify(store.history('r'))).to.not.include('deleted text');
    expect(JSON.stringify(store.writesMissingFrom('r', new Set()))).to.not.include('deleted text');
    expect(store.stats()).to.deep.equal({ conversations: 1, messages: 1, tombstones: 1 });
    // m3 pushes the placeholder out, and its tombstone with it.
    expect(store.apply(m3)).to.equal('applied');
    expect(store.stats()).to.deep.equal({ conversations: 1, messages: 2, tombstones: 0 });
    const before = contentOf(store);
    // Now m1 is older than everything the full window keeps: neither it nor its delete comes back.
    expect(store.apply({ ...m1 })).to.equal('ignored');
    expect(store.apply(del)).to.equal('ignored');
    expect(store.apply(deleteOf(m1, id(T0 + 50, 0, 'c')))).to.equal('ignored');
    expect(contentOf(store)).to.deep.equal(before);
    expect(store.history('r')!.map((m) => m.content)).to.deep.equal(['two', 'three']);
  });
});

describe('ConversationStore: activity and the conversation bound', () => {
  it('duplicates and ignored writes change no content; activity is the latest clock time of every write received', () => {
    const { store } = makeStore({ maxMessagesPerConversation: 2 }, 's', new ManualClock(T0 + 1000));
    const m1 = message('r', id(T0 + 1, 0, 'a'), 1000);
    const m2 = message('r', id(T0 + 2, 0, 'a'), 1001);
    for (const w of [created('r', id(T0, 0, 'a')), m1, m2]) expect(store.apply(w)).to.equal('applied');
    expect(store.summary().map((e) => e.a)).to.deep.equal([T0 + 2]);
    const unchanged: Array<[StoreWrite, string]> = [
      [created('r', id(T0, 0, 'a')), 'duplicate'],
      [{ ...m1 }, 'duplicate'],
      [message('r', id(T0 + 60, 0, 'b'), 999), 'ignored'],
      [deleted('r', id(T0 - 5, 0, 'gone'), 998, id(T0 + 70, 0, 'b')), 'ignored'],
    ];
    let latest = T0 + 2;
    for (const [w, result] of unchanged) {
      const before = contentOf(store);
      expect(store.apply(w), JSON.stringify(w)).to.equal(result);
      expect(contentOf(store), JSON.stringify(w)).to.deep.equal(before);
      latest = Math.max(latest, parseTimestampId(w.type === 'deleted' ? w.at : w.id)!.wall);
      expect(store.summary().map((e) => e.a), JSON.stringify(w)).to.deep.equal([latest]);
    }
    // An applied delete counts, and a copy of it does not.
    const del = deleteOf(m1, id(T0 + 80, 0, 'b'));
    expect(store.apply(del)).to.equal('applied');
    expect(store.summary().map((e) => e.a)).to.deep.equal([T0 + 80]);
    expect(store.apply({ ...del })).to.equal('duplicate');
    expect(store.summary().map((e) => e.a)).to.deep.equal([T0 + 80]);
  });

  it('the activity clock (summary) is the same whatever order the same writes arrive in', () => {
    // Each case: writes, and the options of the stores. Every permutation must give one summary
    // (the TTL and eviction clock: nodes that disagree on it expire and evict differently).
    const m = message('r0', id(T0, 0, 'a'), T0);
    const cases: Array<[string, StoreWrite[], Partial<StoreOptions>]> = [
      // Two nodes delete the same message; the second delete to arrive changes nothing.
      ['two deletes of one message', [m, deleteOf(m, id(T0 + 1, 0, 'a')), deleteOf(m, id(T0, 1, 'b'))], {}],
      // A node creates the room (say, a WebSocket join) after a message for it was written elsewhere.
      ['a `created` with a later id than the first write', [m, created('r0', id(T0 + 1, 0, 'b'))], {}],
      // A back-dated message: applied then pushed out of the window, or refused as older than a full window.
      ['a message that the window pushes out', [message('r0', id(T0 + 5, 0, 'b'), T0 - 1), m], { maxMessagesPerConversation: 1 }],
      // A delete of a message older than the window: applied then dropped, or ignored.
      ['a delete that the window drops', [m, deleted('r0', id(T0 - 10, 0, 'gone'), T0 - 10, id(T0 + 5, 0, 'b'))], { maxMessagesPerConversation: 1 }],
    ];
    const differences: string[] = [];
    for (const [what, writes, opts] of cases) {
      const results = permutations(writes).map((order) => {
        const { store } = makeStore(opts, 's', new ManualClock(T0 + 1000));
        for (const w of order) store.apply(w);
        return { order: order.map(writeLabel).join(' '), summary: sortedSummary(store), content: contentOf(store) };
      });
      const other = results.find((r) => JSON.stringify(r) !== JSON.stringify({ ...r, summary: results[0].summary, content: results[0].content }));
      if (other) differences.push(`${what}: [${results[0].order}] → ${JSON.stringify(results[0].summary)} but [${other.order}] → ${JSON.stringify(other.summary)}`);
    }
    expect(differences).to.deep.equal([]);
  });

  it('a write the window ignores still counts as activity, so every node keeps and evicts alike', () => {
    // Every node receives the same writes, whatever each one's window makes of them.
    const { store, clock } = makeStore({ conversationTtlMs: 1000, maxMessagesPerConversation: 1 });
    store.apply(message('r', id(T0, 0, 'a'), 1000));
    clock.t = T0 + 900;
    expect(store.apply(message('r', id(T0 + 900, 0, 'b'), 999))).to.equal('ignored');
    clock.t = T0 + 1001;
    expect(store.has('r'), 'alive: the write at T0+900 was activity').to.equal(true);
    clock.t = T0 + 1901;
    expect(store.has('r'), 'expired 1000 ms after the last write').to.equal(false);

    const bounded = makeStore({ maxConversations: 2, maxMessagesPerConversation: 1 }).store;
    bounded.apply(message('a', id(T0 + 10, 0, 'n'), 1000));
    bounded.apply(created('b', id(T0 + 20, 0, 'n')));
    expect(bounded.apply(message('a', id(T0 + 50, 0, 'n'), 999))).to.equal('ignored');
    expect(bounded.apply({ ...message('a', id(T0 + 10, 0, 'n'), 1000) })).to.equal('duplicate');
    expect(bounded.apply(created('c', id(T0 + 30, 0, 'n')))).to.equal('applied');
    // `a` was active at T0+50 (the ignored write), so `b` (T0+20) was the least recently active.
    expect([bounded.has('a'), bounded.has('b'), bounded.has('c')]).to.deep.equal([true, false, true]);
  });

  it('at MAX_CONVERSATIONS a new empty conversation evicts the least recently active empty one (ties by id), unless it is less recently active; one with content always does', () => {
    const { store } = makeStore({ maxConversations: 2 });
    store.apply(created('a', id(T0 + 10, 0, 'n')));
    store.apply(created('b', id(T0 + 20, 0, 'n')));
    const kept = () => ({ summary: sortedSummary(store), stats: store.stats() });
    const before = kept();
    // Empty and less recently active than both: not stored, nothing evicted.
    expect(store.apply(created('c', id(T0 + 5, 0, 'n')))).to.equal('ignored');
    // As recent as `a` but sorting before it by id: it would be the next to go, so it is not stored.
    expect(store.apply(created('0', id(T0 + 10, 0, 'n')))).to.equal('ignored');
    expect(kept()).to.deep.equal(before);
    expect([store.has('c'), store.has('0')]).to.deep.equal([false, false]);
    // As recent as `a` and sorting after it: `a` goes.
    expect(store.apply(created('ab', id(T0 + 10, 0, 'n')))).to.equal('applied');
    expect(sortedSummary(store).map((e) => e.c)).to.deep.equal(['ab', 'b']);
    // With content, however old: it takes the place of the least recently active empty one.
    expect(store.apply(message('old', id(T0 + 1, 0, 'n'), T0 + 1))).to.equal('applied');
    expect(sortedSummary(store).map((e) => e.c)).to.deep.equal(['b', 'old']);
    // Two equally old candidates for eviction: the smaller id goes.
    const ties = makeStore({ maxConversations: 2 }).store;
    ties.apply(created('x', id(T0 + 10, 0, 'n')));
    ties.apply(created('w', id(T0 + 10, 1, 'n')));
    expect(ties.apply(created('z', id(T0 + 30, 0, 'n')))).to.equal('applied');
    expect(sortedSummary(ties).map((e) => e.c)).to.deep.equal(['x', 'z']);
  });

  it('at MAX_CONVERSATIONS the conversations kept do not depend on the arrival order of their writes', () => {
    // One write per conversation (so nothing is evicted and later re-created with part of its writes).
    const writes = [
      created('a', id(T0 + 10, 0, 'n')),
      message('b', id(T0 + 40, 0, 'n'), T0 + 40),
      created('c', id(T0 + 30, 0, 'n')),
      deleted('d', id(T0, 0, 'n'), T0, id(T0 + 20, 0, 'n')),
      created('e', id(T0 + 30, 0, 'm')),
    ];
    const states = permutations(writes).map((order) => {
      const { store } = makeStore({ maxConversations: 3 });
      for (const w of order) store.apply(w);
      return { order: order.map((w) => w.room).join(''), summary: sortedSummary(store), stats: store.stats() };
    });
    // Every conversation with content (b: a message, d: a delete) and the most recent empty one.
    expect(states[0].summary.map((e) => e.c)).to.deep.equal(['b', 'd', 'e']);
    for (const st of states) expect({ summary: st.summary, stats: st.stats }, `order ${st.order}`).to.deep.equal({ summary: states[0].summary, stats: states[0].stats });
  });
});

describe('ConversationStore: TTL', () => {
  it('a conversation with no write for longer than the TTL is gone, and sweep removes it', () => {
    const { store, clock } = makeStore({ conversationTtlMs: 1000 });
    store.apply(created('old', id(T0, 0, 'n')));
    store.apply(message('old', id(T0 + 100, 0, 'n'), T0 + 100));
    clock.t = T0 + 600;
    store.apply(created('young', id(T0 + 600, 0, 'n')));
    clock.t = T0 + 1100;
    // At the boundary it still lives (last write at T0+100).
    expect(store.has('old')).to.equal(true);
    clock.t = T0 + 1101;
    expect(store.has('old')).to.equal(false);
    expect(store.history('old')).to.equal(null);
    expect(store.summary().map((e) => e.c)).to.deep.equal(['young']);
    expect(store.sweep()).to.deep.equal(['old']);
    expect(store.stats()).to.deep.equal({ conversations: 1, messages: 0, tombstones: 0 });
    expect(store.sweep()).to.deep.equal([]);
  });

  it('an old write for an expired conversation is ignored and never brings it back', () => {
    const { store, clock } = makeStore({ conversationTtlMs: 1000 });
    const c = created('r', id(T0, 0, 'n'));
    const m = message('r', id(T0 + 1, 0, 'n'), T0 + 1);
    store.apply(c);
    store.apply(m);
    clock.t = T0 + 5000;
    store.sweep();
    for (const w of [c, m, message('r', id(T0 + 2, 0, 'other'), T0 + 2), deleteOf(m, id(T0 + 3, 0, 'n'))]) {
      expect(store.apply(w), JSON.stringify(w)).to.equal('ignored');
    }
    expect(store.has('r')).to.equal(false);
    expect(store.summary()).to.deep.equal([]);
    expect(store.stats().conversations).to.equal(0);
    // Even without a sweep in between.
    const { store: s2, clock: c2 } = makeStore({ conversationTtlMs: 1000 });
    s2.apply(c);
    c2.t = T0 + 5000;
    expect(s2.apply(m)).to.equal('ignored');
    expect(s2.has('r')).to.equal(false);
  });

  it('a new write after expiry starts the conversation afresh, without the expired messages', () => {
    const { store, clock } = makeStore({ conversationTtlMs: 1000 }, 'n');
    const old = message('r', id(T0, 0, 'n'), T0);
    store.apply(old);
    clock.t = T0 + 5000;
    const fresh = localMessage(store, 'r', 'fresh');
    expect(store.apply(fresh)).to.equal('applied');
    expect(store.history('r')!.map((m) => m.content)).to.deep.equal(['fresh']);
  });

  it('tombstones do not expire with time: a live conversation keeps every delete in its window', () => {
    const { store, clock } = makeStore({ conversationTtlMs: 10 * HOUR });
    const m = message('r', id(T0, 0, 'x'), T0, 'deleted text');
    store.apply(m);
    store.apply(deleteOf(m, id(T0, 1, 'n')));
    clock.t = T0 + 9 * HOUR;
    store.apply(message('r', id(T0 + 9 * HOUR, 0, 'n'), T0 + 9 * HOUR));
    expect(store.sweep()).to.deep.equal([]);
    expect(store.stats()).to.deep.equal({ conversations: 1, messages: 1, tombstones: 1 });
    // A late copy of the message, hours later, does not come back.
    store.apply({ ...m });
    expect(store.history('r')!.map((x) => x.content)).to.not.include('deleted text');
  });
});

describe('ConversationStore: catch-up (summary, digestOf, idsOf, writesMissingFrom)', () => {
  it('equal sets of writes give equal digests, and an empty or unknown conversation has its own', () => {
    const a = makeStore().store;
    const b = makeStore().store;
    expect(a.digestOf('nope')).to.equal('');
    expect(a.idsOf('nope')).to.deep.equal([]);
    expect(a.writesMissingFrom('nope', new Set())).to.deep.equal([]);
    a.apply(created('r', id(T0, 0, 'a')));
    b.apply(created('r', id(T0, 0, 'a')));
    expect(a.digestOf('r')).to.equal(b.digestOf('r'));
    a.apply(message('r', id(T0, 1, 'a'), T0));
    expect(a.digestOf('r')).to.not.equal(b.digestOf('r'));
    b.apply(message('r', id(T0, 1, 'a'), T0));
    expect(a.digestOf('r')).to.equal(b.digestOf('r'));
    a.apply(deleted('r', id(T0, 1, 'a'), T0, id(T0, 2, 'a')));
    expect(a.digestOf('r')).to.not.equal(b.digestOf('r'));
  });

  it('two stores with different writes converge by exchanging only what differs', () => {
    const a = makeStore({}, 'a', new ManualClock(T0)).store;
    const b = makeStore({}, 'b', new ManualClock(T0 + 3)).store;
    // Shared: a conversation both hold.
    const shared = [created('s', id(T0 - 10, 0, 'a')), message('s', id(T0 - 9, 0, 'a'), T0 - 9)];
    for (const w of shared) {
      a.apply(w);
      b.apply(w);
    }
    // Only on a: a conversation, a message in the shared one, a delete of the shared message.
    a.apply(created('onlyA', a.nextId()));
    a.apply(localMessage(a, 'onlyA', 'a1'));
    a.apply(localMessage(a, 's', 'from a'));
    a.apply(deleteOf(shared[1], a.nextId()));
    // Only on b: a conversation, messages in the shared one, a delete of an id nobody has.
    b.apply(created('onlyB', b.nextId()));
    b.apply(localMessage(b, 's', 'from b', T0 - 100));
    b.apply(localMessage(b, 's', 'from b later'));
    b.apply(deleted('s', id(T0 - 50, 0, 'ghost'), T0 - 50, b.nextId()));

    const unchanged = sortedSummary(a).find((e) => e.c === 's')!;
    expect(b.digestOf('s')).to.not.equal(unchanged.d);
    // What a would send b: only writes b lacks (plus the `created` that is always sent).
    const missingForB = a.writesMissingFrom('s', new Set(b.idsOf('s')));
    expect(missingForB.map((w) => w.type).sort()).to.deep.equal(['created', 'deleted', 'message']);

    catchUp(a, b);
    expect(sortedSummary(a)).to.deep.equal(sortedSummary(b));
    expect(sortedSummary(a).map((e) => e.c)).to.deep.equal(['onlyA', 'onlyB', 's']);
    for (const room of ['s', 'onlyA', 'onlyB']) expect(a.history(room), room).to.deep.equal(b.history(room));
    expect(a.history('s')!.map((m) => m.content)).to.deep.equal(['from b', 'from a', 'from b later']);
    expect(a.stats()).to.deep.equal(b.stats());
    // A second round finds nothing to do.
    for (const e of a.summary()) expect(b.digestOf(e.c)).to.equal(e.d);
  });

  it('catch-up carries a delete to a store that holds the message, and never its text to one that does not', () => {
    const a = makeStore().store;
    const b = makeStore().store;
    const c = makeStore().store;
    const m = message('r', id(T0, 1, 'a'), T0, 'secret');
    for (const s of [a, b]) s.apply(m);
    a.apply(deleteOf(m, id(T0, 2, 'a')));
    catchUp(a, b);
    catchUp(a, c);
    for (const s of [b, c]) {
      expect(s.history('r')).to.deep.equal([]);
      expect(s.digestOf('r')).to.equal(a.digestOf('r'));
    }
    expect(JSON.stringify(a.writesMissingFrom('r', new Set()))).to.not.include('secret');
  });

  it('a deleted message does not come back to a store catching up, whether its tombstone is in the window or was pushed out', () => {
    const opts = { maxMessagesPerConversation: 2 };
    const { store: a } = makeStore(opts, 'a', new ManualClock(T0 + 100));
    // `b` held the message before it was deleted (and missed the delete).
    const { store: b } = makeStore(opts, 'b', new ManualClock(T0 + 100));
    const m = message('r', id(T0, 1, 'a'), T0, 'deleted text');
    for (const s of [a, b]) {
      s.apply(created('r', id(T0, 0, 'a')));
      s.apply(m);
    }
    a.apply(deleteOf(m, id(T0 + 2, 0, 'a')));
    const kept1 = message('r', id(T0 + 3, 0, 'a'), T0 + 3, 'kept 1');
    a.apply(kept1);
    // The delete is in the window: catch-up carries it, and the placeholder, to b.
    expect(a.stats()).to.deep.equal({ conversations: 1, messages: 1, tombstones: 1 });
    const c = makeStore(opts, 'c', new ManualClock(T0 + 100)).store;
    catchUp(a, b);
    pull(c, a);
    for (const [name, s] of Object.entries({ b, c })) {
      expect(s.history('r')!.map((x) => x.content), name).to.deep.equal(['kept 1']);
      expect(s.digestOf('r'), name).to.equal(a.digestOf('r'));
      expect(s.stats(), name).to.deep.equal(a.stats());
    }
    // A newer message pushes the placeholder out, with its tombstone, on every store.
    const kept2 = message('r', id(T0 + 4, 0, 'a'), T0 + 4, 'kept 2');
    a.apply(kept2);
    expect(a.stats()).to.deep.equal({ conversations: 1, messages: 2, tombstones: 0 });
    const d = makeStore(opts, 'd', new ManualClock(T0 + 100)).store;
    d.apply(m); // a store that still holds the message and never saw the delete
    catchUp(a, b);
    catchUp(a, d);
    for (const [name, s] of Object.entries({ a, b, d })) {
      expect(s.history('r')!.map((x) => x.content), name).to.deep.equal(['kept 1', 'kept 2']);
      expect(s.stats(), name).to.deep.equal({ conversations: 1, messages: 2, tombstones: 0 });
      expect(s.digestOf('r'), name).to.equal(a.digestOf('r'));
      // And a late copy of it is older than the full window: ignored.
      expect(s.apply({ ...m }), name).to.equal('ignored');
    }
  });

  it('acceptsMessageAt tells the API which timestamps a full conversation would drop at once (its 409)', () => {
    // The API answers 409 for such a message before it reaches the store, so no node stores it.
    const { store, clock } = makeStore({ maxMessagesPerConversation: 2 }, 'n');
    store.apply(created('r', store.nextId()));
    expect(store.acceptsMessageAt('r', T0 - 1, id(T0, 5, 'n')), 'not full yet').to.equal(true);
    store.apply(localMessage(store, 'r', 'one'));
    store.apply(localMessage(store, 'r', 'two'));
    clock.t = T0 + 60_000;
    const oldest = store.history('r')![0];
    expect(store.acceptsMessageAt('r', T0 - 1, id(T0 + 60_000, 0, 'n'))).to.equal(false);
    expect(store.acceptsMessageAt('r', oldest.timestamp, '0')).to.equal(false);
    expect(store.acceptsMessageAt('r', oldest.timestamp, oldest.id + 'z')).to.equal(true);
    expect(store.acceptsMessageAt('r', T0 + 60_000, id(T0 + 60_000, 0, 'n'))).to.equal(true);
    expect(store.acceptsMessageAt('unknown', 0, 'x')).to.equal(true);
  });
});

// ---------------------------------------------------------------------------------------
// The key property: same writes, any order, any duplicates → same state.

type Action =
  | { k: 'create'; node: number; room: number; adv: number }
  | { k: 'message'; node: number; room: number; adv: number; given: number | null }
  | { k: 'delete'; node: number; room: number; adv: number; pick: number }
  | { k: 'deleteUnknown'; node: number; room: number; adv: number; ghost: number }
  | { k: 'receive'; node: number; pick: number };

const ROOMS = ['r0', 'r1', 'r2'];

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ k: fc.constant('create' as const), node: fc.nat(2), room: fc.nat(2), adv: fc.nat(3) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('message' as const),
      node: fc.nat(2),
      room: fc.nat(2),
      adv: fc.nat(3),
      // A client-given timestamp (REST) from a tiny range, so ties and out-of-order timestamps are common.
      given: fc.option(fc.integer({ min: T0 - 3, max: T0 + 3 }), { freq: 3 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('delete' as const), node: fc.nat(2), room: fc.nat(2), adv: fc.nat(3), pick: fc.nat(50) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('deleteUnknown' as const), node: fc.nat(2), room: fc.nat(2), adv: fc.nat(3), ghost: fc.nat(5) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('receive' as const), node: fc.nat(2), pick: fc.nat(100) }) },
);

const scenarioArb = fc.record({
  nodes: fc.integer({ min: 2, max: 3 }),
  /** Fewer rooms make more writes per room (and hit the per-conversation bounds). */
  rooms: fc.integer({ min: 1, max: 3 }),
  /** Each simulated node's clock offset. */
  skews: fc.tuple(fc.integer({ min: -5, max: 5 }), fc.integer({ min: -5, max: 5 }), fc.integer({ min: -5, max: 5 })),
  actions: fc.array(actionArb, { minLength: 1, maxLength: 60 }),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer S> ? S : never;

/** Plays the scenario on simulated nodes (each with its own hybrid clock) and returns the writes they made. */
function writesOf(scenario: Scenario): StoreWrite[] {
  const walls = Array.from({ length: scenario.nodes }, (_, n) => T0 + scenario.skews[n]);
  const clocks = walls.map((_, n) => new HybridClock(() => walls[n]));
  const names = ['n0', 'n1', 'n2'];
  const writes: StoreWrite[] = [];
  const messagesIn: Array<Array<{ id: string; ts: number }>> = ROOMS.map(() => []);
  for (const a of scenario.actions) {
    const n = a.node % scenario.nodes;
    const clock = clocks[n];
    if (a.k === 'receive') {
      // The node receives an earlier write (replication): its clock moves past it.
      if (writes.length === 0) continue;
      const w = writes[a.pick % writes.length];
      clock.observe(parseTimestampId(w.type === 'deleted' ? w.at : w.id)!);
      continue;
    }
    walls[n] += a.adv;
    const r = a.room % scenario.rooms;
    const room = ROOMS[r];
    switch (a.k) {
      case 'create':
        writes.push({ type: 'created', room, id: timestampId(clock.tick(), names[n]) });
        break;
      case 'message': {
        const ts = clock.tick();
        const mid = timestampId(ts, names[n]);
        messagesIn[r].push({ id: mid, ts: a.given ?? ts.wall });
        writes.push({ type: 'message', id: mid, room, user: `u${n}`, text: `t${writes.length}`, ts: a.given ?? ts.wall });
        break;
      }
      case 'delete': {
        const list = messagesIn[r];
        if (list.length === 0) continue;
        const target = list[a.pick % list.length];
        // One deletes what one has seen.
        clock.observe(parseTimestampId(target.id)!);
        writes.push({ type: 'deleted', room, id: target.id, ts: target.ts, at: timestampId(clock.tick(), names[n]) });
        break;
      }
      case 'deleteUnknown':
        // A message nobody has; its place in the order is the ghost's wall time.
        writes.push({ type: 'deleted', room, id: timestampId({ wall: T0 - 100 + a.ghost, counter: a.ghost }, 'ghost'), ts: T0 - 100 + a.ghost, at: timestampId(clock.tick(), names[n]) });
        break;
    }
  }
  return writes;
}

/** Everything observable about a store. */
function stateOf(store: ConversationStore) {
  return {
    summary: sortedSummary(store),
    histories: Object.fromEntries(ROOMS.map((r) => [r, store.history(r)])),
    stats: store.stats(),
  };
}

/**
 * Applies writes in order; true if a conversation came back after the conversation bound had
 * evicted it or refused a write for it. That one is a documented limitation (README, Bounds):
 * eviction is a local decision, so the conversation can come back with part of its writes.
 */
function applyTrackingRecreation(store: ConversationStore, order: StoreWrite[]): boolean {
  const lost = new Set<string>();
  let recreated = false;
  for (const w of order) {
    const present = ROOMS.filter((r) => store.has(r));
    const had = store.has(w.room);
    const result = store.apply(w);
    // A conversation with content refused at the bound: which one is refused depends on the order.
    if (result === 'store_full') recreated = true;
    if (!had && result === 'ignored') lost.add(w.room);
    if (!had && result === 'applied' && lost.has(w.room)) recreated = true;
    for (const r of present) if (!store.has(r)) lost.add(r);
  }
  return recreated;
}

function convergenceProperty(options: Partial<StoreOptions>, { skipRecreation = false } = {}) {
  return fc.property(scenarioArb, fc.gen(), (scenario, g) => {
    const writes = writesOf(scenario);
    // The multiset: every write once, some twice or more.
    const dupIdx = writes.length === 0 ? [] : g(fc.array, fc.nat(writes.length - 1), { maxLength: 10 });
    const multiset = [...writes, ...dupIdx.map((i) => writes[i])];
    const storeNow = new ManualClock(T0 + 10_000);
    const states = [];
    const orders: StoreWrite[][] = [multiset];
    for (let k = 0; k < 3; k++) orders.push(g(fc.shuffledSubarray, multiset, { minLength: multiset.length, maxLength: multiset.length }));
    let recreated = false;
    for (const [k, order] of orders.entries()) {
      const { store } = makeStore(options, `s${k}`, storeNow);
      if (applyTrackingRecreation(store, order)) recreated = true;
      states.push(stateOf(store));
    }
    if (skipRecreation) fc.pre(!recreated);
    for (let k = 1; k < states.length; k++) expect(states[k], `store ${k} vs store 0`).to.deep.equal(states[0]);
  });
}

describe('ConversationStore: convergence (property)', () => {
  it('stores applying the same writes in any order, with duplicates, end equal (bounds never hit)', () => {
    fc.assert(convergenceProperty({}), { numRuns: 300 });
  });

  it('stores applying the same writes in any order, with duplicates, end equal (MAX_MESSAGES_PER_CONVERSATION=3, hit)', () => {
    fc.assert(convergenceProperty({ maxMessagesPerConversation: 3 }), { numRuns: 300 });
  });

  it('stores applying the same writes in any order, with duplicates, end equal (MAX_CONVERSATIONS=2, hit; runs that bring back an evicted conversation skipped)', () => {
    // Runs where some store re-creates a conversation it had evicted (or refused at the bound),
    // or refuses one with content (store_full: more conversations with content than places),
    // are skipped: the outcome there depends on the order (README, Bounds). The eviction rule
    // itself is tested deterministically above.
    fc.assert(convergenceProperty({ maxConversations: 2 }, { skipRecreation: true }), { numRuns: 300 });
  });

  it('two stores holding any split of the writes converge by catch-up to the state of a store that got them all', () => {
    fc.assert(
      fc.property(scenarioArb, fc.gen(), (scenario, g) => {
        const writes = writesOf(scenario);
        const where = writes.map(() => g(fc.constantFrom, 'a', 'b', 'both'));
        const now = new ManualClock(T0 + 10_000);
        const a = makeStore({}, 'sa', now).store;
        const b = makeStore({}, 'sb', now).store;
        const all = makeStore({}, 'sall', now).store;
        writes.forEach((w, i) => {
          if (where[i] !== 'b') a.apply(w);
          if (where[i] !== 'a') b.apply(w);
          all.apply(w);
        });
        catchUp(a, b);
        // Digests, histories and counts; not the last-activity time (a `created` write is not in
        // the digest, so a store may legitimately never receive an older one it lacks).
        const view = (s: ConversationStore) => {
          const st = stateOf(s);
          return { ...st, summary: st.summary.map((e) => ({ c: e.c, d: e.d })) };
        };
        expect(view(a), 'a after catch-up').to.deep.equal(view(all));
        expect(view(b), 'b after catch-up').to.deep.equal(view(all));
      }),
      { numRuns: 200 },
    );
  });
});

describe('ConversationStore: resume (resumeAfter)', () => {
  const ids = (answer: ReturnType<ConversationStore['resumeAfter']>) => (answer.complete ? answer.messages.map((m) => m.id) : null);

  it('gives what sorts after since, without deleted messages', () => {
    const { store, clock } = makeStore();
    const [a, b, c] = [id(T0, 0, 'n1'), id(T0 + 10, 0, 'n1'), id(T0 + 20, 0, 'n1')];
    store.apply(created('r', id(T0 - 1, 0, 'n1')));
    for (const [m, ts] of [[a, T0], [b, T0 + 10], [c, T0 + 20]] as const) {
      clock.t = ts;
      store.apply(message('r', m, ts));
    }
    store.apply({ type: 'deleted', room: 'r', id: c, ts: T0 + 20, at: id(T0 + 21, 0, 'n1') });
    expect(ids(store.resumeAfter('r', a))).to.deep.equal([b]);
  });

  it('is incomplete for an unknown since', () => {
    const { store } = makeStore();
    store.apply(created('r', id(T0 - 1, 0, 'n1')));
    expect(store.resumeAfter('r', id(T0, 0, 'n1')).complete).to.equal(false);
    expect(store.resumeAfter('nope', id(T0, 0, 'n1')).complete).to.equal(false);
  });

  it('replays a message that sorts before since but arrived after it (a backdated post, a late write)', () => {
    const { store, clock } = makeStore();
    const since = id(T0, 0, 'n1');
    const backdated = id(T0 + 100, 0, 'n2');
    store.apply(message('r', since, T0));
    clock.t = T0 + 100;
    store.apply(message('r', backdated, T0 - 60_000)); // sorts a minute before since
    expect(ids(store.resumeAfter('r', since))).to.deep.equal([backdated]);
  });

  it('replays the messages that arrived less than RESUME_WINDOW_MS before since (whatever their origin), not older ones', () => {
    const { store, clock } = makeStore();
    const old = id(T0, 0, 'n2');
    const racing = id(T0 + 10_000, 0, 'n2');
    const sameOrigin = id(T0 + 10_001, 0, 'n1');
    const since = id(T0 + 10_002, 0, 'n1');
    clock.t = T0;
    store.apply(message('r', old, T0));
    clock.t = T0 + 10_000;
    store.apply(message('r', racing, T0 + 10_000));
    clock.t = T0 + 10_001;
    store.apply(message('r', sameOrigin, T0 + 10_001));
    clock.t = T0 + 10_002;
    store.apply(message('r', since, T0 + 10_002));
    // `racing` and `sameOrigin` may have reached the client's old instance after the client
    // left (another origin a few ms away; a message lost on a link that dropped while a later
    // one took another path): replayed. `old` arrived long before: not.
    expect(ids(store.resumeAfter('r', since))).to.deep.equal([racing, sameOrigin]);
  });

  it('is incomplete when since itself arrived late: by catch-up, or long after it was written', () => {
    const { store, clock } = makeStore();
    const viaCatchUp = id(T0, 0, 'n2');
    store.apply(message('r', viaCatchUp, T0), 'catch-up');
    expect(store.resumeAfter('r', viaCatchUp).complete).to.equal(false);
    const slow = id(T0 + 1, 0, 'n2');
    clock.t = T0 + 60_000;
    store.apply(message('r', slow, T0 + 1));
    expect(store.resumeAfter('r', slow).complete).to.equal(false);
    const prompt = id(T0 + 60_000, 0, 'n2');
    store.apply(message('r', prompt, T0 + 60_000));
    expect(store.resumeAfter('r', prompt).complete).to.equal(true);
  });
});
