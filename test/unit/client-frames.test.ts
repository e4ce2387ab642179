import { expect } from 'chai';
import { decodeClientFrame, type DecodeResult, type FrameLimits } from '../../lib/protocol/client-frames.js';

const LIMITS: FrameLimits = { maxNameLength: 16, maxTextLength: 32 };
const KNOWN_CODES = ['bad_json', 'invalid_frame', 'invalid_field', 'unknown_type'];

const decode = (text: string, limits: FrameLimits = LIMITS): DecodeResult => decodeClientFrame(text, limits);
const decodeObj = (value: unknown, limits: FrameLimits = LIMITS): DecodeResult => decode(JSON.stringify(value), limits);

function expectError(result: DecodeResult, code: string, what = ''): void {
  expect(result.ok, `${what} should fail with ${code}, got ${JSON.stringify(result)}`).to.equal(false);
  if (!result.ok) {
    expect(result.code, what).to.equal(code);
    expect(result.message, what).to.be.a('string').and.not.equal('');
  }
}

function expectFrame(result: DecodeResult, frame: unknown, what = ''): void {
  expect(result.ok, `${what} should decode, got ${JSON.stringify(result)}`).to.equal(true);
  if (result.ok) expect(result.frame, what).to.deep.equal(frame);
}

const join = (room: unknown, user: unknown) => ({ type: 'join', room, user });
const leave = (room: unknown) => ({ type: 'leave', room });
const message = (room: unknown, text: unknown, user?: unknown) =>
  user === undefined ? { type: 'message', room, text } : { type: 'message', room, user, text };

describe('decodeClientFrame', () => {
  describe('valid frames', () => {
    it('decodes join', () => {
      expectFrame(decodeObj(join('lobby', 'ann')), { type: 'join', room: 'lobby', user: 'ann' });
    });

    it('decodes leave', () => {
      expectFrame(decodeObj(leave('lobby')), { type: 'leave', room: 'lobby' });
    });

    it('decodes typing (only its room is kept)', () => {
      expectFrame(decodeObj({ type: 'typing', room: 'lobby', user: 'someone-else' }), { type: 'typing', room: 'lobby' });
    });

    it('decodes message without user (user undefined)', () => {
      const r = decodeObj(message('lobby', 'hello'));
      expectFrame(r, { type: 'message', room: 'lobby', user: undefined, text: 'hello' });
      if (r.ok && r.frame.type === 'message') expect(r.frame.user).to.equal(undefined);
    });

    it('decodes message with user', () => {
      expectFrame(decodeObj(message('lobby', 'hello', 'ann')), { type: 'message', room: 'lobby', user: 'ann', text: 'hello' });
    });

    it('decodes inbox (subscribe defaults to true; false unsubscribes)', () => {
      expectFrame(decodeObj({ type: 'inbox' }), { type: 'inbox', subscribe: true });
      expectFrame(decodeObj({ type: 'inbox', subscribe: true }), { type: 'inbox', subscribe: true });
      expectFrame(decodeObj({ type: 'inbox', subscribe: false }), { type: 'inbox', subscribe: false });
    });

    it('refuses an inbox frame with a bad subscribe or another key (invalid_field)', () => {
      for (const bad of [{ type: 'inbox', subscribe: 'yes' }, { type: 'inbox', subscribe: null }, { type: 'inbox', subscribe: 1 }, { type: 'inbox', room: 'r' }, { type: 'inbox', subscribe: true, filter: 'open' }]) {
        expectError(decodeObj(bad), 'invalid_field');
      }
    });

    it('drops unknown extra fields', () => {
      const r = decode('{"type":"join","room":"r","user":"u","admin":true,"nested":{"x":[1,2]}}');
      expectFrame(r, { type: 'join', room: 'r', user: 'u' });
      if (r.ok) expect(Object.keys(r.frame).sort()).to.deep.equal(['room', 'type', 'user']);
    });

    it('keeps text exactly as sent (no trimming, newline and tab allowed)', () => {
      const text = ' line one\nline\ttwo\r\n ';
      expectFrame(decodeObj(message('r', text)), { type: 'message', room: 'r', user: undefined, text });
    });

    it('does not care about key order', () => {
      expectFrame(decode('{"user":"u","room":"r","type":"join"}'), { type: 'join', room: 'r', user: 'u' });
    });

    it('honours the limits passed in, not fixed ones', () => {
      const big: FrameLimits = { maxNameLength: 200, maxTextLength: 5000 };
      expectFrame(decodeObj(join('r'.repeat(200), 'u'), big), { type: 'join', room: 'r'.repeat(200), user: 'u' });
      expectError(decodeObj(join('r'.repeat(200), 'u')), 'invalid_field');
      expectFrame(decodeObj(message('r', 't'.repeat(5000)), big), { type: 'message', room: 'r', user: undefined, text: 't'.repeat(5000) });
    });
  });

  describe('bad_json', () => {
    for (const text of ['', ' ', '{', 'not json', '{"type":"join",}', "{'type':'join'}", '{"type":"join"', 'undefined', 'NaN', '\u0000', '{"a":1}{"b":2}']) {
      it(`rejects ${JSON.stringify(text)}`, () => expectError(decode(text), 'bad_json'));
    }
  });

  describe('invalid_frame (valid JSON, not an object)', () => {
    for (const text of ['null', '42', '-1.5e3', '"join"', 'true', 'false', '[]', '[{"type":"join","room":"r","user":"u"}]']) {
      it(`rejects ${text}`, () => expectError(decode(text), 'invalid_frame'));
    }
  });

  describe('unknown_type', () => {
    for (const type of ['JOIN', 'Join', 'hello', '', ' join', 'join ', 'toString', '__proto__', 'hasOwnProperty', 'x'.repeat(1000)]) {
      it(`rejects type ${JSON.stringify(type.slice(0, 20))}`, () => expectError(decodeObj({ type, room: 'r', user: 'u', text: 't' }), 'unknown_type'));
    }

    it('caps the echoed type in the message', () => {
      const r = decodeObj({ type: 'y'.repeat(10_000) });
      expectError(r, 'unknown_type');
      if (!r.ok) expect(r.message.length).to.be.lessThan(200);
    });
  });

  describe('invalid_field', () => {
    it('type missing or not a string', () => {
      expectError(decode('{}'), 'invalid_field', '{}');
      for (const type of [null, 1, true, ['join'], { join: 1 }]) {
        expectError(decodeObj({ type, room: 'r', user: 'u' }), 'invalid_field', JSON.stringify(type));
      }
    });

    const badNames: Array<[string, unknown]> = [
      ['missing', undefined],
      ['null', null],
      ['number', 7],
      ['boolean', true],
      ['array', ['r']],
      ['object', { name: 'r' }],
      ['empty', ''],
      ['blank', '   '],
      ['blank (tab/newline)', '\t\n'],
      ['blank (unicode spaces)', '\u00a0\u2003\u3000'],
      ['one over the limit', 'n'.repeat(LIMITS.maxNameLength + 1)],
      ['NUL', 'a\u0000b'],
      ['newline', 'a\nb'],
      ['tab', 'a\tb'],
      ['carriage return', 'ab\r'],
      ['escape', '\u001b[31mred'],
      ['unit separator', 'a\u001f'],
      ['DEL', 'a\u007f'],
      ['C1 NEL', 'a\u0085'],
      ['C1 APC', '\u009fa'],
      ['lone high surrogate', 'a\ud83d'],
      ['lone low surrogate', '\ude00b'],
      ['reversed surrogate pair', '\ude00\ud83d'],
    ];

    for (const [label, bad] of badNames) {
      it(`join.room ${label}`, () => expectError(decodeObj(join(bad, 'u')), 'invalid_field'));
      it(`join.user ${label}`, () => expectError(decodeObj(join('r', bad)), 'invalid_field'));
      it(`leave.room ${label}`, () => expectError(decodeObj(leave(bad)), 'invalid_field'));
      it(`typing.room ${label}`, () => expectError(decodeObj({ type: 'typing', room: bad }), 'invalid_field'));
      it(`message.room ${label}`, () => expectError(decodeObj(message(bad, 'hi')), 'invalid_field'));
      if (bad !== undefined) {
        it(`message.user ${label}`, () => expectError(decodeObj(message('r', 'hi', bad)), 'invalid_field'));
      }
    }

    it('message.user null is rejected (only absence means "default")', () => {
      expectError(decode('{"type":"message","room":"r","user":null,"text":"hi"}'), 'invalid_field');
    });

    const badTexts: Array<[string, unknown]> = [
      ['missing', undefined],
      ['null', null],
      ['number', 1],
      ['array', ['hi']],
      ['object', { text: 'hi' }],
      ['empty', ''],
      ['blank', ' \n\t '],
      ['one over the limit', 't'.repeat(LIMITS.maxTextLength + 1)],
      ['lone high surrogate', 'hi \ud83d'],
      ['lone low surrogate', '\udc00 hi'],
    ];
    for (const [label, bad] of badTexts) {
      it(`message.text ${label}`, () => {
        const frame: Record<string, unknown> = { type: 'message', room: 'r' };
        if (bad !== undefined) frame.text = bad;
        expectError(decodeObj(frame), 'invalid_field');
      });
    }
  });

  describe('length limits', () => {
    const n = LIMITS.maxNameLength;
    const t = LIMITS.maxTextLength;
    it('accepts names of exactly maxNameLength, rejects one more', () => {
      expectFrame(decodeObj(join('r'.repeat(n), 'u'.repeat(n))), { type: 'join', room: 'r'.repeat(n), user: 'u'.repeat(n) });
      expectError(decodeObj(join('r'.repeat(n + 1), 'u')), 'invalid_field');
      expectError(decodeObj(join('r', 'u'.repeat(n + 1))), 'invalid_field');
      expectFrame(decodeObj(leave('r'.repeat(n))), { type: 'leave', room: 'r'.repeat(n) });
      expectError(decodeObj(leave('r'.repeat(n + 1))), 'invalid_field');
      expectFrame(decodeObj(message('r'.repeat(n), 'x', 'u'.repeat(n))), { type: 'message', room: 'r'.repeat(n), user: 'u'.repeat(n), text: 'x' });
      expectError(decodeObj(message('r', 'x', 'u'.repeat(n + 1))), 'invalid_field');
    });

    it('accepts text of exactly maxTextLength, rejects one more', () => {
      expectFrame(decodeObj(message('r', 'x'.repeat(t))), { type: 'message', room: 'r', user: undefined, text: 'x'.repeat(t) });
      expectError(decodeObj(message('r', 'x'.repeat(t + 1))), 'invalid_field');
    });
  });

  describe('unicode', () => {
    const fine = [
      ['emoji', '🎉 party'],
      ['ZWJ emoji sequence', '👩‍💻'],
      ['flag', '🇫🇷'],
      ['combining marks', 'e\u0301te\u0301'],
      ['stacked combining marks', 'z\u0351\u0352\u0353'],
      ['Hebrew (RTL)', 'שלום'],
      ['Arabic (RTL)', 'مرحبا'],
      ['RTL with mark', '\u200fשלום'],
      ['CJK', '聊天室'],
      ['astral CJK', '𠜎𠜱'],
    ];
    for (const [label, s] of fine) {
      it(`accepts ${label} in room, user and text`, () => {
        expectFrame(decodeObj(join(s, s)), { type: 'join', room: s, user: s });
        expectFrame(decodeObj(message(s, s, s)), { type: 'message', room: s, user: s, text: s });
      });
    }

    it('accepts well-formed surrogate pairs written as JSON escapes', () => {
      expectFrame(decode('{"type":"leave","room":"\\ud83c\\udf89"}'), { type: 'leave', room: '🎉' });
    });

    it('rejects unpaired surrogates written as JSON escapes', () => {
      expectError(decode('{"type":"leave","room":"\\ud83c"}'), 'invalid_field');
      expectError(decode('{"type":"join","room":"r","user":"\\udf89"}'), 'invalid_field');
      expectError(decode('{"type":"message","room":"r","text":"x\\ud83c"}'), 'invalid_field');
    });
  });

  describe('prototype pollution', () => {
    afterEach(() => {
      // Clean up in case a test failed because the pollution happened.
      delete (Object.prototype as Record<string, unknown>).polluted;
    });

    for (const key of ['__proto__', 'constructor', 'prototype']) {
      it(`rejects a top-level "${key}" key`, () => {
        expectError(decode(`{"${key}":{"polluted":1},"type":"join","room":"r","user":"u"}`), 'invalid_field');
        expectError(decode(`{"type":"leave","room":"r","${key}":null}`), 'invalid_field');
        expectError(decode(`{"type":"message","room":"r","text":"hi","${key}":"x"}`), 'invalid_field');
      });
    }

    it('never pollutes Object.prototype', () => {
      const before = Object.getOwnPropertyNames(Object.prototype).sort();
      const inputs = [
        '{"__proto__":{"polluted":1},"type":"join","room":"r","user":"u"}',
        '{"constructor":{"prototype":{"polluted":1}},"type":"join","room":"r","user":"u"}',
        '{"type":"leave","room":"r","x":{"__proto__":{"polluted":1}}}',
        '{"type":"message","room":"r","text":"t","user":"u","y":{"constructor":{"prototype":{"polluted":1}}}}',
        '{"type":"__proto__","room":"r"}',
      ];
      for (const input of inputs) decode(input);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).to.deep.equal(before);
    });

    it('returns plain frames with Object.prototype and no smuggled keys', () => {
      const r = decode('{"type":"leave","room":"r","x":{"__proto__":{"polluted":1}}}');
      expectFrame(r, { type: 'leave', room: 'r' });
      if (r.ok) {
        expect(Object.getPrototypeOf(r.frame)).to.equal(Object.prototype);
        expect((r.frame as unknown as Record<string, unknown>).polluted).to.equal(undefined);
      }
    });
  });

  describe('fuzz (seeded, 5000 inputs)', () => {
    it('never throws and always returns a rule-abiding frame or a known error code', function () {
      this.timeout(5000);
      const seed = 0xc0ffee;
      const rand = mulberry32(seed);
      const gen = new Gen(rand);
      const before = Object.getOwnPropertyNames(Object.prototype).sort();
      const counts: Record<string, number> = { ok: 0 };
      for (let i = 0; i < 5000; i++) {
        const input = gen.input();
        let result: DecodeResult;
        try {
          result = decodeClientFrame(input, LIMITS);
        } catch (err) {
          expect.fail(`seed ${seed} input #${i} ${JSON.stringify(input)} threw ${(err as Error).stack}`);
        }
        const problem = checkResult(input, result);
        if (problem) expect.fail(`seed ${seed} input #${i} ${JSON.stringify(input)} → ${JSON.stringify(result)}: ${problem}`);
        const key = result.ok ? 'ok' : result.code;
        counts[key] = (counts[key] ?? 0) + 1;
      }
      // The generator must reach every outcome, or the fuzz proves little.
      expect(counts.ok, JSON.stringify(counts)).to.be.greaterThan(250);
      for (const code of KNOWN_CODES) expect(counts[code] ?? 0, `${code} in ${JSON.stringify(counts)}`).to.be.greaterThan(50);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).to.deep.equal(before);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzz support

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** An independent statement of the rules, used as the fuzz oracle. */
function expectedOutcome(input: string): string {
  let v: unknown;
  try {
    v = JSON.parse(input);
  } catch {
    return 'bad_json';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'invalid_frame';
  const o = v as Record<string, unknown>;
  const own = (k: string) => Object.prototype.hasOwnProperty.call(o, k);
  if (own('__proto__') || own('constructor') || own('prototype')) return 'invalid_field';
  if (typeof o.type !== 'string') return 'invalid_field';
  if (o.type !== 'join' && o.type !== 'leave' && o.type !== 'message') return 'unknown_type';
  if (!validName(o.room)) return 'invalid_field';
  if (o.type === 'join' && !validName(o.user)) return 'invalid_field';
  if (o.type === 'message') {
    if (own('user') && o.user !== undefined && !validName(o.user)) return 'invalid_field';
    if (!validText(o.text)) return 'invalid_field';
  }
  return 'ok';
}

function validName(v: unknown): v is string {
  return (
    typeof v === 'string' && v.trim() !== '' && v.length <= LIMITS.maxNameLength && !CONTROL.test(v) && v.isWellFormed()
  );
}

function validText(v: unknown): v is string {
  return typeof v === 'string' && v.trim() !== '' && v.length <= LIMITS.maxTextLength && v.isWellFormed();
}

/** Returns a description of what is wrong with the result, or '' if it is right. */
function checkResult(input: string, result: DecodeResult): string {
  if (typeof result !== 'object' || result === null) return 'result is not an object';
  const expected = expectedOutcome(input);
  if (!result.ok) {
    if (!KNOWN_CODES.includes(result.code)) return `unknown code ${result.code}`;
    if (typeof result.message !== 'string' || result.message === '') return 'empty message';
    if (result.code !== expected) return `expected ${expected}`;
    return '';
  }
  if (expected !== 'ok') return `accepted, expected ${expected}`;
  const f = result.frame;
  const src = JSON.parse(input) as Record<string, unknown>;
  if (Object.getPrototypeOf(f) !== Object.prototype) return 'frame has an odd prototype';
  if (f.type === 'inbox') return 'inbox is never generated';
  if (!validName(f.room) || f.room !== src.room) return 'bad room';
  switch (f.type) {
    case 'join':
      if (!sameKeys(f, ['type', 'room', 'user'])) return 'join keys';
      if (!validName(f.user) || f.user !== src.user) return 'bad user';
      return '';
    case 'leave':
      return sameKeys(f, ['type', 'room']) ? '' : 'leave keys';
    case 'message':
      if (!sameKeys(f, ['type', 'room', 'user', 'text'])) return 'message keys';
      if (f.user !== undefined && !validName(f.user)) return 'bad user';
      if (f.user !== src.user) return 'user differs from input';
      if (!validText(f.text) || f.text !== src.text) return 'bad text';
      return '';
    default:
      return `type ${(f as { type: unknown }).type}`;
  }
}

function sameKeys(o: object, keys: string[]): boolean {
  return JSON.stringify(Object.keys(o).sort()) === JSON.stringify([...keys].sort());
}

/** Generates JSON-ish text and garbage. Builds JSON text by hand so that "__proto__" keys survive. */
class Gen {
  constructor(private readonly r: () => number) {}

  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)];
  }
  chance(p: number): boolean {
    return this.r() < p;
  }

  input(): string {
    const k = this.r();
    if (k < 0.1) return this.garbageBytes();
    if (k < 0.18) return this.codeUnits(this.int(40));
    if (k < 0.3) return this.mutate(this.frameText());
    if (k < 0.4) return this.value(0);
    return this.frameText();
  }

  /** Random bytes decoded as UTF-8 (so invalid sequences become U+FFFD) or latin1. */
  garbageBytes(): string {
    const bytes = Buffer.from(Array.from({ length: this.int(64) }, () => this.int(256)));
    return bytes.toString(this.chance(0.5) ? 'utf8' : 'latin1');
  }

  /** Arbitrary UTF-16 code units, lone surrogates included. */
  codeUnits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) {
      const k = this.r();
      if (k < 0.5) s += String.fromCharCode(0x20 + this.int(0x5f));
      else if (k < 0.6) s += String.fromCharCode(this.int(0x20));
      else if (k < 0.7) s += String.fromCharCode(0xd800 + this.int(0x800));
      else if (k < 0.8) s += String.fromCharCode(0x7f + this.int(0x21));
      else s += String.fromCharCode(this.int(0x10000));
    }
    return s;
  }

  /** A string value, biased towards the interesting cases. */
  str(): string {
    const pool = [
      () => 'lobby',
      () => 'ann',
      () => 'hello world',
      () => '',
      () => '   ',
      () => '🎉',
      () => '👩‍💻 dev',
      () => 'e\u0301',
      () => 'שלום',
      () => 'a\nb',
      () => 'tab\there',
      () => 'x\u0000',
      () => 'y\u0085',
      () => '\ud83d',
      () => 'ok\udc00',
      () => 'n'.repeat(LIMITS.maxNameLength),
      () => 'n'.repeat(LIMITS.maxNameLength + 1),
      () => 't'.repeat(LIMITS.maxTextLength),
      () => 't'.repeat(LIMITS.maxTextLength + 1),
      () => '__proto__',
      () => 'join',
      () => this.codeUnits(this.int(20)),
    ];
    return this.pick(pool)();
  }

  key(): string {
    return this.pick(['type', 'room', 'user', 'text', '__proto__', 'constructor', 'prototype', 'toString', 'x', '', this.str()]);
  }

  /** A random JSON value as text. */
  value(depth: number): string {
    const k = this.int(depth > 3 ? 6 : 8);
    switch (k) {
      case 0:
        return 'null';
      case 1:
        return this.chance(0.5) ? 'true' : 'false';
      case 2:
        return this.pick(['0', '-1', '1.5', '1e308', '-0', '123456789012345678901234567890']);
      case 3:
      case 4:
      case 5:
        return JSON.stringify(this.str());
      case 6: {
        const n = this.int(4);
        return `[${Array.from({ length: n }, () => this.value(depth + 1)).join(',')}]`;
      }
      default: {
        const n = this.int(5);
        return `{${Array.from({ length: n }, () => `${JSON.stringify(this.key())}:${this.value(depth + 1)}`).join(',')}}`;
      }
    }
  }

  /** An object shaped like a client frame, each field right most of the time. */
  frameText(): string {
    const type = this.chance(0.85) ? this.pick(['join', 'leave', 'message']) : this.pick(['JOIN', 'hello', '', 'error']);
    const fields: Array<[string, string]> = [['type', this.chance(0.95) ? JSON.stringify(type) : this.value(2)]];
    const goodName = () => JSON.stringify(this.pick(['lobby', 'ann', 'général', '🎉', 'שלום', 'n'.repeat(LIMITS.maxNameLength)]));
    const field = (name: string, good: () => string, p: number) => {
      if (this.chance(0.05)) return; // missing
      fields.push([name, this.chance(p) ? good() : this.chance(0.7) ? JSON.stringify(this.str()) : this.value(2)]);
    };
    field('room', goodName, 0.8);
    if (type === 'join' || this.chance(0.3)) field('user', goodName, 0.8);
    if (type === 'message' || this.chance(0.2)) {
      field('text', () => JSON.stringify(this.pick(['hi', 'line\nline', '🎉🎉', ' padded ', 't'.repeat(LIMITS.maxTextLength)])), 0.8);
    }
    if (this.chance(0.15)) fields.push([this.key(), this.value(1)]);
    if (this.chance(0.05)) fields.push(['__proto__', '{"polluted":1}']);
    // shuffle
    for (let i = fields.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [fields[i], fields[j]] = [fields[j], fields[i]];
    }
    return `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
  }

  /** A few random character edits. */
  mutate(s: string): string {
    let out = s;
    const edits = 1 + this.int(3);
    for (let e = 0; e < edits; e++) {
      const at = this.int(out.length + 1);
      const k = this.int(3);
      if (k === 0) out = out.slice(0, at) + out.slice(at + 1);
      else if (k === 1) out = out.slice(0, at) + this.pick(['"', '{', '}', ',', ':', '\\', 'x', '\u0000', '\ud800']) + out.slice(at);
      else out = out.slice(0, at) + out.slice(at).replace(/./, this.pick(['"', '}', '0', ' ']));
    }
    return out;
  }
}
