/**
 * Sends that never double (issue 13 item 6), on real processes: a WebSocket message with a
 * `clientId` resent on the same instance, or on another one after the first was killed
 * (kill -9), stores nothing new and answers the sender with the original message; every
 * member sees it exactly once. Bad clientIds are refused with invalid_field, nothing stored.
 */
import { expect } from 'chai';
import type { Frame } from '../helpers/client.js';
import { stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { api } from '../helpers/rest.js';
import { poll } from '../helpers/wait.js';

const clients = new ClientPool();

afterEach(async () => {
  await clients.closeAll();
  await stopAll();
});

const isText = (text: string) => (f: Frame) => f.type === 'message' && f.text === text;

describe('clientId: sends that never double', function () {
  this.timeout(30_000);

  it('a resend on the same instance, and on another after kill -9 of the first, stores nothing and answers with the original id', async () => {
    const [a, b] = await fullMesh(2);
    const room = 'dedupe-room';
    const alice = await clients.connect(a);
    await alice.join(room, 'alice');
    const bob = await clients.connect(b);
    await bob.join(room, 'bob');

    const send = { type: 'message', room, text: 'hello once', clientId: 'send-1' };
    const echo = await alice.request(send, isText('hello once'));
    await bob.waitFor(isText('hello once'), 5000, 'the message on B');

    // Same instance: the original frame again, to the sender only.
    const again = await alice.request(send, isText('hello once'));
    expect(again.id).to.equal(echo.id);

    // Kill A; the client retries on B with the same clientId.
    await a.kill();
    const alice2 = await clients.connect(b);
    await alice2.join(room, 'alice');
    const retried = await alice2.request(send, isText('hello once'));
    expect(retried.id).to.equal(echo.id);

    // A fence: a later message reaches bob after anything the resends could have caused.
    await alice2.say(room, 'fence');
    await bob.waitFor(isText('fence'), 5000, 'the fence on B');
    expect(bob.frames.filter(isText('hello once'))).to.have.length(1);
    expect(alice2.frames.filter(isText('hello once'))).to.have.length(1);
    const history = await api(b, 'GET', `/api/conversations/${room}`);
    const stored = (history.body.messages as Array<{ content: string }>).filter((m) => m.content === 'hello once');
    expect(stored).to.have.length(1);
  });

  it('the same clientId from another user, or in another room, is another send', async () => {
    const [a, b] = await fullMesh(2);
    const alice = await clients.connect(a);
    await alice.join('room-x', 'alice');
    await alice.join('room-y', 'alice');
    const carol = await clients.connect(b);
    await carol.join('room-x', 'carol');
    const one = await alice.request({ type: 'message', room: 'room-x', text: 'from alice', clientId: 'k' }, isText('from alice'));
    const two = await carol.request({ type: 'message', room: 'room-x', text: 'from carol', clientId: 'k' }, isText('from carol'));
    const three = await alice.request({ type: 'message', room: 'room-y', text: 'alice in y', clientId: 'k' }, isText('alice in y'));
    expect(new Set([one.id, two.id, three.id]).size).to.equal(3);
    await poll(async () => ((await api(a, 'GET', '/api/conversations/room-x')).body.messages as unknown[]).length === 2, { what: 'both messages on A' });
  });

  it('refuses a bad clientId with invalid_field and stores nothing', async () => {
    const [a] = await fullMesh(1);
    const alice = await clients.connect(a);
    await alice.join('bad-cid', 'alice');
    for (const clientId of ['', 'x'.repeat(65), 42, null, ['a'], 'tab\there', '\ud800']) {
      const reply = await alice.request({ type: 'message', room: 'bad-cid', text: 'nope', clientId }, (f) => f.type === 'error' || f.type === 'message');
      expect(reply.type, JSON.stringify(clientId)).to.equal('error');
      expect(reply.code).to.equal('invalid_field');
    }
    await alice.say('bad-cid', 'fence');
    const history = await api(a, 'GET', '/api/conversations/bad-cid');
    expect((history.body.messages as Array<{ content: string }>).map((m) => m.content)).to.deep.equal(['fence']);
  });

  it('an error answering a send names its room and clientId (not_joined, user_mismatch, rate_limited)', async () => {
    const [a] = await fullMesh(1, { RATE_LIMIT_PER_SEC: '5', RATE_LIMIT_BURST: '5', RATE_LIMIT_STRIKES: '1000' });
    const alice = await clients.connect(a);
    const notJoined = await alice.request({ type: 'message', room: 'elsewhere', text: 'x', clientId: 'c-1' }, (f) => f.type === 'error');
    expect(notJoined).to.include({ code: 'not_joined', room: 'elsewhere', clientId: 'c-1' });
    await alice.join('named', 'alice');
    const mismatch = await alice.request({ type: 'message', room: 'named', user: 'bob', text: 'x', clientId: 'c-2' }, (f) => f.type === 'error');
    expect(mismatch).to.include({ code: 'user_mismatch', room: 'named', clientId: 'c-2' });
    // Over the rate: the refused frames are named too, each by its own clientId.
    for (let i = 0; i < 12; i++) alice.send({ type: 'message', room: 'named', text: `burst ${i}`, clientId: `b-${i}` });
    const limited = await poll(() => {
      const got = alice.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited');
      return got.length > 0 ? got : null;
    }, { what: 'a rate_limited error' });
    for (const f of limited) {
      expect(f.room).to.equal('named');
      expect(f.clientId).to.match(/^b-\d+$/);
    }
    // A send without clientId: the room only.
    const plain = await alice.request({ type: 'message', room: 'nowhere', text: 'x' }, (f) => f.type === 'error' && f.room === 'nowhere');
    expect(plain).to.not.have.property('clientId');
  });
});
