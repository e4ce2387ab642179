/**
 * History paging on its own (lib/core/history-page.ts): over a store with a small memory
 * window and a disk holding everything, any limit walks the whole history backward and
 * forward with nothing skipped or repeated (property, timestamps with ties); the ends, an
 * empty conversation and bad cursors answer as documented.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ConversationStore, type StoreOptions, type StoredMessage } from '../../lib/core/conversation-store.js';
import { compare } from '../../lib/core/conversation.js';
import { readPage, type HistoryPage, type OlderHistory } from '../../lib/core/history-page.js';
import { HybridClock, timestampId } from '../../lib/core/hybrid-clock.js';

const T0 = 1_700_000_000_000;
const ROOM = 'r';

function storeWith(timestamps: number[], window: number): { store: ConversationStore; all: StoredMessage[]; disk: OlderHistory } {
  const options: StoreOptions = { conversationTtlMs: 1e12, maxMessagesPerConversation: window, maxConversations: 10, maxStoreBytes: Number.MAX_SAFE_INTEGER };
  const store = new ConversationStore(options, 'n', new HybridClock(() => T0), () => T0);
  store.apply({ type: 'created', room: ROOM, id: timestampId({ wall: T0, counter: 0 }, 'n') });
  const all: StoredMessage[] = timestamps.map((ts, i) => ({ id: timestampId({ wall: T0, counter: i + 1 }, 'n'), sender: 'customer', content: `m${i}`, timestamp: T0 - 1e6 + ts }));
  // Newest first, so a full memory window keeps the newest and never refuses one.
  for (const m of [...all].sort(compare).reverse()) store.apply({ type: 'message', id: m.id, room: ROOM, user: m.sender, text: m.content, ts: m.timestamp });
  all.sort(compare);
  const disk: OlderHistory = { historyBefore: (_room, before) => all.filter((m) => before === null || compare(m, before) < 0) };
  return { store, all, disk };
}

const page = (store: ConversationStore, disk: OlderHistory | null, query: { limit: number; before?: string; after?: string }): HistoryPage => {
  const p = readPage(store, disk, ROOM, query);
  if (typeof p === 'string') throw new Error(`refused: ${p}`);
  return p;
};

describe('history paging (core)', () => {
  it('walks the whole history backward and forward, none skipped or repeated, for any limit and memory window', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 60 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 20 }), (timestamps, window, limit) => {
        const { store, all, disk } = storeWith(timestamps, window);
        const ids = all.map((m) => m.id);
        let p = page(store, disk, { limit });
        expect(p.next).to.equal(null);
        const back = [p];
        while (p.prev !== null) back.unshift((p = page(store, disk, { limit, before: p.prev })));
        expect(back.flatMap((x) => x.messages.map((m) => m.id))).to.deep.equal(ids);
        const forward = [...p.messages.map((m) => m.id)];
        while (p.next !== null) forward.push(...(p = page(store, disk, { limit, after: p.next })).messages.map((m) => m.id));
        expect(forward).to.deep.equal(ids);
      }),
      { numRuns: 200 },
    );
  });

  it('an empty conversation is one empty page; an empty page has no cursors; bad cursors are refused', () => {
    const empty = storeWith([], 10);
    expect(page(empty.store, null, { limit: 5 })).to.deep.equal({ messages: [], prev: null, next: null });
    const { store, all } = storeWith([1, 2, 3], 10);
    expect(page(store, null, { limit: 5, after: all[2].id })).to.deep.equal({ messages: [], prev: null, next: null });
    expect(page(store, null, { limit: 5, before: all[0].id })).to.deep.equal({ messages: [], prev: null, next: null });
    expect(page(store, null, { limit: 2 }).prev).to.equal(all[1].id);
    expect(readPage(store, null, ROOM, { limit: 5, before: 'garbage' })).to.equal('invalid_cursor');
    expect(readPage(store, null, ROOM, { limit: 5, after: timestampId({ wall: T0, counter: 999 }, 'x') })).to.equal('cursor_not_found');
  });
});
