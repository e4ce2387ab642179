/**
 * The client protocol over real sockets: a real `node server.js` per test, real WebSocket
 * clients, /health to check that nothing is left behind. Never a sleep: every "nothing
 * arrived" is proven with a positive control on the same connection (frames on one
 * connection are ordered, so once the control's reply is in, anything the earlier frame
 * produced is in too).
 */
import { expect } from 'chai';
import { once } from 'node:events';
import net from 'node:net';
import { WebSocket, type RawData } from 'ws';
import { TestClient, type Frame } from '../helpers/client.js';
import { Instance, stopAll } from '../helpers/instance.js';
import { poll, withTimeout } from '../helpers/wait.js';
import { tellsPresence } from '../helpers/presence.js';

// ---------------------------------------------------------------------------------------------
// Tracking: everything a test opens is closed in afterEach, even when the test failed.

const openClients: TestClient[] = [];
const rawWebSockets: WebSocket[] = [];
const rawSockets: net.Socket[] = [];

async function connect(url: string): Promise<TestClient> {
  const client = await TestClient.connect(url);
  openClients.push(client);
  return client;
}

async function closeClients(): Promise<void> {
  await Promise.all(openClients.splice(0).map((c) => withTimeout(c.close(), 2000, 'a client to close').catch(() => {})));
  for (const ws of rawWebSockets.splice(0)) {
    ws.on('error', () => {});
    ws.terminate();
  }
  for (const socket of rawSockets.splice(0)) socket.destroy();
}

afterEach(async () => {
  await closeClients();
  await stopAll();
});

// ---------------------------------------------------------------------------------------------
// Helpers

let probeSeq = 0;

/**
 * Positive control that works on any connection, in any state: an unknown type always gets an
 * `unknown_type` error naming it, and changes nothing. Returns the frames received from index
 * `from` up to (not including) that reply.
 */
async function framesBeforeProbe(client: TestClient, from: number): Promise<Frame[]> {
  const tag = `probe-${++probeSeq}`;
  const reply = await client.request(
    { type: tag },
    (f) => f.type === 'error' && f.code === 'unknown_type' && String(f.message).includes(`"${tag}"`),
  );
  return client.frames.slice(from, client.frames.indexOf(reply));
}

/** Same control, through a chat message in a room the client is in (proves the connection still chats). */
async function framesBeforeEcho(client: TestClient, room: string, from: number): Promise<Frame[]> {
  const echo = await client.say(room, `echo-probe-${++probeSeq}`);
  return client.frames.slice(from, client.frames.indexOf(echo));
}

/** Pads a JSON object with insignificant whitespace to exactly `size` bytes (still valid JSON). */
function paddedFrame(obj: object, size: number): string {
  const json = JSON.stringify(obj);
  const pad = size - Buffer.byteLength(json);
  if (pad < 0) throw new Error(`frame is already ${Buffer.byteLength(json)} bytes`);
  const framed = `${json.slice(0, -1)}${' '.repeat(pad)}}`;
  expect(Buffer.byteLength(framed)).to.equal(size);
  return framed;
}

async function healthCounts(instance: Instance): Promise<{ connections: number; rooms: number }> {
  const { body } = await instance.health();
  return { connections: body.connections, rooms: body.rooms };
}

/** Polls /health until connections and rooms are the given counts. */
async function waitForCounts(instance: Instance, connections: number, rooms: number, timeoutMs = 5000): Promise<void> {
  let last = { connections: -1, rooms: -1 };
  try {
    await poll(
      async () => {
        last = await healthCounts(instance);
        return last.connections === connections && last.rooms === rooms;
      },
      { timeoutMs, what: `/health to show connections=${connections} rooms=${rooms}` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen connections=${last.connections} rooms=${last.rooms}`);
  }
}

/** A raw `ws` WebSocket (no TestClient), tracked for cleanup, that records its text frames. */
async function rawClient(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<{ ws: WebSocket; frames: Frame[] }> {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
  rawWebSockets.push(ws);
  const frames: Frame[] = [];
  ws.on('message', (data: RawData) => frames.push(JSON.parse(data.toString()) as Frame));
  ws.on('error', () => {});
  await withTimeout(once(ws, 'open'), 5000, `raw connection to ${url}`);
  return { ws, frames };
}

/** Tries a WebSocket upgrade on a path; resolves with the HTTP status of a refusal, or 101 if accepted. */
async function upgradeStatus(url: string): Promise<number> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  rawWebSockets.push(ws);
  ws.on('error', () => {});
  return withTimeout(
    new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      ws.on('open', () => resolve(101));
    }),
    3000,
    `the upgrade on ${url} to be answered`,
  );
}

/**
 * A client that completes the WebSocket handshake by hand and then never answers anything
 * (not a ping, not a close): it keeps the server's close handshake pending.
 */
async function stalledRawClient(port: number): Promise<{ socket: net.Socket; received: () => Buffer }> {
  const socket = net.connect(port, '127.0.0.1');
  rawSockets.push(socket);
  socket.on('error', () => {});
  let data = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    data = Buffer.concat([data, chunk]);
  });
  await withTimeout(once(socket, 'connect'), 3000, 'raw TCP connect');
  socket.write(
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  await poll(() => data.includes('\r\n\r\n'), { timeoutMs: 3000, what: 'the raw handshake response' });
  expect(data.toString('latin1').split('\r\n')[0]).to.match(/^HTTP\/1\.1 101 /);
  return { socket, received: () => data.subarray(data.indexOf('\r\n\r\n') + 4) };
}

/**
 * The fields of a `joined` frame the protocol defines. Extra fields are tolerated (a
 * `history` field is being added to `joined` by other work); these three must be exact.
 */
function joinedFields(f: Frame): Pick<Frame, 'type'> & { room: unknown; user: unknown } {
  return { type: f.type, room: f.room, user: f.user };
}

/** Index of the first place two lists differ, or -1. */
function firstDifference<T>(a: readonly T[], b: readonly T[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

// ---------------------------------------------------------------------------------------------

describe('client protocol: happy path', function () {
  this.timeout(15_000);

  it('join answers joined with exactly the room and user', async () => {
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    const joined = await alice.join('lobby', 'alice');
    expect(joinedFields(joined)).to.deep.equal({ type: 'joined', room: 'lobby', user: 'alice' });
    await waitForCounts(instance, 1, 1);
  });

  it('two members: presence join to the other only, each message exactly once to both, well-formed', async () => {
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    const bob = await connect(instance.url);
    await alice.join('lobby', 'alice');
    const aliceFrom = alice.frames.length;
    const bobFrom = bob.frames.length;
    await bob.join('lobby', 'bob');

    const presence = await alice.waitFor((f) => f.type === 'presence');
    expect(presence).to.deep.equal({ type: 'presence', event: 'join', room: 'lobby', user: 'bob' });
    // The joiner gets its own `joined` and nothing else (no presence about itself).
    expect((await framesBeforeProbe(bob, bobFrom)).map(joinedFields)).to.deep.equal([{ type: 'joined', room: 'lobby', user: 'bob' }]);

    const before = Date.now();
    const echo = await alice.say('lobby', 'hello bob');
    const after = Date.now();
    const atBob = await bob.waitFor((f) => f.type === 'message' && f.text === 'hello bob');
    expect(Object.keys(echo).sort()).to.deep.equal(['id', 'room', 'text', 'ts', 'type', 'user']);
    expect(echo).to.include({ type: 'message', room: 'lobby', user: 'alice', text: 'hello bob' });
    expect(echo.id).to.be.a('string').and.not.equal('');
    expect(echo.ts).to.be.a('number');
    expect(echo.ts as number).to.be.within(before - 1000, after + 1000);
    expect(atBob).to.deep.equal(echo);

    // A message with an explicit, matching user is accepted too.
    const second = await bob.say('lobby', 'hi alice', 'bob');
    expect(second).to.include({ user: 'bob', text: 'hi alice' });
    expect(second.id).to.not.equal(echo.id);
    await alice.waitFor((f) => f.type === 'message' && f.id === second.id);

    // Exactly once each, on both sides: nothing more after positive controls on both connections.
    await framesBeforeProbe(alice, aliceFrom);
    await framesBeforeProbe(bob, bobFrom);
    for (const client of [alice, bob]) {
      const ids = client.messages('lobby').map((m) => m.id);
      expect(ids).to.deep.equal([echo.id, second.id]);
    }
    // Alice saw exactly one presence (bob's join), no echo of her own presence.
    expect(alice.frames.slice(aliceFrom).filter((f) => f.type === 'presence')).to.have.length(1);
  });

  it('joining again with the same user re-sends joined without a new presence', async () => {
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    const bob = await connect(instance.url);
    await alice.join('lobby', 'alice');
    await bob.join('lobby', 'bob');
    await alice.waitFor((f) => tellsPresence(f, 'join', 'bob'));
    const aliceFrom = alice.frames.length;

    const again = await bob.join('lobby', 'bob');
    expect(joinedFields(again)).to.deep.equal({ type: 'joined', room: 'lobby', user: 'bob' });
    // Bob's re-join was processed before alice's control message, so any presence would come first.
    const between = await framesBeforeEcho(alice, 'lobby', aliceFrom);
    expect(between).to.deep.equal([]);
    await waitForCounts(instance, 2, 1);
  });

  it('leave answers left, the other member gets presence leave, the leaver gets nothing more from the room', async () => {
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    const bob = await connect(instance.url);
    await alice.join('lobby', 'alice');
    await bob.join('lobby', 'bob');
    await bob.join('elsewhere', 'bob');

    const left = await bob.request({ type: 'leave', room: 'lobby' }, (f) => f.type === 'left' || f.type === 'error');
    expect(left).to.deep.equal({ type: 'left', room: 'lobby' });
    const presence = await alice.waitFor((f) => f.type === 'presence' && f.event === 'leave');
    expect(presence).to.deep.equal({ type: 'presence', event: 'leave', room: 'lobby', user: 'bob' });

    const bobFrom = bob.frames.length;
    await alice.say('lobby', 'bob is gone');
    // Alice's message was fanned out before bob's control: bob must not have it.
    expect(await framesBeforeEcho(bob, 'elsewhere', bobFrom)).to.deep.equal([]);

    const notJoined = await bob.request({ type: 'message', room: 'lobby', text: 'let me in' }, (f) => f.type === 'error');
    expect(notJoined.code).to.equal('not_joined');
    await waitForCounts(instance, 2, 2);

    await bob.request({ type: 'leave', room: 'elsewhere' }, (f) => f.type === 'left');
    await waitForCounts(instance, 2, 1);
  });

  it('messages stay in their room', async () => {
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    const bob = await connect(instance.url);
    await alice.join('red', 'alice');
    await bob.join('blue', 'bob');
    const bobFrom = bob.frames.length;
    await alice.say('red', 'for red only');
    expect(await framesBeforeEcho(bob, 'blue', bobFrom)).to.deep.equal([]);
    expect(alice.messages('blue')).to.deep.equal([]);
  });

  it('closing a socket gives presence leave in every room it was in, with the name used in each, and leaves nothing behind', async () => {
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    const bob = await connect(instance.url);
    await alice.join('r1', 'ann');
    await alice.join('r2', 'anna');
    await alice.join('solo', 'ann');
    await bob.join('r1', 'bob');
    await bob.join('r2', 'bobby');
    await waitForCounts(instance, 2, 3);
    const bobFrom = bob.frames.length;

    await alice.close();
    await poll(() => bob.frames.slice(bobFrom).filter((f) => f.type === 'presence').length >= 2, { what: 'two presence leaves at bob' });
    const leaves = bob.frames.slice(bobFrom).filter((f) => f.type === 'presence');
    expect(leaves).to.have.deep.members([
      { type: 'presence', event: 'leave', room: 'r1', user: 'ann' },
      { type: 'presence', event: 'leave', room: 'r2', user: 'anna' },
    ]);
    await waitForCounts(instance, 1, 2);
    // Nothing else reached bob (e.g. no leave for a room he is not in).
    const rest = await framesBeforeProbe(bob, bobFrom);
    expect(rest).to.have.length(2);

    await bob.close();
    await waitForCounts(instance, 0, 0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('client protocol: bad input', function () {
  this.timeout(20_000);

  interface BadCase {
    name: string;
    /** A string is sent as a text frame, a Buffer as a binary frame. */
    frame: string | Buffer;
    code: string;
  }

  const longName = 'n'.repeat(129);
  const longText = 't'.repeat(8001);
  const cases: BadCase[] = [
    { name: 'not JSON', frame: 'hello there', code: 'bad_json' },
    { name: 'truncated JSON', frame: '{"type":"join","room":"r"', code: 'bad_json' },
    { name: 'empty text frame', frame: '', code: 'bad_json' },
    { name: 'JSON with a trailing comma', frame: '{"type":"leave","room":"r",}', code: 'bad_json' },
    { name: 'single-quoted pseudo JSON', frame: "{'type':'join'}", code: 'bad_json' },
    { name: 'null', frame: 'null', code: 'invalid_frame' },
    { name: 'empty array', frame: '[]', code: 'invalid_frame' },
    { name: 'array holding a valid frame', frame: '[{"type":"join","room":"arr","user":"u"}]', code: 'invalid_frame' },
    { name: 'number', frame: '42', code: 'invalid_frame' },
    { name: 'string', frame: '"str"', code: 'invalid_frame' },
    { name: 'boolean', frame: 'true', code: 'invalid_frame' },
    { name: 'deeply nested array (30k levels)', frame: '['.repeat(30_000) + ']'.repeat(30_000), code: 'invalid_frame' },
    { name: 'deeply nested object (10k levels)', frame: '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000), code: 'invalid_field' },
    { name: 'missing type', frame: '{"room":"r","user":"u"}', code: 'invalid_field' },
    { name: 'type as number', frame: '{"type":1,"room":"r","user":"u"}', code: 'invalid_field' },
    { name: 'type as null', frame: '{"type":null}', code: 'invalid_field' },
    { name: 'unknown type', frame: '{"type":"dance","room":"r"}', code: 'unknown_type' },
    { name: 'type in the wrong case', frame: '{"type":"JOIN","room":"r","user":"u"}', code: 'unknown_type' },
    { name: 'join without room', frame: '{"type":"join","user":"u"}', code: 'invalid_field' },
    { name: 'room as number', frame: '{"type":"join","room":7,"user":"u"}', code: 'invalid_field' },
    { name: 'room as array', frame: '{"type":"join","room":["r"],"user":"u"}', code: 'invalid_field' },
    { name: 'empty room', frame: '{"type":"join","room":"","user":"u"}', code: 'invalid_field' },
    { name: 'whitespace-only room', frame: JSON.stringify({ type: 'join', room: '   \u00a0 ', user: 'u' }), code: 'invalid_field' },
    { name: 'room of 129 characters', frame: JSON.stringify({ type: 'join', room: longName, user: 'u' }), code: 'invalid_field' },
    { name: 'room with NUL', frame: '{"type":"join","room":"a\\u0000b","user":"u"}', code: 'invalid_field' },
    { name: 'room with newline', frame: '{"type":"join","room":"a\\nb","user":"u"}', code: 'invalid_field' },
    { name: 'room with DEL', frame: '{"type":"join","room":"a\\u007fb","user":"u"}', code: 'invalid_field' },
    { name: 'room with a C1 control (NEL)', frame: '{"type":"join","room":"a\\u0085b","user":"u"}', code: 'invalid_field' },
    { name: 'room with an unpaired high surrogate', frame: '{"type":"join","room":"a\\ud800","user":"u"}', code: 'invalid_field' },
    { name: 'room with an unpaired low surrogate', frame: '{"type":"join","room":"\\udc00b","user":"u"}', code: 'invalid_field' },
    { name: 'join without user', frame: '{"type":"join","room":"r"}', code: 'invalid_field' },
    { name: 'user as null', frame: '{"type":"join","room":"r","user":null}', code: 'invalid_field' },
    { name: 'user of 129 characters', frame: JSON.stringify({ type: 'join', room: 'r', user: longName }), code: 'invalid_field' },
    { name: 'user with a tab', frame: '{"type":"join","room":"r","user":"a\\tb"}', code: 'invalid_field' },
    { name: 'leave without room', frame: '{"type":"leave"}', code: 'invalid_field' },
    { name: 'message without text', frame: '{"type":"message","room":"probe"}', code: 'invalid_field' },
    { name: 'message with blank text', frame: '{"type":"message","room":"probe","text":" \\t\\n "}', code: 'invalid_field' },
    { name: 'message with empty text', frame: '{"type":"message","room":"probe","text":""}', code: 'invalid_field' },
    { name: 'message with 8001 characters', frame: JSON.stringify({ type: 'message', room: 'probe', text: longText }), code: 'invalid_field' },
    { name: 'text as object', frame: '{"type":"message","room":"probe","text":{"a":1}}', code: 'invalid_field' },
    { name: 'text as number', frame: '{"type":"message","room":"probe","text":5}', code: 'invalid_field' },
    { name: 'text with an unpaired high surrogate', frame: '{"type":"message","room":"probe","text":"x\\ud800"}', code: 'invalid_field' },
    { name: 'text with an unpaired low surrogate', frame: '{"type":"message","room":"probe","text":"\\udfffx"}', code: 'invalid_field' },
    { name: 'message user as number', frame: '{"type":"message","room":"probe","text":"hi","user":3}', code: 'invalid_field' },
    { name: 'own __proto__ key', frame: '{"__proto__":{"type":"join"},"type":"join","room":"proto","user":"p"}', code: 'invalid_field' },
    { name: 'only a __proto__ key', frame: '{"__proto__":{"isAdmin":true}}', code: 'invalid_field' },
    { name: 'own constructor key', frame: '{"constructor":{"prototype":{}},"type":"join","room":"ctor","user":"c"}', code: 'invalid_field' },
    { name: 'own prototype key', frame: '{"prototype":{},"type":"message","room":"probe","text":"hi"}', code: 'invalid_field' },
    { name: 'message to a room not joined', frame: '{"type":"message","room":"nowhere","text":"hi"}', code: 'not_joined' },
    { name: 'leave a room not joined', frame: '{"type":"leave","room":"nowhere"}', code: 'not_joined' },
    { name: 'message as another user', frame: '{"type":"message","room":"probe","text":"hi","user":"mallory"}', code: 'user_mismatch' },
    { name: 'join a joined room as another user', frame: '{"type":"join","room":"probe","user":"mallory"}', code: 'already_joined' },
    { name: 'binary frame', frame: Buffer.from([0x00, 0x01, 0xfe, 0xff]), code: 'binary_not_supported' },
    { name: 'binary frame holding a valid join', frame: Buffer.from('{"type":"join","room":"bin","user":"b"}'), code: 'binary_not_supported' },
    { name: 'empty binary frame', frame: Buffer.alloc(0), code: 'binary_not_supported' },
  ];

  it(`answers each of ${cases.length} bad frames with its error code, and the connection keeps working`, async () => {
    expect(cases.length).to.be.at.least(25);
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    const watcher = await connect(instance.url);
    await alice.join('probe', 'alice');
    await watcher.join('probe', 'watcher');
    await alice.waitFor((f) => tellsPresence(f, 'join', 'watcher'));

    const failures: string[] = [];
    const probeTexts: string[] = [];
    for (const [i, c] of cases.entries()) {
      const from = alice.frames.length;
      if (typeof c.frame === 'string') alice.ws.send(c.frame);
      else alice.ws.send(c.frame, { binary: true });
      // The valid message right after is the positive control: it must be echoed, and the
      // bad frame must have produced exactly one error before it.
      const text = `still alive after #${i}`;
      probeTexts.push(text);
      const echo = await alice.say('probe', text);
      const got = alice.frames.slice(from, alice.frames.indexOf(echo));
      const ok =
        got.length === 1 &&
        got[0]!.type === 'error' &&
        got[0]!.code === c.code &&
        typeof got[0]!.message === 'string' &&
        // An error answering a message frame also names its room (and clientId, when it had one).
        Object.keys(got[0]!).filter((k) => k !== 'room' && k !== 'clientId').sort().join() === 'code,message,type';
      if (!ok) failures.push(`#${i} ${c.name}: expected one error ${c.code}, got ${JSON.stringify(got).slice(0, 300)}`);
    }
    expect(failures, failures.join('\n')).to.deep.equal([]);
    expect(alice.closeCode).to.equal(null);

    // The other member saw every control message and nothing else: no bad frame leaked.
    await watcher.waitFor((f) => f.type === 'message' && f.text === probeTexts.at(-1));
    const seen = await framesBeforeProbe(watcher, 1);
    expect(seen.map((f) => (f.type === 'message' ? f.text : JSON.stringify(f)))).to.deep.equal(probeTexts);

    // None of the bad frames joined a room.
    await waitForCounts(instance, 2, 1);
  });

  it('emoji, combining characters, RTL text and odd-but-valid names round-trip exactly', async () => {
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    const bob = await connect(instance.url);
    const valid: Array<{ room: string; user: string; text: string }> = [
      { room: '🎉 party', user: '👩‍💻 dev', text: '👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 skin tone' },
      { room: 'Zoe\u0308', user: 'Zo\u00eb', text: 'e\u0301 is not \u00e9: combining marks are not normalised' },
      { room: 'שלום', user: 'مرحبا', text: 'RTL עברית and العربية with \u202eoverride\u202c and \u200fmark' },
      { room: '𝕦𝕟𝕚𝕔𝕠𝕕𝕖', user: '😀'.repeat(64), text: 'astral 𝄞 and a BOM \ufeff and a ZWJ \u200d inside' },
      { room: 'r'.repeat(128), user: ' padded name ', text: 'boundary: a 128-character room name' },
      { room: '__proto__', user: 'constructor', text: 'hasOwnProperty' },
      { room: 'toString', user: 'prototype', text: '{"type":"join","room":"x","user":"y"}' },
      { room: 'control-in-text', user: 'ctl', text: 'multi\nline\ttext with a NUL \u0000 and DEL \u007f' },
      { room: '中文房间', user: '用户', text: '日本語のテキストと한국어' },
    ];
    for (const v of valid) {
      const aliceFrom = alice.frames.length;
      const joined = await alice.request({ type: 'join', room: v.room, user: v.user }, (f) => f.type === 'joined' || f.type === 'error');
      expect(joinedFields(joined), `join ${JSON.stringify(v.room)} as ${JSON.stringify(v.user)}`).to.deep.equal({ type: 'joined', room: v.room, user: v.user });
      await bob.request({ type: 'join', room: v.room, user: 'bob' }, (f) => f.type === 'joined');
      const presence = await alice.waitFor((f) => f.type === 'presence' && f.room === v.room);
      expect(presence).to.deep.equal({ type: 'presence', event: 'join', room: v.room, user: 'bob' });

      const echo = await alice.request({ type: 'message', room: v.room, text: v.text, user: v.user }, (f) => f.type === 'message' || f.type === 'error');
      expect(echo, `message in ${JSON.stringify(v.room)}`).to.include({ type: 'message', room: v.room, user: v.user, text: v.text });
      const atBob = await bob.waitFor((f) => f.type === 'message' && f.id === echo.id);
      expect(atBob).to.deep.equal(echo);
      expect(alice.frames.slice(aliceFrom).filter((f) => f.type === 'error')).to.deep.equal([]);
    }
    await waitForCounts(instance, 2, valid.length);
  });
});

// ---------------------------------------------------------------------------------------------

describe('client protocol: limits', function () {
  this.timeout(20_000);

  it('a frame of exactly MAX_PAYLOAD_BYTES (default 65536) is served, one byte more closes with 1009 and only that connection', async () => {
    const instance = await Instance.start();
    const big = await connect(instance.url);
    const bob = await connect(instance.url);
    await big.join('lim', 'big');
    await bob.join('lim', 'bob');

    const atLimit = paddedFrame({ type: 'message', room: 'lim', text: 'exactly at the limit' }, 65_536);
    const echo = await big.request(atLimit, (f) => f.type === 'message' || f.type === 'error');
    expect(echo).to.include({ type: 'message', text: 'exactly at the limit', user: 'big' });
    await bob.waitFor((f) => f.type === 'message' && f.id === echo.id);

    const bobFrom = bob.frames.length;
    big.send(paddedFrame({ type: 'message', room: 'lim', text: 'one byte over' }, 65_537));
    expect(await big.waitClose()).to.equal(1009);
    expect(big.frames.some((f) => f.text === 'one byte over')).to.equal(false);

    // Its memberships were released: bob sees it leave, and never sees the oversized message.
    const leave = await bob.waitFor((f) => f.type === 'presence' && f.event === 'leave');
    expect(leave).to.deep.equal({ type: 'presence', event: 'leave', room: 'lim', user: 'big' });
    expect((await framesBeforeEcho(bob, 'lim', bobFrom)).filter((f) => f.type === 'message')).to.deep.equal([]);

    const { status, body } = await instance.health();
    expect(status).to.equal(200);
    expect(body.status).to.equal('ok');
    await waitForCounts(instance, 1, 1);

    // A newcomer chats with bob.
    const carol = await connect(instance.url);
    await carol.join('lim', 'carol');
    const hi = await carol.say('lim', 'hi bob');
    await bob.waitFor((f) => f.type === 'message' && f.id === hi.id);
    expect(instance.alive).to.equal(true);
  });

  it('a fragmented message whose fragments together exceed the limit closes with 1009', async () => {
    const instance = await Instance.start();
    const frag = await connect(instance.url);
    const other = await connect(instance.url);
    await other.join('lim', 'other');
    const chunk = 'x'.repeat(40_000);
    frag.ws.send(`{"type":"message","room":"lim","text":"${chunk}`, { fin: false });
    frag.ws.send(`${chunk}"}`, { fin: true });
    expect(await frag.waitClose()).to.equal(1009);
    await other.say('lim', 'still here');
    await waitForCounts(instance, 1, 1);
  });

  it('a frame far over the limit (1 MiB) closes with 1009 and the server stays up', async () => {
    const instance = await Instance.start();
    const huge = await connect(instance.url);
    huge.send(paddedFrame({ type: 'message', room: 'lim', text: 'huge' }, 1024 * 1024));
    expect(await huge.waitClose()).to.equal(1009);
    const after = await connect(instance.url);
    await after.join('lim', 'after');
    await after.say('lim', 'server still serves');
    await waitForCounts(instance, 1, 1);
  });

  it('invalid UTF-8 in a text frame closes with 1007, and only that connection', async () => {
    const instance = await Instance.start();
    const bob = await connect(instance.url);
    await bob.join('utf', 'bob');

    const bad = await connect(instance.url);
    await bad.join('utf', 'bad');
    bad.ws.send(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false });
    expect(await bad.waitClose()).to.equal(1007);
    await bob.waitFor((f) => tellsPresence(f, 'leave', 'bad'));

    // A UTF-8-encoded surrogate (CESU style) is not valid UTF-8 either.
    const cesu = await connect(instance.url);
    cesu.ws.send(Buffer.concat([Buffer.from('{"type":"join","room":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('","user":"x"}')]), { binary: false });
    expect(await cesu.waitClose()).to.equal(1007);

    // Truncated multi-byte sequence at the end of the frame.
    const truncated = await connect(instance.url);
    truncated.ws.send(Buffer.from([0x22, 0xe2, 0x82]), { binary: false });
    expect(await truncated.waitClose()).to.equal(1007);

    await bob.say('utf', 'still chatting');
    await waitForCounts(instance, 1, 1);
  });

  it('default limits: 8000-character text is accepted, the 101st room gets too_many_rooms', async () => {
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    await alice.join('big-text', 'alice');
    const text = 'é'.repeat(8000);
    const echo = await alice.request({ type: 'message', room: 'big-text', text }, (f) => f.type === 'message' || f.type === 'error');
    expect(echo).to.include({ type: 'message', text });

    for (let i = 1; i < 100; i++) await alice.join(`room-${i}`, 'alice');
    await waitForCounts(instance, 1, 100);
    const refused = await alice.request({ type: 'join', room: 'room-100', user: 'alice' }, (f) => f.type === 'joined' || f.type === 'error');
    expect(refused).to.include({ type: 'error', code: 'too_many_rooms' });
    await waitForCounts(instance, 1, 100);
  });

  it('MAX_ROOMS_PER_CONNECTION=3: the fourth join gets too_many_rooms; re-join and leave behave; the limit is per connection', async () => {
    const instance = await Instance.start({ env: { MAX_ROOMS_PER_CONNECTION: '3' } });
    const alice = await connect(instance.url);
    for (const room of ['a', 'b', 'c']) await alice.join(room, 'alice');
    const aliceFrom = alice.frames.length;
    const refused = await alice.request({ type: 'join', room: 'd', user: 'alice' }, (f) => f.type === 'joined' || f.type === 'error');
    expect(refused).to.include({ type: 'error', code: 'too_many_rooms' });
    expect(await framesBeforeProbe(alice, aliceFrom)).to.have.length(1);
    await waitForCounts(instance, 1, 3);

    // Joining a room it is already in is not a new room: still answered with joined.
    const again = await alice.request({ type: 'join', room: 'b', user: 'alice' }, (f) => f.type === 'joined' || f.type === 'error');
    expect(joinedFields(again)).to.deep.equal({ type: 'joined', room: 'b', user: 'alice' });

    // The refused room was not joined.
    const notIn = await alice.request({ type: 'message', room: 'd', text: 'hi' }, (f) => f.type === 'message' || f.type === 'error');
    expect(notIn).to.include({ type: 'error', code: 'not_joined' });

    // After a leave there is room again.
    await alice.request({ type: 'leave', room: 'a' }, (f) => f.type === 'left');
    await alice.join('d', 'alice');
    await alice.say('d', 'made it');

    // Another connection has its own three.
    const bob = await connect(instance.url);
    for (const room of ['x', 'y', 'z']) await bob.join(room, 'bob');
    const bobRefused = await bob.request({ type: 'join', room: 'w', user: 'bob' }, (f) => f.type === 'joined' || f.type === 'error');
    expect(bobRefused).to.include({ type: 'error', code: 'too_many_rooms' });
    await waitForCounts(instance, 2, 6);
  });

  it('MAX_PAYLOAD_BYTES, MAX_TEXT_LENGTH and MAX_NAME_LENGTH are honoured when set via env', async () => {
    const instance = await Instance.start({ env: { MAX_PAYLOAD_BYTES: '1024', MAX_TEXT_LENGTH: '50', MAX_NAME_LENGTH: '8' } });
    const alice = await connect(instance.url);

    const longRoom = await alice.request({ type: 'join', room: 'r'.repeat(9), user: 'alice' }, (f) => f.type === 'joined' || f.type === 'error');
    expect(longRoom).to.include({ type: 'error', code: 'invalid_field' });
    const longUser = await alice.request({ type: 'join', room: 'room', user: 'u'.repeat(9) }, (f) => f.type === 'joined' || f.type === 'error');
    expect(longUser).to.include({ type: 'error', code: 'invalid_field' });
    expect(joinedFields(await alice.join('r'.repeat(8), 'u'.repeat(8)))).to.deep.equal({ type: 'joined', room: 'r'.repeat(8), user: 'u'.repeat(8) });
    const room = 'r'.repeat(8);

    const fifty = 'f'.repeat(50);
    const ok = await alice.request({ type: 'message', room, text: fifty }, (f) => f.type === 'message' || f.type === 'error');
    expect(ok).to.include({ type: 'message', text: fifty });
    const tooLong = await alice.request({ type: 'message', room, text: 'f'.repeat(51) }, (f) => f.type === 'message' || f.type === 'error');
    expect(tooLong).to.include({ type: 'error', code: 'invalid_field' });

    // 1024 bytes exactly: served. (Well over the default text/name limits' worth of padding, but valid JSON.)
    const atLimit = await alice.request(paddedFrame({ type: 'message', room, text: 'at 1024' }, 1024), (f) => f.type === 'message' || f.type === 'error');
    expect(atLimit).to.include({ type: 'message', text: 'at 1024' });
    alice.send(paddedFrame({ type: 'message', room, text: 'at 1025' }, 1025));
    expect(await alice.waitClose()).to.equal(1009);
    expect(alice.frames.some((f) => f.text === 'at 1025')).to.equal(false);

    // A frame that the default limit would allow (2 KiB) is refused too.
    const bob = await connect(instance.url);
    bob.send(paddedFrame({ type: 'join', room: 'b', user: 'b' }, 2048));
    expect(await bob.waitClose()).to.equal(1009);
    await waitForCounts(instance, 0, 0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('client protocol: heartbeat', function () {
  this.timeout(15_000);
  const INTERVAL = 200;

  it('a client that does not answer pings is dropped within two intervals; its rooms are released', async () => {
    const instance = await Instance.start({ env: { PING_INTERVAL_MS: String(INTERVAL) } });
    const alive = await connect(instance.url);
    await alive.join('shared', 'alive');

    const dead = await rawClient(instance.url, { autoPong: false });
    const connectedAt = Date.now();
    let pings = 0;
    dead.ws.on('ping', () => pings++);
    const closed = withTimeout(once(dead.ws, 'close'), 5000, 'the silent client to be dropped');
    dead.ws.send(JSON.stringify({ type: 'join', room: 'lonely', user: 'ghost' }));
    dead.ws.send(JSON.stringify({ type: 'join', room: 'shared', user: 'ghost' }));
    await poll(() => dead.frames.filter((f) => f.type === 'joined').length === 2, { what: 'the silent client to join two rooms' });
    await alive.waitFor((f) => tellsPresence(f, 'join', 'ghost'));

    const [code] = (await closed) as [number];
    const elapsed = Date.now() - connectedAt;
    expect(pings, 'pings received before being dropped').to.be.at.least(1);
    // Terminated (no close frame): the client sees an abnormal closure.
    expect(code).to.equal(1006);
    expect(elapsed, 'ms from connect to drop').to.be.below(2 * INTERVAL + 400);

    const leave = await alive.waitFor((f) => f.type === 'presence' && f.event === 'leave');
    expect(leave).to.deep.equal({ type: 'presence', event: 'leave', room: 'shared', user: 'ghost' });
    // Only the live client and its room remain ('lonely' had the ghost as only member).
    await waitForCounts(instance, 1, 1);
    await instance.waitForLog((l) => l.msg === 'client missed its pong: dropping it', 2000);
    expect(alive.closeCode).to.equal(null);
  });

  it('a client that answers pings stays connected across several intervals and still chats', async () => {
    const instance = await Instance.start({ env: { PING_INTERVAL_MS: String(INTERVAL) } });
    const alice = await connect(instance.url);
    const bob = await connect(instance.url);
    await alice.join('hb', 'alice');
    await bob.join('hb', 'bob');
    const start = Date.now();
    let pings = 0;
    alice.ws.on('ping', () => pings++);
    // Each ping is one server tick; five pings means at least four full intervals have passed,
    // each of which would have dropped a client that had not answered the one before.
    await poll(() => pings >= 5, { timeoutMs: 5000, what: 'five pings at alice' });
    expect(Date.now() - start).to.be.at.least(3 * INTERVAL);
    expect(alice.closeCode).to.equal(null);
    expect(bob.closeCode).to.equal(null);
    const echo = await alice.say('hb', 'still here after the pings');
    await bob.waitFor((f) => f.type === 'message' && f.id === echo.id);
    await waitForCounts(instance, 2, 1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('client protocol: cleanup', function () {
  this.timeout(15_000);

  it('20 clients in 3 rooms each, all closed (half abruptly, half cleanly): /health goes back to 0 connections and 0 rooms', async () => {
    const instance = await Instance.start();
    const clients: TestClient[] = [];
    for (let i = 0; i < 20; i++) clients.push(await connect(instance.url));
    await Promise.all(
      clients.map(async (c, i) => {
        await c.join(`shared-${i % 5}`, `user-${i}`);
        await c.join(`shared-${(i + 1) % 5}`, `user-${i}`);
        await c.join(`own-${i}`, `user-${i}`);
      }),
    );
    await waitForCounts(instance, 20, 25);

    await Promise.all(
      clients.map(async (c, i) => {
        if (i % 2 === 0) {
          await c.close(); // terminate: TCP gone, no close frame
        } else {
          c.ws.close(1000, 'bye');
          await c.waitClose();
        }
      }),
    );
    await waitForCounts(instance, 0, 0);
    expect(instance.alive).to.equal(true);
  });
});

// ---------------------------------------------------------------------------------------------

describe('client protocol: HTTP', function () {
  this.timeout(10_000);

  it('GET /health describes the node', async () => {
    const instance = await Instance.start();
    const res = await fetch(`${instance.httpUrl}/health`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).to.include({ status: 'ok', connections: 0, rooms: 0 });
    expect(body.node).to.deep.include({ id: instance.nodeId, port: instance.port });
    expect((body.node as { version: unknown }).version).to.be.a('string');
    expect(body.uptime).to.be.a('number');
    expect(body.peers).to.deep.equal([]);
  });

  it('unknown path → 404 JSON not_found', async () => {
    const instance = await Instance.start();
    for (const path of ['/nope', '/health/extra', '/_mesh']) {
      const res = await fetch(`${instance.httpUrl}${path}`);
      expect(res.status, path).to.equal(404);
      expect(res.headers.get('content-type')).to.match(/^application\/json/);
      const body = (await res.json()) as { error: { code: string; message: unknown } };
      expect(body.error.code).to.equal('not_found');
      expect(body.error.message).to.be.a('string');
    }
  });

  it('POST /health → 405 with an Allow header', async () => {
    const instance = await Instance.start();
    const res = await fetch(`${instance.httpUrl}/health`, { method: 'POST', body: '{}' });
    expect(res.status).to.equal(405);
    const allow = (res.headers.get('allow') ?? '').split(',').map((s) => s.trim());
    expect(allow).to.include('GET');
    const body = (await res.json()) as { error: { code: string } };
    expect(body.error.code).to.equal('method_not_allowed');
  });

  it('HEAD /health → 200 without a body', async () => {
    const instance = await Instance.start();
    const res = await fetch(`${instance.httpUrl}/health`, { method: 'HEAD' });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    expect(await res.text()).to.equal('');
  });

  it('a WebSocket upgrade on another path is refused with 404; / still upgrades', async () => {
    const instance = await Instance.start();
    expect(await upgradeStatus(`${instance.url}/nope`)).to.equal(404);
    expect(await upgradeStatus(`${instance.url}/health`)).to.equal(404);
    expect(await upgradeStatus(`${instance.url}/`)).to.equal(101);
    await poll(async () => (await healthCounts(instance)).connections === 1, { what: 'the accepted upgrade to count' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('client protocol: graceful stop', function () {
  this.timeout(15_000);

  it('stop(): connected clients get close code 1001 and the process exits 0 within a few seconds', async () => {
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    const bob = await connect(instance.url);
    await alice.join('lobby', 'alice');
    await bob.join('lobby', 'bob');
    const started = Date.now();
    const stopping = instance.stop();
    expect(await alice.waitClose(5000)).to.equal(1001);
    expect(await bob.waitClose(5000)).to.equal(1001);
    expect(await stopping).to.equal(0);
    expect(Date.now() - started).to.be.below(5000);
  });

  it('while shutting down /health answers 503 shutting_down and new connections are closed with 1001', async () => {
    const instance = await Instance.start();
    const alice = await connect(instance.url);
    await alice.join('lobby', 'alice');
    // A client that never answers the close handshake keeps the shutdown in progress for a while.
    const stalled = await stalledRawClient(instance.port);
    await waitForCounts(instance, 2, 1);

    instance.signal('SIGTERM');
    expect(await alice.waitClose(5000)).to.equal(1001);
    const { status, body } = await poll(
      async () => {
        const h = await instance.health();
        return h.status === 503 ? h : null;
      },
      { timeoutMs: 3000, what: '/health to answer 503' },
    );
    expect(status).to.equal(503);
    expect(body.status).to.equal('shutting_down');

    const late = await connect(instance.url);
    expect(await late.waitClose(3000)).to.equal(1001);

    // The stalled client was sent a close frame with 1001 too.
    await poll(() => stalled.received().length >= 4, { what: 'a close frame at the stalled client' });
    const frame = stalled.received();
    expect(frame[0]).to.equal(0x88);
    expect(frame.readUInt16BE(2)).to.equal(1001);

    await instance.waitExit(6000);
    expect(instance.exitCode).to.equal(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('client protocol: volume', function () {
  this.timeout(30_000);

  it('20,000 messages on one connection reach both members, all of them, in order, exactly once', async () => {
    // Far over the default per-connection rate limit on purpose: this is about volume.
    const instance = await Instance.start({ env: { LOG_LEVEL: 'info', RATE_LIMIT_PER_SEC: '1000000', RATE_LIMIT_BURST: '1000000' } });
    const sender = await connect(instance.url);
    const receiver = await connect(instance.url);
    await sender.join('bulk', 'sender');
    await receiver.join('bulk', 'receiver');
    await sender.waitFor((f) => tellsPresence(f, 'join', 'receiver'));

    const TOTAL = 20_000;
    const BATCH = 1000;
    const expected: string[] = [];
    for (let i = 0; i < TOTAL; i++) expected.push(`seq:${String(i).padStart(5, '0')}`);
    for (let start = 0; start < TOTAL; start += BATCH) {
      const last = expected[start + BATCH - 1]!;
      const done = sender.next((f) => f.type === 'message' && f.text === last, 10_000, `echo of ${last}`);
      for (let i = start; i < start + BATCH; i++) sender.ws.send(`{"type":"message","room":"bulk","text":"${expected[i]}"}`);
      await done;
    }
    await receiver.waitFor((f) => f.type === 'message' && f.text === expected.at(-1), 10_000, 'the last message at the receiver');
    // Positive controls: anything extra (duplicates, errors) would be in before these replies.
    await framesBeforeProbe(sender, 0);
    await framesBeforeProbe(receiver, 0);

    for (const [name, client] of [['sender', sender], ['receiver', receiver]] as const) {
      const msgs = client.messages('bulk');
      const texts = msgs.map((m) => m.text as string);
      const diff = firstDifference(texts, expected);
      expect(diff, `${name}: first out-of-order/missing/extra message at index ${diff}: ${texts[diff]} vs ${expected[diff]}`).to.equal(-1);
      expect(new Set(msgs.map((m) => m.id)).size, `${name}: distinct ids`).to.equal(TOTAL);
      const errors = client.frames.filter((f) => f.type === 'error' && !String(f.message).includes('"probe-'));
      expect(errors, `${name}: errors`).to.deep.equal([]);
      expect(msgs.every((m) => m.user === 'sender' && m.room === 'bulk')).to.equal(true);
    }
    const senderIds = sender.messages('bulk').map((m) => m.id as string);
    const receiverIds = receiver.messages('bulk').map((m) => m.id as string);
    expect(firstDifference(senderIds, receiverIds)).to.equal(-1);
  });
});
