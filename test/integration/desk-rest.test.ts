/**
 * The support desk over REST, on real processes across two instances (issue 13): the inbox
 * on B shows what was created and answered on A, in order, with each caller's unread counts
 * (AUTH=jwt, customer vs agent); concurrent PATCHes converge, live and after a cut link;
 * Idempotency-Key; every bad request gets a clear 4xx and stores nothing. (Edits and
 * snoozes, seen by WebSocket members: desk.test.ts.)
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mint } from '../helpers/auth.js';
import { JWT_ENV, call, item, ok } from '../helpers/desk-api.js';
import { Instance, freePort, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';

const clients = new ClientPool();
const dirs: string[] = [];

afterEach(async () => {
  await clients.closeAll();
  await stopAll();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('desk over REST', function () {
  this.timeout(30_000);

  it('the inbox on B shows what was created and answered on A, newest first, with each caller\'s unread count (AUTH=jwt)', async () => {
    const [a, b] = await fullMesh(2, JWT_ENV);
    const [ann, bea, agent] = await Promise.all([mint({ sub: 'ann', role: 'customer' }), mint({ sub: 'bea', role: 'customer' }), mint({ sub: 'agent-7', role: 'agent' })]);
    const x = (await ok(call(a, 'POST', '/api/conversations', undefined, ann), 201)).id;
    const y = (await ok(call(a, 'POST', '/api/conversations', undefined, bea), 201)).id;
    await ok(call(a, 'POST', `/api/conversations/${x}/messages`, { content: 'ann 1' }, ann), 201);
    await ok(call(a, 'POST', `/api/conversations/${y}/messages`, { content: 'bea 1' }, bea), 201);
    await ok(call(a, 'POST', `/api/conversations/${x}/messages`, { content: 'ann 2' }, ann), 201);
    const reply = await ok(call(a, 'POST', `/api/conversations/${x}/messages`, { content: 'agent answers ann' }, agent), 201);

    const agentInbox = await ok(call(b, 'GET', '/api/conversations', undefined, agent));
    expect(agentInbox.items.map((i: any) => [i.id, i.unread, i.lastMessage.content])).to.deep.equal([[x, 2, 'agent answers ann'], [y, 1, 'bea 1']]);
    expect(agentInbox.next).to.equal(null);
    const annInbox = await ok(call(b, 'GET', '/api/conversations', undefined, ann));
    expect(annInbox.items.map((i: any) => [i.id, i.unread, i.status, i.assignee])).to.deep.equal([[x, 1, 'open', null]]);

    // Reading on B moves the agent's count on A too; ann's stays.
    expect(await ok(call(b, 'POST', `/api/conversations/${x}/read`, { upTo: reply.id }, agent))).to.deep.equal({ user: 'agent-7', upTo: reply.id });
    await poll(async () => (await item(a, x, agent))?.unread === 0, { what: 'the agent\'s unread count on A' });
    expect((await item(a, x, ann)).unread).to.equal(1);

    // A customer: only its own; no PATCH at all; a foreign conversation is 404.
    expect((await call(b, 'PATCH', `/api/conversations/${x}`, { status: 'resolved' }, ann)).status).to.equal(403);
    expect((await call(b, 'POST', `/api/conversations/${y}/read`, { upTo: reply.id }, ann)).status).to.equal(404);
    expect((await call(b, 'GET', '/api/conversations?assignee=none', undefined, bea)).body.items.map((i: any) => i.id)).to.deep.equal([y]);
    // Paging walks both, one at a time.
    const first = await ok(call(b, 'GET', '/api/conversations?limit=1', undefined, agent));
    const second = await ok(call(b, 'GET', `/api/conversations?limit=1&cursor=${first.next}`, undefined, agent));
    expect([...first.items, ...second.items].map((i: any) => i.id)).to.deep.equal([x, y]);
    expect(second.next).to.equal(null);
  });

  it('concurrent PATCHes on two instances converge: different fields both survive, the same field agrees', async () => {
    const [a, b] = await fullMesh(2);
    const id = (await ok(call(a, 'POST', '/api/conversations'), 201)).id;
    await poll(async () => (await item(b, id)) !== undefined, { what: 'the conversation on B' });
    const member = await clients.connect(b);
    await member.join(id, 'watcher');
    await Promise.all([
      ok(call(a, 'PATCH', `/api/conversations/${id}`, { status: 'pending' })),
      ok(call(b, 'PATCH', `/api/conversations/${id}`, { assignee: 'agent-b', metadata: { plan: 'pro' } })),
      ok(call(a, 'PATCH', `/api/conversations/${id}`, { metadata: { plan: 'free' } })),
    ]);
    const strip = (i: any) => ({ status: i.status, assignee: i.assignee, metadata: i.metadata, updatedAt: i.updatedAt });
    await poll(async () => JSON.stringify(strip(await item(a, id))) === JSON.stringify(strip(await item(b, id))), { what: 'A and B to agree' });
    const settled = await item(a, id);
    expect(settled.status).to.equal('pending');
    expect(settled.assignee).to.equal('agent-b');
    expect(['pro', 'free']).to.include(settled.metadata.plan);
    // GET of the conversation carries the same view, then its history.
    const { lastMessage: _last, ...view } = settled;
    expect(await ok(call(b, 'GET', `/api/conversations/${id}`))).to.deep.equal({ ...view, messages: [] });
    // A PATCH that changes nothing writes nothing.
    expect((await ok(call(a, 'PATCH', `/api/conversations/${id}`, { assignee: 'agent-b', status: 'pending' }))).updatedAt).to.equal(settled.updatedAt);
    // Members on B were told, with the conversation as it reads.
    const frame = await member.waitFor((f) => f.type === 'conversation' && f.assignee === 'agent-b');
    expect(frame).to.include({ room: id, id });
  });

  it('after a cut link, PATCHes made on each side converge to the later write per field', async () => {
    const [pa, pb] = await Promise.all([freePort(), freePort()]);
    const dir = mkdtempSync(join(tmpdir(), 'desk-cut-'));
    dirs.push(dir);
    // Only A dials B: A restarted without PEERS is cut off; with them, linked again.
    const envA = (peers: string) => ({ DISCOVERY: 'static', PEERS: peers, DATA_DIR: dir, LOG_LEVEL: 'info' });
    const b = await Instance.start({ port: pb, env: { DISCOVERY: 'off', LOG_LEVEL: 'info' } });
    let a = await Instance.start({ port: pa, env: envA(`ws://127.0.0.1:${pb}`) });
    await a.waitForPeersUp([b.nodeId], 10_000);
    const id = (await ok(call(a, 'POST', '/api/conversations'), 201)).id;
    await poll(async () => (await item(b, id)) !== undefined, { what: 'the conversation on B' });

    await a.stop();
    a = await Instance.start({ port: pa, env: envA('') });
    await ok(call(a, 'PATCH', `/api/conversations/${id}`, { status: 'resolved', assignee: 'agent-a' }));
    await ok(call(b, 'PATCH', `/api/conversations/${id}`, { status: 'pending', metadata: { side: 'b' } }));
    expect((await item(a, id)).status).to.equal('resolved');

    await a.stop();
    a = await Instance.start({ port: pa, env: envA(`ws://127.0.0.1:${pb}`) });
    await a.waitForPeersUp([b.nodeId], 10_000);
    const strip = (i: any) => JSON.stringify({ status: i?.status, assignee: i?.assignee, metadata: i?.metadata });
    await poll(async () => strip(await item(a, id)) === strip(await item(b, id)), { timeoutMs: 10_000, what: 'A and B to agree after the link is back' });
    expect(await item(b, id)).to.include({ status: 'pending', assignee: 'agent-a' });
    expect((await item(b, id)).metadata).to.deep.equal({ side: 'b' });
  });

  it('Idempotency-Key: a retry on any instance answers 200 with the original; another content is 422; one message stored', async () => {
    const [a, b] = await fullMesh(2);
    const id = (await ok(call(a, 'POST', '/api/conversations'), 201)).id;
    const key = { 'idempotency-key': 'order-42' };
    const original = await ok(call(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'pay' }, undefined, key), 201);
    expect(await ok(call(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'pay' }, undefined, key))).to.deep.equal(original);
    await poll(async () => (await call(b, 'GET', `/api/conversations/${id}`)).body?.messages?.length === 1, { what: 'the message on B' });
    expect(await ok(call(b, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'pay' }, undefined, key))).to.deep.equal(original);
    const reused = await call(b, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'pay twice' }, undefined, key);
    expect(reused.status).to.equal(422);
    expect(reused.body.error.code).to.equal('idempotency_key_reused');
    // Edited since: the retry is still the same send (200, the message as it now reads).
    await ok(call(a, 'PATCH', `/api/conversations/${id}/messages/${original.id}`, { content: 'pay now' }));
    const retried = await ok(call(a, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'pay' }, undefined, key));
    expect(retried).to.include({ id: original.id, content: 'pay now' });
    // The same key from another sender is another send.
    await ok(call(b, 'POST', `/api/conversations/${id}/messages`, { sender: 'agent', content: 'paid' }, undefined, key), 201);
    expect((await call(b, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'x' }, undefined, { 'idempotency-key': 'k'.repeat(65) })).status).to.equal(400);
    expect((await ok(call(a, 'GET', `/api/conversations/${id}`))).messages.map((m: any) => m.content)).to.deep.equal(['pay now', 'paid']);
  });

  it('bad input to every new request: a clear 4xx, never a 500, nothing stored', async () => {
    const [a] = await fullMesh(1, JWT_ENV);
    const [ann, bea, agent] = await Promise.all([mint({ sub: 'ann', role: 'customer' }), mint({ sub: 'bea', role: 'customer' }), mint({ sub: 'agent-7', role: 'agent' })]);
    const id = (await ok(call(a, 'POST', '/api/conversations', undefined, ann), 201)).id;
    const other = (await ok(call(a, 'POST', '/api/conversations', undefined, bea), 201)).id;
    const m = await ok(call(a, 'POST', `/api/conversations/${id}/messages`, { content: 'hello' }, ann), 201);
    const before = { item: await item(a, id, agent), history: (await ok(call(a, 'GET', `/api/conversations/${id}`, undefined, agent))).messages };
    const soon = Date.now() + 60_000;
    const cases: Array<[string, string, unknown, string | undefined, number, string]> = [
      ['GET', '/api/conversations?limit=0', undefined, agent, 400, 'invalid_field'],
      ['GET', '/api/conversations?limit=201', undefined, agent, 400, 'invalid_field'],
      ['GET', '/api/conversations?limit=ten', undefined, agent, 400, 'invalid_field'],
      ['GET', '/api/conversations?status=closed', undefined, agent, 400, 'invalid_field'],
      ['GET', '/api/conversations?updatedSince=-5', undefined, agent, 400, 'invalid_field'],
      ['GET', '/api/conversations?cursor=garbage!', undefined, agent, 400, 'invalid_cursor'],
      ['GET', `/api/conversations?cursor=${Buffer.from('[1,2]').toString('base64url')}`, undefined, agent, 400, 'invalid_cursor'],
      ['GET', '/api/conversations', undefined, undefined, 401, 'unauthorized'],
      ['PATCH', `/api/conversations/${id}`, {}, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { status: 'closed' }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { status: 7 }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { status: 'snoozed' }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { status: 'snoozed', snoozedUntil: Date.now() - 1000 }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { status: 'snoozed', snoozedUntil: String(soon) }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { status: 'open', snoozedUntil: soon }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { status: 'resolved', assignee: '' }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { assignee: 5 }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { assignee: 'a'.repeat(129) }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { metadata: [] }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { metadata: { deep: { a: 1 } } }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i])) }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { metadata: { big: 'x'.repeat(257) } }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, { colour: 'red' }, agent, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}`, '{"status":', agent, 400, 'bad_json'],
      ['PATCH', `/api/conversations/${id}`, '{"status":"open","__proto__":{}}', agent, 400, 'invalid_field'],
      ['PATCH', '/api/conversations/no-such-conversation', { status: 'open' }, agent, 404, 'not_found'],
      ['PATCH', `/api/conversations/${other}`, { status: 'open' }, ann, 403, 'forbidden'],
      ['POST', `/api/conversations/${id}/read`, {}, ann, 400, 'invalid_field'],
      ['POST', `/api/conversations/${id}/read`, { upTo: 5 }, ann, 400, 'invalid_field'],
      ['POST', `/api/conversations/${id}/read`, { upTo: 'nope' }, ann, 404, 'not_found'],
      ['POST', `/api/conversations/${id}/read`, { upTo: m.id, user: 'someone-else' }, ann, 403, 'forbidden'],
      ['POST', `/api/conversations/${other}/read`, { upTo: m.id }, ann, 404, 'not_found'],
      ['PATCH', `/api/conversations/${id}/messages/${m.id}`, { content: '   ' }, ann, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}/messages/${m.id}`, { content: 42 }, ann, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}/messages/${m.id}`, { content: 'x'.repeat(8001) }, ann, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}/messages/${m.id}`, { content: 'ok', extra: 1 }, ann, 400, 'invalid_field'],
      ['PATCH', `/api/conversations/${id}/messages/unknown-message`, { content: 'ok' }, ann, 404, 'not_found'],
      ['PATCH', `/api/conversations/${other}/messages/${m.id}`, { content: 'ok' }, ann, 404, 'not_found'],
    ];
    for (const [method, path, body, token, status, code] of cases) {
      const answer = await call(a, method, path, body, token);
      const what = `${method} ${path.slice(0, 60)} ${JSON.stringify(body)?.slice(0, 60)}`;
      expect(answer.status, what).to.equal(status);
      expect(answer.body?.error?.code, what).to.equal(code);
    }
    // An unknown status says which are known.
    const unknown = await call(a, 'PATCH', `/api/conversations/${id}`, { status: 'closed' }, agent);
    expect(unknown.body.error.message).to.include('"open", "pending", "snoozed", "resolved"');
    expect(await item(a, id, agent)).to.deep.equal(before.item);
    expect((await ok(call(a, 'GET', `/api/conversations/${id}`, undefined, agent))).messages).to.deep.equal(before.history);
  });
});
