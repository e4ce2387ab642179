/**
 * decodeWrite: a write from a peer (live or catch-up) gets the bounds of a client frame.
 */
import { expect } from 'chai';
import { MAX_COUNTER, MAX_FORWARD_JUMP_MS, timestampId } from '../../lib/core/hybrid-clock.js';
import { decodeWrite, MESSAGE_TS_MAX_FUTURE_MS, MESSAGE_TS_MAX_PAST_MS } from '../../lib/core/store-write.js';

const limits = { maxNameLength: 128, maxTextLength: 8000 };
const NOW = 1_700_000_000_000;
const id = (wall: number, counter = 0, node = 'peer1') => timestampId({ wall, counter }, node);
const message = (over: Record<string, unknown> = {}) => ({ type: 'message', id: id(NOW), room: 'lobby', user: 'alice', text: 'hi', ts: NOW, ...over });

describe('decodeWrite: writes from peers get the bounds of client frames', () => {
  it('takes well-formed writes of every type', () => {
    expect(decodeWrite(message(), limits, NOW)).to.deep.equal(message());
    expect(decodeWrite({ type: 'created', room: 'lobby', id: id(NOW) }, limits, NOW)).to.deep.equal({ type: 'created', room: 'lobby', id: id(NOW) });
    const deleted = { type: 'deleted', room: 'lobby', id: id(NOW - 5000), ts: NOW - 5000, at: id(NOW) };
    expect(decodeWrite(deleted, limits, NOW)).to.deep.equal(deleted);
    // An empty text is a deleted message's placeholder in catch-up.
    expect(decodeWrite(message({ text: '' }), limits, NOW)).to.not.equal(null);
    // The clock's last counter is a counter like any other (the clock moves to the next millisecond).
    expect(decodeWrite(message({ id: id(NOW, MAX_COUNTER) }), limits, NOW)).to.not.equal(null);
  });

  it('keeps a message\'s client id (cid: 1–64 characters, no control characters) and refuses a bad one', () => {
    expect(decodeWrite(message({ cid: 'send-1' }), limits, NOW)).to.deep.equal(message({ cid: 'send-1' }));
    expect(decodeWrite(message({ cid: 'c'.repeat(64) }), limits, NOW)).to.not.equal(null);
    for (const cid of ['', 'c'.repeat(65), 7, null, 'a\u0000b', 'x\ud800']) expect(decodeWrite(message({ cid }), limits, NOW), JSON.stringify(cid)).to.equal(null);
  });

  it('refuses names and texts over the node\'s limits, control characters and unpaired surrogates', () => {
    expect(decodeWrite(message({ user: 'u'.repeat(128) }), limits, NOW)).to.not.equal(null);
    expect(decodeWrite(message({ user: 'u'.repeat(129) }), limits, NOW)).to.equal(null);
    expect(decodeWrite(message({ room: 'r'.repeat(129) }), limits, NOW)).to.equal(null);
    expect(decodeWrite({ type: 'created', room: 'r'.repeat(5000), id: id(NOW) }, limits, NOW)).to.equal(null);
    expect(decodeWrite(message({ text: 't'.repeat(8000) }), limits, NOW)).to.not.equal(null);
    expect(decodeWrite(message({ text: 't'.repeat(8001) }), limits, NOW)).to.equal(null);
    // The limits are the node's own (MAX_TEXT_LENGTH, MAX_NAME_LENGTH), not fixed ones.
    expect(decodeWrite(message({ text: 'eleven char' }), { maxNameLength: 128, maxTextLength: 10 }, NOW)).to.equal(null);
    expect(decodeWrite(message({ user: 'alice' }), { maxNameLength: 4, maxTextLength: 10 }, NOW)).to.equal(null);
    for (const user of ['', '   ', 'a\u0000b', 'a\u0085b', 'a\ud800b']) expect(decodeWrite(message({ user }), limits, NOW), JSON.stringify(user)).to.equal(null);
    expect(decodeWrite(message({ text: 'x\udc00' }), limits, NOW)).to.equal(null);
    expect(decodeWrite(message({ room: 'a\nb' }), limits, NOW)).to.equal(null);
  });

  it(`refuses ids whose clock is more than ${MAX_FORWARD_JUMP_MS} ms ahead, and ids that are not clock stamps`, () => {
    const ahead = NOW + MAX_FORWARD_JUMP_MS;
    expect(decodeWrite(message({ id: id(ahead), ts: ahead }), limits, NOW)).to.not.equal(null);
    expect(decodeWrite(message({ id: id(ahead + 1), ts: ahead }), limits, NOW)).to.equal(null);
    expect(decodeWrite({ type: 'created', room: 'lobby', id: id(NOW + 10 * 365 * 86_400_000) }, limits, NOW)).to.equal(null);
    expect(decodeWrite({ type: 'deleted', room: 'lobby', id: id(NOW), ts: NOW, at: id(ahead + 1) }, limits, NOW)).to.equal(null);
    for (const bad of ['m1', '', 'zzzzzzzzzzzzz', `${'0'.repeat(13)}x`, 'ZZZZZZZZZZZZZ-node', id(NOW) + 'x'.repeat(300)]) {
      expect(decodeWrite(message({ id: bad }), limits, NOW), bad).to.equal(null);
    }
  });

  it('refuses a ts outside [wall of its id − MESSAGE_TS_MAX_PAST_MS, wall + MESSAGE_TS_MAX_FUTURE_MS]', () => {
    expect(MESSAGE_TS_MAX_PAST_MS).to.equal(30 * 24 * 3600_000);
    expect(MESSAGE_TS_MAX_FUTURE_MS).to.equal(60_000);
    for (const [ts, ok] of [
      [NOW - MESSAGE_TS_MAX_PAST_MS, true],
      [NOW - MESSAGE_TS_MAX_PAST_MS - 1, false],
      [NOW + MESSAGE_TS_MAX_FUTURE_MS, true],
      [NOW + MESSAGE_TS_MAX_FUTURE_MS + 1, false],
      [NOW + 10 * 365 * 86_400_000, false],
      [1.5, false],
      [-1, false],
    ] as const) {
      expect(decodeWrite(message({ ts }), limits, NOW) !== null, `ts ${ts}`).to.equal(ok);
      // A delete carries its message's ts and id: the same rule.
      expect(decodeWrite({ type: 'deleted', room: 'lobby', id: id(NOW), ts, at: id(NOW) }, limits, NOW) !== null, `deleted ts ${ts}`).to.equal(ok);
    }
  });
});

describe('decodeWrite: the desk\'s writes (field, read, edited)', () => {
  const field = (over: Record<string, unknown>) => ({ type: 'field', room: 'lobby', id: id(NOW), ...over });
  it('takes well-formed ones', () => {
    for (const w of [
      field({ f: 'status', v: 'open' }),
      field({ f: 'status', v: 'snoozed', until: NOW + 1000 }),
      field({ f: 'assignee', v: 'agent-1', by: 'agent-2' }),
      field({ f: 'assignee', v: null }),
      field({ f: 'metadata', v: { a: 'x', b: 1, c: true, d: null } }),
      { type: 'read', room: 'lobby', id: id(NOW), user: 'alice', upTo: id(NOW - 10), at: NOW - 10 },
      { type: 'edited', room: 'lobby', id: id(NOW), msg: id(NOW - 10), text: 'new', ts: NOW - 10, by: 'alice' },
    ]) expect(decodeWrite(w, limits, NOW), JSON.stringify(w)).to.deep.equal(w);
  });
  it('refuses bad ones', () => {
    for (const w of [
      field({ f: 'status', v: 'closed' }),
      field({ f: 'status', v: 'snoozed' }),
      field({ f: 'status', v: 'open', until: NOW }),
      field({ f: 'assignee', v: '' }),
      field({ f: 'assignee', v: 'a'.repeat(129) }),
      field({ f: 'assignee', v: 5 }),
      field({ f: 'metadata', v: [] }),
      field({ f: 'metadata', v: { nested: { a: 1 } } }),
      field({ f: 'metadata', v: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 1])) }),
      field({ f: 'metadata', v: { long: 'x'.repeat(257) } }),
      field({ f: 'color', v: 'red' }),
      field({ f: 'status', v: 'open', id: 'not-a-stamp' }),
      { type: 'read', room: 'lobby', id: id(NOW), user: '', upTo: id(NOW - 10), at: NOW - 10 },
      { type: 'read', room: 'lobby', id: id(NOW), user: 'alice', upTo: 'garbage', at: NOW - 10 },
      { type: 'edited', room: 'lobby', id: id(NOW), msg: id(NOW - 10), text: '  ', ts: NOW - 10 },
      { type: 'edited', room: 'lobby', id: id(NOW), msg: id(NOW - 10), text: 't'.repeat(8001), ts: NOW - 10 },
    ]) expect(decodeWrite(w, limits, NOW), JSON.stringify(w).slice(0, 120)).to.equal(null);
  });
});
