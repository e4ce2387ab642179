import { expect } from 'chai';
import { decodeEnvelope, encodeEnvelopeHeader, type FloodHeader } from '../../lib/mesh/envelope.js';
import { decodeHandshake, type AuthFrame, type HelloFrame, type ReadyFrame, type WelcomeFrame } from '../../lib/links/handshake-frames.js';

const header = (over: Partial<FloodHeader> = {}): FloodHeader => ({
  t: 'room',
  id: 'msg-1',
  o: 'node-a',
  h: 2,
  r: 'lobby',
  ...over,
});

const envelope = (h: FloodHeader, payload: Buffer) => Buffer.concat([encodeEnvelopeHeader(h), payload]);

/** A raw frame from a header text and payload text. */
const raw = (headerText: string, payload = '{"type":"message"}') => Buffer.from(`${headerText}\n${payload}`);

describe('peer protocol', () => {
  describe('envelopes', () => {
    it('encodeEnvelopeHeader ends with exactly one newline', () => {
      const buf = encodeEnvelopeHeader(header());
      expect(buf[buf.length - 1]).to.equal(0x0a);
      expect(buf.subarray(0, -1).includes(0x0a)).to.equal(false);
    });

    it('round-trips header and payload bytes', () => {
      const h = header();
      const payload = Buffer.from(JSON.stringify({ type: 'message', id: 'msg-1', room: 'lobby', user: 'ann', text: 'hi', ts: 1 }));
      const env = decodeEnvelope(envelope(h, payload));
      expect(env).to.not.equal(null);
      expect(env!.header).to.deep.equal(h);
      expect(Buffer.compare(env!.payload, payload)).to.equal(0);
    });

    it('keeps a payload with newlines and multi-byte UTF-8 byte-for-byte', () => {
      const text = 'line 1\nline 2\n\n🎉 général שלום 聊天\r\n';
      const payload = Buffer.from(`{"text":"raw\nnewline"}\n${text}`, 'utf8');
      expect(payload.includes(0x0a)).to.equal(true);
      const env = decodeEnvelope(envelope(header(), payload));
      expect(env).to.not.equal(null);
      expect(env!.payload.equals(payload)).to.equal(true);
      expect(env!.payload.toString('utf8')).to.equal(payload.toString('utf8'));
    });

    it('keeps arbitrary binary payload bytes', () => {
      const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const env = decodeEnvelope(envelope(header(), payload));
      expect(env!.payload.equals(payload)).to.equal(true);
    });

    it('round-trips an empty payload', () => {
      const env = decodeEnvelope(envelope(header(), Buffer.alloc(0)));
      expect(env).to.not.equal(null);
      expect(env!.payload.length).to.equal(0);
    });

    it('round-trips a room name with newlines, quotes and multi-byte characters', () => {
      const h = header({ r: 'salle "🎉"\nšest', h: 0 });
      const env = decodeEnvelope(envelope(h, Buffer.from('x')));
      expect(env!.header).to.deep.equal(h);
      expect(env!.payload.toString()).to.equal('x');
    });

    it('accepts every id character the pattern allows, up to 128 characters', () => {
      const id = 'Az09_-+/=.:'.padEnd(128, 'x');
      const h = header({ id, o: id });
      expect(decodeEnvelope(envelope(h, Buffer.from('p')))!.header).to.deep.equal(h);
    });

    it('returns the payload as a view into the frame, not a copy', () => {
      const frame = envelope(header(), Buffer.from('abc'));
      const env = decodeEnvelope(frame)!;
      frame[frame.length - 1] = 0x5a; // 'Z'
      expect(env.payload.toString()).to.equal('abZ');
    });

    it('drops unknown header fields', () => {
      const env = decodeEnvelope(raw('{"t":"room","id":"i","o":"o","h":1,"r":"r","evil":true}'));
      expect(env!.header).to.deep.equal({ t: 'room', id: 'i', o: 'o', h: 1, r: 'r' });
    });

    const malformed: Array<[string, Buffer]> = [
      ['empty frame', Buffer.alloc(0)],
      ['no newline', Buffer.from(JSON.stringify(header()))],
      ['bad JSON header', raw('{"t":"room",')],
      ['empty header', raw('')],
      ['header null', raw('null')],
      ['header array', raw('[]')],
      ['header string', raw('"room"')],
      ['header number', raw('42')],
      ['wrong t', raw(JSON.stringify({ ...header(), t: 'ROOM' }))],
      ['t hello', raw(JSON.stringify({ ...header(), t: 'hello' }))],
      ['t missing', raw(JSON.stringify({ id: 'i', o: 'o', h: 1, r: 'r' }))],
      ['id missing', raw(JSON.stringify({ t: 'room', o: 'o', h: 1, r: 'r' }))],
      ['id empty', raw(JSON.stringify(header({ id: '' })))],
      ['id with space', raw(JSON.stringify(header({ id: 'a b' })))],
      ['id with pipe', raw(JSON.stringify(header({ id: 'a|b' })))],
      ['id with quote', raw(JSON.stringify(header({ id: 'a"b' })))],
      ['id with non-ASCII', raw(JSON.stringify(header({ id: 'idé' })))],
      ['id with newline', raw(JSON.stringify(header({ id: 'a\nb' })))],
      ['id too long', raw(JSON.stringify(header({ id: 'x'.repeat(129) })))],
      ['id number', raw(JSON.stringify({ ...header(), id: 5 }))],
      ['o with bad chars', raw(JSON.stringify(header({ o: 'node a' })))],
      ['o missing', raw(JSON.stringify({ t: 'room', id: 'i', h: 1, r: 'r' }))],
      ['h not integer', raw(JSON.stringify(header({ h: 1.5 })))],
      ['h string', raw(JSON.stringify({ ...header(), h: '2' }))],
      ['h null', raw(JSON.stringify({ ...header(), h: null }))],
      ['h huge (Infinity)', raw('{"t":"room","id":"i","o":"o","h":1e400,"r":"r"}')],
      ['h missing', raw(JSON.stringify({ t: 'room', id: 'i', o: 'o', r: 'r' }))],
      ['empty room', raw(JSON.stringify(header({ r: '' })))],
      ['room number', raw(JSON.stringify({ ...header(), r: 1 }))],
      ['room missing', raw(JSON.stringify({ t: 'room', id: 'i', o: 'o', h: 1 }))],
    ];
    for (const [label, frame] of malformed) {
      it(`returns null for ${label}`, () => expect(decodeEnvelope(frame)).to.equal(null));
    }

    it('does not throw on a header split inside a multi-byte character', () => {
      const bytes = Buffer.concat([Buffer.from('{"t":"room","r":"'), Buffer.from([0xf0, 0x9f]), Buffer.from('\n'), Buffer.from([0x8e, 0x89])]);
      expect(decodeEnvelope(bytes)).to.equal(null);
    });
  });

  describe('handshake frames', () => {
    const hello: HelloFrame = { t: 'hello', v: 1, id: 'node-a', inc: 'inc-1', port: 4000, nonce: 'abc_DEF-123' };
    const welcome: WelcomeFrame = { t: 'welcome', v: 1, id: 'node-b', inc: 'inc-2', nonce: 'n2', proof: 'p' };
    const auth: AuthFrame = { t: 'auth', proof: 'proof-value' };
    const ready: ReadyFrame = { t: 'ready' };
    const all = { hello, welcome, auth, ready } as const;

    it('accepts valid hello, welcome, auth and ready', () => {
      expect(decodeHandshake<HelloFrame>(JSON.stringify(hello), 'hello')).to.deep.equal(hello);
      expect(decodeHandshake<WelcomeFrame>(JSON.stringify(welcome), 'welcome')).to.deep.equal(welcome);
      expect(decodeHandshake<AuthFrame>(JSON.stringify(auth), 'auth')).to.deep.equal(auth);
      expect(decodeHandshake<ReadyFrame>(JSON.stringify(ready), 'ready')).to.deep.equal(ready);
    });

    it('accepts an empty proof (no secret configured)', () => {
      expect(decodeHandshake<AuthFrame>('{"t":"auth","proof":""}', 'auth')).to.deep.equal({ t: 'auth', proof: '' });
      expect(decodeHandshake<WelcomeFrame>(JSON.stringify({ ...welcome, proof: '' }), 'welcome')).to.not.equal(null);
    });

    it('dialer first (df): a welcome without a proof, a ready with one; the previous order: a welcome with a proof, a plain ready', () => {
      const { proof: _proof, ...noProof } = welcome;
      expect(decodeHandshake<WelcomeFrame>(JSON.stringify({ ...noProof, df: 1 }), 'welcome')).to.deep.equal({ ...noProof, df: 1 });
      expect(decodeHandshake(JSON.stringify(noProof), 'welcome'), 'a welcome of the previous order without its proof').to.equal(null);
      expect(decodeHandshake(JSON.stringify({ ...noProof, df: 1, proof: 5 }), 'welcome'), 'a numeric proof').to.equal(null);
      expect(decodeHandshake<HelloFrame>(JSON.stringify({ ...hello, df: 1 }), 'hello')).to.deep.equal({ ...hello, df: 1 });
      expect(decodeHandshake<ReadyFrame>('{"t":"ready","proof":"p"}', 'ready')).to.deep.equal({ t: 'ready', proof: 'p' });
      expect(decodeHandshake('{"t":"ready","proof":7}', 'ready')).to.equal(null);
      expect(decodeHandshake(JSON.stringify({ t: 'ready', proof: 'a'.repeat(257) }), 'ready')).to.equal(null);
    });

    it('rejects every frame decoded as another kind', () => {
      for (const [name, frame] of Object.entries(all)) {
        for (const kind of Object.keys(all) as Array<keyof typeof all>) {
          if (kind === name) continue;
          expect(decodeHandshake(JSON.stringify(frame), kind), `${name} as ${kind}`).to.equal(null);
        }
      }
    });

    it('rejects non-JSON and non-objects', () => {
      for (const text of ['', 'hello', '{', 'null', '42', '"hello"', '[]', '["hello"]']) {
        for (const kind of ['hello', 'welcome', 'auth', 'ready'] as const) {
          expect(decodeHandshake(text, kind), `${JSON.stringify(text)} as ${kind}`).to.equal(null);
        }
      }
    });

    it('accepts hello ports 1 and 65535', () => {
      expect(decodeHandshake(JSON.stringify({ ...hello, port: 1 }), 'hello')).to.not.equal(null);
      expect(decodeHandshake(JSON.stringify({ ...hello, port: 65535 }), 'hello')).to.not.equal(null);
    });

    for (const port of [0, 70000, 65536, 1.5, -1, '4000', null]) {
      it(`rejects hello with port ${JSON.stringify(port)}`, () => {
        expect(decodeHandshake(JSON.stringify({ ...hello, port }), 'hello')).to.equal(null);
      });
    }

    it('rejects hello without a port or a numeric version', () => {
      const { port: _port, ...noPort } = hello;
      expect(decodeHandshake(JSON.stringify(noPort), 'hello')).to.equal(null);
      expect(decodeHandshake(JSON.stringify({ ...hello, v: '1' }), 'hello')).to.equal(null);
      const { v: _v, ...noVersion } = hello;
      expect(decodeHandshake(JSON.stringify(noVersion), 'hello')).to.equal(null);
    });

    it('rejects ids with spaces or bad characters, empty or over 128 characters', () => {
      for (const id of ['node a', ' node', 'node\t', '', 'x'.repeat(129), 'nödé', 'a|b', 5]) {
        expect(decodeHandshake(JSON.stringify({ ...hello, id }), 'hello'), `hello id ${JSON.stringify(id)}`).to.equal(null);
        expect(decodeHandshake(JSON.stringify({ ...welcome, id }), 'welcome'), `welcome id ${JSON.stringify(id)}`).to.equal(null);
      }
      expect(decodeHandshake(JSON.stringify({ ...hello, id: 'x'.repeat(128) }), 'hello')).to.not.equal(null);
    });

    it('rejects strings over 256 characters, accepts exactly 256', () => {
      const at = 'a'.repeat(256);
      const over = 'a'.repeat(257);
      for (const field of ['inc', 'nonce'] as const) {
        expect(decodeHandshake(JSON.stringify({ ...hello, [field]: at }), 'hello'), `hello.${field} 256`).to.not.equal(null);
        expect(decodeHandshake(JSON.stringify({ ...hello, [field]: over }), 'hello'), `hello.${field} 257`).to.equal(null);
      }
      for (const field of ['inc', 'nonce', 'proof'] as const) {
        expect(decodeHandshake(JSON.stringify({ ...welcome, [field]: at }), 'welcome'), `welcome.${field} 256`).to.not.equal(null);
        expect(decodeHandshake(JSON.stringify({ ...welcome, [field]: over }), 'welcome'), `welcome.${field} 257`).to.equal(null);
      }
      expect(decodeHandshake(JSON.stringify({ ...auth, proof: at }), 'auth')).to.not.equal(null);
      expect(decodeHandshake(JSON.stringify({ ...auth, proof: over }), 'auth')).to.equal(null);
    });

    it('rejects missing or non-string fields', () => {
      for (const field of ['inc', 'nonce']) {
        expect(decodeHandshake(JSON.stringify({ ...hello, [field]: 1 }), 'hello'), `hello.${field}`).to.equal(null);
        const copy: Record<string, unknown> = { ...hello };
        delete copy[field];
        expect(decodeHandshake(JSON.stringify(copy), 'hello'), `hello without ${field}`).to.equal(null);
      }
      for (const field of ['inc', 'nonce', 'proof']) {
        expect(decodeHandshake(JSON.stringify({ ...welcome, [field]: null }), 'welcome'), `welcome.${field}`).to.equal(null);
      }
      expect(decodeHandshake(JSON.stringify({ ...welcome, v: null }), 'welcome')).to.equal(null);
      expect(decodeHandshake('{"t":"auth"}', 'auth')).to.equal(null);
      expect(decodeHandshake('{"t":"auth","proof":123}', 'auth')).to.equal(null);
    });
  });
});
