/**
 * The support desk over WebSocket and the mesh, on real processes (issue 13 items 2, 4, 7):
 * read receipts reach the other instance; the `desk` gate keeps the desk's writes from a peer
 * of the previous protocol (live and in catch-up) while it still gets every message; bad
 * read frames get a clear error and store nothing.
 */
import { expect } from 'chai';
import type { Frame } from '../helpers/client.js';
import { FakePeer } from '../helpers/fake-peer.js';
import { stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';

const clients = new ClientPool();

afterEach(async () => {
  FakePeer.closeAll();
  await clients.closeAll();
  await stopAll();
});

const isText = (text: string) => (f: Frame) => f.type === 'message' && f.text === text;
/** The JSON payloads a fake peer received in `w` envelopes. */
const writesTo = (peer: FakePeer) =>
  peer.texts.filter((t) => t.startsWith('{"t":"w"')).map((t) => JSON.parse(t.slice(t.indexOf('\n') + 1)) as Record<string, unknown>);

describe('desk over WebSocket and the mesh', function () {
  this.timeout(30_000);

  it('read receipts reach members on the other instance; a cursor never moves back', async () => {
    const [a, b] = await fullMesh(2);
    const alice = await clients.connect(a);
    await alice.join('receipts', 'alice');
    const bob = await clients.connect(b);
    await bob.join('receipts', 'bob');
    const first = await alice.say('receipts', 'one');
    const second = await alice.say('receipts', 'two');
    await bob.waitFor(isText('two'), 5000, 'two on B');
    const receipt = alice.next((f) => f.type === 'read', 5000, 'bob\'s receipt on A');
    bob.send({ type: 'read', room: 'receipts', upTo: second.id });
    expect(await receipt).to.deep.equal({ type: 'read', room: 'receipts', user: 'bob', upTo: second.id });
    // Back to the first: nothing moves, no receipt; a fence shows none came.
    bob.send({ type: 'read', room: 'receipts', upTo: first.id });
    await alice.say('receipts', 'fence');
    await bob.waitFor(isText('fence'), 5000, 'the fence on B');
    expect(alice.frames.filter((f) => f.type === 'read')).to.have.length(1);
  });

  it('bad read frames: a clear error code, nothing stored', async () => {
    const [a] = await fullMesh(1);
    const alice = await clients.connect(a);
    await alice.join('bad-read', 'alice');
    const m = await alice.say('bad-read', 'hello');
    const cases: Array<[unknown, string]> = [
      [{ type: 'read', room: 'bad-read' }, 'invalid_field'],
      [{ type: 'read', room: 'bad-read', upTo: 42 }, 'invalid_field'],
      [{ type: 'read', room: 'bad-read', upTo: '' }, 'invalid_field'],
      [{ type: 'read', room: 'bad-read', upTo: 'x'.repeat(300) }, 'invalid_field'],
      [{ type: 'read', room: 'bad-read', upTo: 'no-such-message' }, 'unknown_message'],
      [{ type: 'read', room: 'elsewhere', upTo: m.id }, 'not_joined'],
      [{ type: 'read', room: 7, upTo: m.id }, 'invalid_field'],
    ];
    for (const [frame, code] of cases) {
      const reply = await alice.request(frame, (f) => f.type === 'error' || f.type === 'read');
      expect(reply, JSON.stringify(frame)).to.include({ type: 'error', code });
    }
  });

  it('a peer of the previous protocol gets no desk write, live or in catch-up, and still every message', async () => {
    const [a] = await fullMesh(1);
    const old = await FakePeer.link(a);
    const current = await FakePeer.link(a, { desk: true });
    for (const peer of [old, current]) peer.envelope({ t: 'sync' }, { k: 'sum', entries: [], last: true });
    const alice = await clients.connect(a);
    await alice.join('gated', 'alice');
    const m = await alice.say('gated', 'before the receipt');
    await alice.request({ type: 'read', room: 'gated', upTo: m.id }, (f) => f.type === 'read');
    await alice.say('gated', 'after the receipt');
    for (const peer of [old, current]) await poll(() => writesTo(peer).some((w) => w.text === 'after the receipt'), { what: 'the second message at the fake peer' });
    expect(writesTo(old).map((w) => w.type)).to.not.include('read');
    expect(writesTo(current).map((w) => w.type)).to.include('read');

    // Catch-up: what each is given for the room when it holds nothing.
    for (const peer of [old, current]) peer.envelope({ t: 'sync' }, { k: 'want', c: 'gated', ids: [] });
    const given = async (peer: FakePeer) => {
      let writes: Array<Record<string, unknown>> = [];
      await poll(() => {
        writes = peer.texts.filter((t) => t.startsWith('{"t":"sync"')).map((t) => JSON.parse(t.slice(t.indexOf('\n') + 1))).filter((f) => f.k === 'give').flatMap((f) => f.writes);
        return peer.texts.some((t) => t.includes('"k":"give"') && t.includes('"last":true'));
      }, { what: 'the give' });
      return writes.map((w) => w.type);
    };
    const oldGiven = await given(old);
    expect(oldGiven).to.include('message');
    expect(oldGiven).to.not.include('read');
    expect(await given(current)).to.include('read');
    // The summary an old peer gets leaves the registers out of the digest, so it does not ask forever.
    expect(old.closeCode).to.equal(null);
  });
});
