/**
 * chatmesh/client's parts on their own, and its ChatClient over a fake WebSocket, where the
 * test plays the server frame by frame (the integration test plays it with real instances).
 */
import { expect } from 'chai';
import { ChatClient, backoffDelay, type ChatMessage, type ClientFrame, type ConnectionState } from '../../lib/client/index.js';
import { InflightRequests } from '../../lib/client/inflight.js';
import { SeenIds } from '../../lib/client/seen-ids.js';
import { refreshDelayMs, tokenExpiry, withToken } from '../../lib/client/token.js';
import { poll } from '../helpers/wait.js';

/** A WebSocket the test drives: what the client sent, and frames to hand it. */
class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  onopen: ((e: unknown) => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  readonly sent: ClientFrame[] = [];
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientFrame);
  }
  close(code = 1000, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  frame(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
}

const msg = (id: string, text: string, ts: number, extra: Record<string, unknown> = {}) => ({ type: 'message', id, room: 'r', user: 'ann', text, ts, ...extra });

describe('chatmesh/client parts', () => {
  it('backs off with full jitter: 0 up to min(max, initial · 2^attempt)', () => {
    const options = { initialMs: 500, maxMs: 8000 };
    expect(backoffDelay(0, options, () => 0)).to.equal(0);
    expect(backoffDelay(0, options, () => 0.999999)).to.equal(499);
    expect(backoffDelay(3, options, () => 0.5)).to.equal(2000);
    expect(backoffDelay(60, options, () => 0.999999)).to.equal(7999);
  });

  it('gives an error frame to the oldest request that can fail with its code', () => {
    const inflight = new InflightRequests();
    inflight.push({ kind: 'message', room: 'a', clientId: 'c1' });
    inflight.push({ kind: 'typing', room: 'a' });
    inflight.push({ kind: 'join', room: 'b' });
    expect(inflight.blame('forbidden')).to.deep.equal({ kind: 'join', room: 'b' });
    expect(inflight.blame('rate_limited')).to.deep.equal({ kind: 'message', room: 'a', clientId: 'c1' });
    expect(inflight.blame('not_joined')).to.deep.equal({ kind: 'typing', room: 'a' });
    expect(inflight.blame('token_invalid')).to.equal(undefined);
    // A reply to a later frame means the silent ones before it were taken.
    inflight.push({ kind: 'read', room: 'a' });
    inflight.push({ kind: 'members', room: 'a' });
    expect(inflight.answer('members', (r) => r.room === 'a')).to.deep.equal({ kind: 'members', room: 'a' });
    expect(inflight.blame('not_joined')).to.equal(undefined);
  });

  it('gives an error frame that names a clientId to that send, whatever is older', () => {
    const inflight = new InflightRequests();
    inflight.push({ kind: 'message', room: 'a', clientId: 'c1' });
    inflight.push({ kind: 'join', room: 'b' });
    inflight.push({ kind: 'message', room: 'a', clientId: 'c2' });
    expect(inflight.blame('rate_limited', 'c2')).to.deep.equal({ kind: 'message', room: 'a', clientId: 'c2' });
    expect(inflight.blame('rate_limited')).to.deep.equal({ kind: 'message', room: 'a', clientId: 'c1' });
    // A clientId no longer in flight (answered already): by code, as before.
    expect(inflight.blame('forbidden', 'c9')).to.deep.equal({ kind: 'join', room: 'b' });
  });

  it('remembers a bounded number of ids, the oldest forgotten first', () => {
    const seen = new SeenIds(2);
    expect(seen.add('a')).to.equal(true);
    expect(seen.add('a')).to.equal(false);
    seen.add('b');
    seen.add('c');
    expect(seen.has('a')).to.equal(false);
    expect(seen.has('c')).to.equal(true);
  });

  it("reads a token's exp, puts the token in the URL, and refreshes before the expiry", () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    expect(tokenExpiry(`${b64({ alg: 'HS256' })}.${b64({ sub: 'ann', exp: 1234 })}.sig`)).to.equal(1234);
    expect(tokenExpiry('not a token')).to.equal(null);
    expect(withToken('ws://h:1/', 'a.b.c')).to.equal('ws://h:1/?token=a.b.c');
    expect(refreshDelayMs(1000, 60, 0)).to.equal(940_000);
    expect(refreshDelayMs(3, 60, 0)).to.equal(2000); // short-lived: at two thirds
  });
});

describe('ChatClient over a fake WebSocket', () => {
  let client: ChatClient;
  const events: ChatMessage[] = [];
  beforeEach(() => {
    FakeSocket.all = [];
    events.length = 0;
    client = new ChatClient({ urls: ['ws://a/', 'ws://b/'], user: 'ann', WebSocket: FakeSocket, backoff: { initialMs: 1, maxMs: 1 } });
    client.on('message', (m) => events.push(m));
  });
  afterEach(() => client.close());

  async function socket(n: number): Promise<FakeSocket> {
    return poll(() => FakeSocket.all[n], { timeoutMs: 2000, what: `socket ${n}` });
  }

  it('re-sends an unacknowledged send with the same clientId on the next URL, after the resume, and settles it by the echo', async () => {
    const joining = client.join('r');
    const s0 = await socket(0);
    expect(s0.url).to.equal('ws://a/');
    s0.open();
    expect(s0.sent).to.deep.equal([{ type: 'join', room: 'r', user: 'ann' }]);
    s0.frame({ type: 'joined', room: 'r', user: 'ann', members: ['ann'], history: [{ id: 'm1', user: 'bob', text: 'hi', ts: 1 }] });
    await joining;
    const sending = client.send('r', 'hello');
    const first = s0.sent.at(-1) as { clientId: string };
    expect(first).to.include({ type: 'message', room: 'r', text: 'hello' });
    s0.close(1006);

    const s1 = await socket(1);
    expect(s1.url).to.equal('ws://b/');
    s1.open();
    expect(s1.sent).to.deep.equal([{ type: 'join', room: 'r', user: 'ann', since: 'm1' }]);
    // Paged resume: live frames between pages wait for the last page.
    s1.frame({ type: 'joined', room: 'r', user: 'ann', members: ['ann'], since: 'm1', gap: false, history: [{ id: 'm2', user: 'bob', text: 'two', ts: 2 }], more: true, next: 'm2' });
    expect(s1.sent.at(-1)).to.deep.equal({ type: 'join', room: 'r', user: 'ann', since: 'm1', after: 'm2' });
    s1.frame(msg('m9', 'live', 9, { user: 'bob' }));
    expect(events.map((m) => m.text)).to.deep.equal(['hi', 'two']);
    s1.frame({ type: 'joined', room: 'r', user: 'ann', members: ['ann'], since: 'm1', gap: false, history: [{ id: 'm3', user: 'bob', text: 'three', ts: 3 }, { id: 'm2', user: 'bob', text: 'two', ts: 2 }] });
    expect(events.map((m) => m.text)).to.deep.equal(['hi', 'two', 'three', 'live']);
    const resent = s1.sent.at(-1) as { clientId: string };
    expect(resent).to.deep.equal({ type: 'message', room: 'r', text: 'hello', clientId: first.clientId });
    // The server held it already: the original echo, twice even, reaches the app once.
    s1.frame(msg('m5', 'hello', 5, { cid: first.clientId }));
    s1.frame(msg('m5', 'hello', 5, { cid: first.clientId }));
    const echo = await sending;
    expect(echo).to.deep.include({ id: 'm5', clientId: first.clientId });
    expect(events.map((m) => m.id)).to.deep.equal(['m1', 'm2', 'm3', 'm9', 'm5']);
    expect(client.pendingSends).to.equal(0);
  });

  it('rejects the join an error frame is for, not the send before it whose echo is still to come', async () => {
    const s0 = await (async () => {
      const joining = client.join('r');
      const s = await socket(0);
      s.open();
      s.frame({ type: 'joined', room: 'r', user: 'ann', members: [], history: [] });
      await joining;
      return s;
    })();
    const sending = client.send('r', 'x');
    const refused = client.join('secret').catch((e: { code: string; room: string }) => e);
    s0.frame({ type: 'error', code: 'forbidden', message: 'no' });
    expect(await refused).to.include({ code: 'forbidden', room: 'secret' });
    const clientId = (s0.sent.find((f) => f.type === 'message') as { clientId: string }).clientId;
    s0.frame(msg('m1', 'x', 1, { cid: clientId }));
    expect((await sending).id).to.equal('m1');
  });

  it('takes an older server\'s unknown_type as the answer to inbox(), not to the send before it whose echo is still to come', async () => {
    const joining = client.join('r');
    const s0 = await socket(0);
    s0.open();
    s0.frame({ type: 'joined', room: 'r', user: 'ann', members: [], history: [] });
    await joining;
    const sending = client.send('r', 'x');
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    client.inbox();
    expect(s0.sent.at(-1)).to.deep.equal({ type: 'inbox' });
    s0.frame({ type: 'error', code: 'unknown_type', message: 'type must be one of …' });
    expect(errors).to.deep.equal(['unknown_type']);
    const clientId = (s0.sent.find((f) => f.type === 'message') as { clientId: string }).clientId;
    s0.frame(msg('m1', 'x', 1, { cid: clientId }));
    expect((await sending).id).to.equal('m1');
  });

  it('says reconnecting with its delay, and closed when closed', async () => {
    const states: ConnectionState['state'][] = [];
    client.on('state', (s) => states.push(s.state));
    client.connect();
    (await socket(0)).close(1006);
    (await socket(1)).open();
    client.close();
    expect(states).to.deep.equal(['connecting', 'reconnecting', 'connecting', 'open', 'closed']);
  });
});
