/**
 * Catch-up holds on real processes: live deliveries wait for catch-up with a peer that just
 * linked, and a peer of the previous protocol (no end markers on its summary and gives)
 * delays them at most CATCH_UP_HOLD_MS, never loses them.
 */
import { expect } from 'chai';
import { FakePeer } from '../helpers/fake-peer.js';
import { stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';

const clients = new ClientPool();

afterEach(async () => {
  FakePeer.closeAll();
  await clients.closeAll();
  await stopAll();
});

describe('catch-up holds', function () {
  this.timeout(30_000);

  it('a peer of the previous protocol (a summary without `last`) delays live deliveries by at most ~2 s and loses none', async () => {
    const [a] = await fullMesh(1);
    const client = await clients.connect(a);
    await client.join('r', 'alice');
    const peer = await FakePeer.link(a);
    // The old protocol: a summary with no `last` marker, never completed.
    peer.envelope({ t: 'sync' }, { k: 'sum', entries: [] });
    const sentAt = Date.now();
    const echo = await client.say('r', 'held, not lost');
    const delay = Date.now() - sentAt;
    expect(echo.text).to.equal('held, not lost');
    expect(delay, 'the echo waited for the hold to end').to.be.within(500, 4000);
    // Once released, live again at once.
    const t = Date.now();
    await client.say('r', 'live again');
    expect(Date.now() - t).to.be.below(500);
  });

  it('between two current instances the hold ends with catch-up: a message right after link-up is delivered within a second', async () => {
    const [a, b] = await fullMesh(2);
    const ca = await clients.connect(a);
    const cb = await clients.connect(b);
    await ca.join('r', 'a');
    await cb.join('r', 'b');
    const t = Date.now();
    await ca.say('r', 'right after link-up');
    await cb.waitFor((f) => f.text === 'right after link-up', 2000);
    expect(Date.now() - t).to.be.below(1000);
  });
});
