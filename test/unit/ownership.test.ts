/**
 * AUTH=jwt data in the replicated store: a conversation's owner (on `created`) and a
 * message's author (`by` on `message`) are validated from peers, merged in any order, and
 * handed on by catch-up.
 */
import { expect } from 'chai';
import { ConversationStore, type StoreWrite } from '../../lib/core/conversation-store.js';
import { HybridClock, timestampId } from '../../lib/core/hybrid-clock.js';
import { decodeWrite } from '../../lib/core/store-write.js';

const T0 = 1_700_000_000_000;
const limits = { maxNameLength: 128, maxTextLength: 8000 };
const id = (wall: number, node = 'n1') => timestampId({ wall, counter: 0 }, node);
const store = () => {
  const now = () => T0 + 1000;
  return new ConversationStore({ conversationTtlMs: 3600_000, maxMessagesPerConversation: 100, maxConversations: 100, maxStoreBytes: Number.MAX_SAFE_INTEGER }, 'me', new HybridClock(now), now);
};

describe('ownership and authorship in the store', () => {
  it('decodeWrite keeps a valid owner and by, and refuses bad ones (older nodes, without the fields, are unchanged)', () => {
    const created = { type: 'created', room: 'r', id: id(T0), owner: 'ann' };
    expect(decodeWrite(created, limits, T0)).to.deep.equal(created);
    const msg = { type: 'message', room: 'r', id: id(T0), user: 'customer', text: 'hi', ts: T0, by: 'ann' };
    expect(decodeWrite(msg, limits, T0)).to.deep.equal(msg);
    for (const bad of ['', 'x'.repeat(129), 7, null, 'a\ud800']) {
      expect(decodeWrite({ ...created, owner: bad }, limits, T0), JSON.stringify(bad)).to.equal(null);
      expect(decodeWrite({ ...msg, by: bad }, limits, T0), JSON.stringify(bad)).to.equal(null);
    }
  });

  it('the owner is the one of the smallest created write naming one, whatever the order', () => {
    const writes: StoreWrite[] = [
      { type: 'message', room: 'r', id: id(T0 - 300), user: 'customer', text: 'first', ts: T0 - 300, by: 'ann' },
      { type: 'created', room: 'r', id: id(T0 - 200), owner: 'ann' },
      { type: 'created', room: 'r', id: id(T0 - 100, 'n2'), owner: 'mallory' },
      { type: 'created', room: 'r', id: id(T0 - 400) },
    ];
    for (const order of [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]]) {
      const s = store();
      for (const i of order) s.apply(writes[i]);
      expect(s.ownerOf('r'), order.join()).to.equal('ann');
      expect(s.authorOf('r', id(T0 - 300))).to.equal('ann');
      expect(s.history('r')![0]).to.include({ author: 'ann' });
    }
  });

  it('catch-up hands the owner and the authors on', () => {
    const a = store();
    a.apply({ type: 'created', room: 'r', id: id(T0 - 400) });
    a.apply({ type: 'created', room: 'r', id: id(T0 - 200), owner: 'ann' });
    a.apply({ type: 'message', room: 'r', id: id(T0 - 100), user: 'agent', text: 'hello', ts: T0 - 100, by: 'bob' });
    const b = store();
    for (const w of a.writesMissingFrom('r', new Set())) b.apply(w);
    expect(b.ownerOf('r')).to.equal('ann');
    expect(b.authorOf('r', id(T0 - 100))).to.equal('bob');
    const c = store();
    const single = store();
    single.apply({ type: 'created', room: 's', id: id(T0 - 50), owner: 'zoe' });
    for (const w of single.writesMissingFrom('s', new Set())) c.apply(w);
    expect(c.ownerOf('s')).to.equal('zoe');
  });
});

describe('client frames with a token', () => {
  it('join may leave user out and refresh is a frame only for a connection with a token', async () => {
    const { decodeClientFrame } = await import('../../lib/protocol/client-frames.js');
    const plain = { maxNameLength: 128, maxTextLength: 8000 };
    const authed = { ...plain, authenticated: true as const };
    expect(decodeClientFrame('{"type":"join","room":"r"}', plain)).to.include({ ok: false, code: 'invalid_field' });
    expect(decodeClientFrame('{"type":"join","room":"r"}', authed)).to.deep.equal({ ok: true, frame: { type: 'join', room: 'r', user: undefined } });
    expect(decodeClientFrame('{"type":"refresh","token":"a.b.c"}', plain)).to.include({ ok: false, code: 'unknown_type' });
    expect(decodeClientFrame('{"type":"refresh","token":"a.b.c"}', authed)).to.deep.equal({ ok: true, frame: { type: 'refresh', token: 'a.b.c' } });
    expect(decodeClientFrame('{"type":"refresh","token":7}', authed)).to.include({ ok: false, code: 'invalid_field' });
    expect(decodeClientFrame(JSON.stringify({ type: 'refresh', token: 'x'.repeat(16_385) }), authed)).to.include({ ok: false, code: 'invalid_field' });
  });
});
