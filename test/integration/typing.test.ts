/**
 * Typing indicators on real processes (127.0.0.1, static peers): `{"type":"typing","room"}`
 * from a member reaches the room's other members on every instance as
 * `{"type":"typing","room","user"}`; at most one per user and room every 2 s is forwarded
 * (the rest are dropped and counted in /metrics); a non-member and bad frames get error
 * frames; an instance with no member of the room is sent nothing; a peer of the previous
 * version (no `desk` in its hello) is never sent a typing envelope.
 * No sleeps: a later frame on the same connection or link proves an earlier one did not come.
 */
import { expect } from 'chai';
import { FakePeer } from '../helpers/fake-peer.js';
import { Instance, stopAll } from '../helpers/instance.js';
import { metric } from '../helpers/rest.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import type { Frame, TestClient } from '../helpers/client.js';
import { poll } from '../helpers/wait.js';

const isTyping = (room: string, user: string) => (f: Frame) => f.type === 'typing' && f.room === room && f.user === user;
const typingCount = (client: TestClient, room: string) => client.frames.filter((f) => f.type === 'typing' && f.room === room).length;

/** Waits until `client` sees `user` among the members of `room` (presence has travelled). */
async function seesMember(client: TestClient, room: string, user: string): Promise<void> {
  await poll(async () => ((await client.request({ type: 'members', room }, (f) => f.type === 'members' && f.room === room)).members as string[]).includes(user), { what: `${user} in ${room}` });
}

describe('typing indicators', function () {
  this.timeout(20_000);
  const clients = new ClientPool();

  afterEach(async () => {
    FakePeer.closeAll();
    await clients.closeAll();
    await stopAll();
  });

  describe('on two instances', () => {
    let a: Instance;
    let b: Instance;
    beforeEach(async () => {
      [a, b] = await fullMesh(2);
    });

    it('reaches the other members on both instances, not the typer; rate limited to one per 2 s', async () => {
      const alice = await clients.connect(a);
      const carol = await clients.connect(a);
      const bob = await clients.connect(b);
      await alice.join('support', 'alice');
      await carol.join('support', 'carol');
      await bob.join('support', 'bob');
      await seesMember(alice, 'support', 'bob');

      const t0 = Date.now();
      for (let i = 0; i < 10; i++) alice.send({ type: 'typing', room: 'support' });
      expect(await bob.waitFor(isTyping('support', 'alice'))).to.deep.equal({ type: 'typing', room: 'support', user: 'alice' });
      await carol.waitFor(isTyping('support', 'alice'));
      await poll(async () => (await metric(a, 'chatmesh_typing_forwarded_total')) + (await metric(a, 'chatmesh_typing_dropped_total')) === 10, { what: '10 typing frames counted' });
      expect(await metric(a, 'chatmesh_typing_forwarded_total')).to.equal(1);
      expect(await metric(a, 'chatmesh_typing_dropped_total')).to.equal(9);
      // A message after the burst travels the same connections and link: once it is in, no other typing frame is on its way.
      await alice.say('support', 'after the burst');
      await bob.waitFor((f) => f.type === 'message' && f.text === 'after the burst');
      await carol.waitFor((f) => f.type === 'message' && f.text === 'after the burst');
      expect(typingCount(bob, 'support')).to.equal(1);
      expect(typingCount(carol, 'support')).to.equal(1);
      expect(typingCount(alice, 'support'), 'the typer hears nothing of its own').to.equal(0);

      // 2 s after the first, another one passes.
      await poll(() => {
        alice.send({ type: 'typing', room: 'support' });
        return typingCount(bob, 'support') === 2;
      }, { timeoutMs: 5000, intervalMs: 100, what: 'a second typing frame at bob' });
      expect(Date.now() - t0).to.be.at.least(2000);
    });

    it('is sent to no instance without members of the room', async () => {
      const alice = await clients.connect(a);
      const carol = await clients.connect(a);
      const bob = await clients.connect(b);
      await alice.join('local-only', 'alice');
      await carol.join('local-only', 'carol');
      await bob.join('elsewhere', 'bob');
      await seesMember(bob, 'elsewhere', 'bob');
      await poll(async () => (await b.health()).body.mesh.received >= 3, { what: 'the creation and both joins of A at B' });
      const before = (await b.health()).body.mesh.received;
      alice.send({ type: 'typing', room: 'local-only' });
      await carol.waitFor(isTyping('local-only', 'alice'));
      // The message is a write flooded to every peer: B receives it, and nothing else from A.
      await alice.say('local-only', 'marker');
      await poll(async () => (await b.health()).body.mesh.received > before, { what: 'the marker write at B' });
      expect((await b.health()).body.mesh.received - before).to.equal(1);
    });

    it('refuses a non-member and bad frames with error frames', async () => {
      const dave = await clients.connect(a);
      await dave.join('lobby', 'dave');
      const notJoined = await dave.request({ type: 'typing', room: 'support' }, (f) => f.type === 'error');
      expect(notJoined.code).to.equal('not_joined');
      for (const bad of [{ type: 'typing' }, { type: 'typing', room: 5 }, { type: 'typing', room: '' }, { type: 'typing', room: ['lobby'] }]) {
        const error = await dave.request(bad, (f) => f.type === 'error');
        expect(error.code, JSON.stringify(bad)).to.equal('invalid_field');
      }
      expect(await metric(a, 'chatmesh_typing_forwarded_total')).to.equal(0);
    });
  });

  it('is never sent to a peer of the previous version, and reaches one that announced desk', async () => {
    const a = await Instance.start({ env: { DISCOVERY: 'off' } });
    const old = await FakePeer.link(a);
    const desk = await FakePeer.link(a, { desk: true });
    old.join('support', 'old-member');
    desk.join('support', 'desk-member');
    const alice = await clients.connect(a);
    await alice.join('support', 'alice');
    await seesMember(alice, 'support', 'old-member');
    await seesMember(alice, 'support', 'desk-member');

    alice.send({ type: 'typing', room: 'support' });
    await alice.say('support', 'marker');
    const isMarker = (h: Record<string, unknown>) => h.t === 'w' && h.r === 'support';
    await poll(() => desk.headers().some(isMarker) && old.headers().some(isMarker), { what: 'the marker write at both fakes' });
    const typingTo = (peer: FakePeer) => peer.headers().filter((h) => h.t === 'typing');
    expect(typingTo(desk)).to.have.length(1);
    expect(typingTo(desk)[0]).to.include({ r: 'support', o: a.nodeId, h: 1 });
    expect(desk.texts.find((t) => t.startsWith('{"t":"typing"'))!.split('\n')[1]).to.equal('{"type":"typing","room":"support","user":"alice"}');
    expect(typingTo(old), 'no typing envelope to the old peer').to.have.length(0);
    expect(old.closeCode).to.equal(null);
    // The welcome announced desk to both.
    expect((await old.frame(0)).desk).to.equal(1);
  });
});
