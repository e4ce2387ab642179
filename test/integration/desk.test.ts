/**
 * The support desk over WebSocket and the mesh, on real processes (issue 13 items 2, 4, 7):
 * read receipts reach the other instance; the `desk` gate keeps the desk's writes from a peer
 * of the previous protocol (live and in catch-up) while it still gets every message; bad
 * read frames get a clear error and store nothing; edits made over REST reach members on the
 * other instance and its history; a snooze ends by itself (members are told) and a
 * customer's message reopens.
 */
import { expect } from 'chai';
import { connectWithHeader, mint } from '../helpers/auth.js';
import type { Frame } from '../helpers/client.js';
import { JWT_ENV, call, item, ok } from '../helpers/desk-api.js';
import { FakePeer } from '../helpers/fake-peer.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Instance, freePort, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';

const clients = new ClientPool();
const dirs: string[] = [];

afterEach(async () => {
  FakePeer.closeAll();
  await clients.closeAll();
  await stopAll();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
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

  it('edits replicate, show in the history of the other instance, reach its members; a customer edits only its own', async () => {
    const [a, b] = await fullMesh(2, JWT_ENV);
    const [ann, agent] = await Promise.all([mint({ sub: 'ann', role: 'customer' }), mint({ sub: 'agent-7', role: 'agent' })]);
    const id = (await ok(call(a, 'POST', '/api/conversations', undefined, ann), 201)).id;
    const mine = await ok(call(a, 'POST', `/api/conversations/${id}/messages`, { content: 'helo' }, ann), 201);
    const theirs = await ok(call(a, 'POST', `/api/conversations/${id}/messages`, { content: 'hi ann' }, agent), 201);
    const member = await connectWithHeader(b.url, agent);
    clients.track(member);
    await member.join(id, 'agent-7');
    const edited = await ok(call(a, 'PATCH', `/api/conversations/${id}/messages/${mine.id}`, { content: 'hello' }, ann));
    expect(edited).to.include({ id: mine.id, content: 'hello', sender: 'customer', author: 'ann' });
    expect(edited.editedAt).to.be.a('number');
    const frame = await member.waitFor((f: Frame) => f.type === 'edited');
    expect(frame).to.deep.equal({ type: 'edited', room: id, id: mine.id, text: 'hello', editedAt: edited.editedAt });
    const history = (await ok(call(b, 'GET', `/api/conversations/${id}`, undefined, agent))).messages;
    expect(history[0]).to.deep.equal(edited);
    expect((await call(b, 'PATCH', `/api/conversations/${id}/messages/${theirs.id}`, { content: 'changed' }, ann)).status).to.equal(403);
    // An agent may edit any; a delete beats an edit.
    await ok(call(b, 'PATCH', `/api/conversations/${id}/messages/${theirs.id}`, { content: 'hi Ann!' }, agent));
    expect((await call(b, 'DELETE', `/api/conversations/${id}/messages/${theirs.id}`, undefined, agent)).status).to.equal(204);
    expect((await call(b, 'PATCH', `/api/conversations/${id}/messages/${theirs.id}`, { content: 'again' }, agent)).status).to.equal(404);
    await poll(async () => (await ok(call(a, 'GET', `/api/conversations/${id}`, undefined, agent))).messages.length === 1, { what: 'the delete on A' });
  });

  it('a snooze ends by itself (members are told); a customer\'s message reopens a resolved conversation', async () => {
    const [a, b] = await fullMesh(2);
    const id = (await ok(call(a, 'POST', '/api/conversations'), 201)).id;
    await poll(async () => (await item(b, id)) !== undefined, { what: 'the conversation on B' });
    const member = await clients.connect(b);
    await member.join(id, 'watcher');
    const until = Date.now() + 1500;
    const snoozed = await ok(call(a, 'PATCH', `/api/conversations/${id}`, { status: 'snoozed', snoozedUntil: until }));
    expect(snoozed).to.include({ status: 'snoozed', snoozedUntil: until });
    expect((await ok(call(b, 'GET', '/api/conversations?status=snoozed'))).items.map((i: any) => i.id)).to.deep.equal([id]);
    const woke = await member.waitFor((f) => f.type === 'conversation' && f.status === 'open', 5000, 'the end of the snooze');
    expect(Date.now()).to.be.at.least(until);
    expect(woke).to.not.have.property('snoozedUntil');
    expect((await item(b, id)).status).to.equal('open');

    await ok(call(b, 'PATCH', `/api/conversations/${id}`, { status: 'resolved' }));
    await ok(call(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'agent', content: 'closing note' }), 201);
    expect((await item(a, id)).status).to.equal('resolved');
    await ok(call(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'one more thing' }), 201);
    await poll(async () => (await item(b, id)).status === 'open', { what: 'the reopening on B' });
  });
  it('DATA_DIR: the desk\'s state (status, assignee, metadata, read cursors, edits) survives kill -9', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'desk-disk-'));
    dirs.push(dir);
    const port = await freePort();
    const env = { DATA_DIR: dir, LOG_LEVEL: 'info' };
    let a = await Instance.start({ port, env });
    const id = (await ok(call(a, 'POST', '/api/conversations'), 201)).id;
    const m = await ok(call(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'first' }), 201);
    await ok(call(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'agent', content: 'second' }), 201);
    await ok(call(a, 'PATCH', `/api/conversations/${id}`, { status: 'pending', assignee: 'agent-1', metadata: { tier: 2 } }));
    await ok(call(a, 'PATCH', `/api/conversations/${id}/messages/${m.id}`, { content: 'first, edited' }));
    await ok(call(a, 'POST', `/api/conversations/${id}/read`, { upTo: m.id, user: 'agent' }));
    const before = { item: await item(a, id), history: (await ok(call(a, 'GET', `/api/conversations/${id}`))).messages };
    await a.kill();
    a = await Instance.start({ port, env });
    expect(await item(a, id)).to.deep.equal(before.item);
    expect((await ok(call(a, 'GET', `/api/conversations/${id}`))).messages).to.deep.equal(before.history);
    expect(before.history[0]).to.include({ content: 'first, edited' });
    // The read cursor came back too: moving it to the same place changes nothing.
    expect(await ok(call(a, 'POST', `/api/conversations/${id}/read`, { upTo: m.id, user: 'agent' }))).to.deep.equal({ user: 'agent', upTo: m.id });
  });
});
