/**
 * Frames from peers that fail validation (in memory, no sockets): the bounds of an envelope's
 * presence metadata and of a links advertisement; the mesh counts what fails, neither
 * acknowledges nor forwards it, and cuts a peer that keeps sending it (4007).
 */
import { expect } from 'chai';
import { CloseCode } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { Adverts, MAX_ADVERT_IDS } from '../../lib/mesh/adverts.js';
import { decodeEnvelope } from '../../lib/mesh/envelope.js';
import { INVALID_WINDOW_MS, InvalidFrames, MAX_INVALID_FRAMES } from '../../lib/mesh/invalid-frames.js';
import { Mesh } from '../../lib/mesh/mesh.js';
import { MemoryNetwork, type MemoryTransport } from '../helpers/memory-transport.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const NOW = 1_700_000_000_000;

describe('envelope and advertisement bounds', () => {
  const room = (p: unknown) => Buffer.from(JSON.stringify({ t: 'room', id: 'e1', o: 'n1', h: 1, r: 'lobby', p }) + '\n{}');

  it('takes presence metadata only as two non-negative safe integers', () => {
    expect(decodeEnvelope(room({ c: 1, v: 2 }))?.header).to.deep.include({ p: { c: 1, v: 2 } });
    expect(decodeEnvelope(Buffer.from('{"t":"room","id":"e1","o":"n1","h":1,"r":"lobby"}\n{}'))?.header).to.not.have.property('p');
    for (const p of [{ c: 1, v: 1e300 }, { c: 1, v: 1.5 }, { c: -1, v: 1 }, { c: '1', v: 1 }, { c: 1 }, null, 5, []]) {
      expect(decodeEnvelope(room(p)), JSON.stringify(p)).to.equal(null);
    }
  });

  it(`takes a links advertisement of at most ${MAX_ADVERT_IDS} node ids`, () => {
    const ids = (n: number) => Buffer.from(JSON.stringify(Array.from({ length: n }, (_, i) => `node${i}`)));
    expect(Adverts.decode(ids(MAX_ADVERT_IDS))).to.have.length(MAX_ADVERT_IDS);
    expect(Adverts.decode(ids(MAX_ADVERT_IDS + 1))).to.equal(null);
    expect(Adverts.decode(Buffer.from('["ok","not an id"]'))).to.equal(null);
    expect(Adverts.decode(Buffer.from(JSON.stringify(['x'.repeat(129)])))).to.equal(null);
    expect(Adverts.decode(Buffer.from('[1]'))).to.equal(null);
  });
});

describe('InvalidFrames: count, warn once per window, cut', () => {
  it(`asks to cut a peer at its ${MAX_INVALID_FRAMES}th invalid frame within ${INVALID_WINDOW_MS} ms, not before, and not when they are spread out`, () => {
    let t = NOW;
    const warnings: string[] = [];
    const log: Logger = { ...silent, warn: (msg: string) => void warnings.push(msg) };
    const invalid = new InvalidFrames(log, () => t);
    for (let i = 1; i < MAX_INVALID_FRAMES; i++) expect(invalid.report('p', 'test'), `frame ${i}`).to.equal(false);
    expect(warnings).to.have.length(1);
    expect(invalid.report('q', 'test')).to.equal(false); // another peer has its own window
    expect(invalid.report('p', 'test')).to.equal(true);
    // Spread out: a new window each time, never cut.
    for (let i = 0; i < 3 * MAX_INVALID_FRAMES; i++) {
      t += INVALID_WINDOW_MS / (MAX_INVALID_FRAMES / 2);
      expect(invalid.report('r', 'test'), `spread frame ${i}`).to.equal(false);
    }
  });
});

describe('mesh: invalid frames from a peer', () => {
  let network: MemoryNetwork;
  const meshes: Mesh[] = [];

  beforeEach(() => {
    network = new MemoryNetwork();
  });
  afterEach(async () => {
    await Promise.all(meshes.splice(0).map((m) => m.close(50)));
  });

  let port = 2000;
  function node(id: string): { mesh: Mesh; transport: MemoryTransport; writes: string[] } {
    const transport = network.transport(id, port++);
    const mesh = new Mesh({ nodeId: id, hopLimit: 2, seenTtlMs: 60_000, seenMax: 10_000, peerTimeoutMs: 4000, redialBaseMs: 5000, redialMaxMs: 5000, rejectedRetryMs: 1000 }, transport, silent);
    meshes.push(mesh);
    const writes: string[] = [];
    // A replicator stand-in: writes whose payload is "bad" fail validation.
    mesh.on('write', (room, payload, from) => (payload.toString() === 'bad' ? mesh.reportInvalid(from, 'write') : writes.push(`${room}:${payload}`)));
    return { mesh, transport, writes };
  }

  async function until(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 1000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** A line a–b–c, all linked and advertised. */
  async function line() {
    const [a, b, c] = ['a', 'b', 'c'].map(node);
    a.mesh.addTarget(b.transport.address, 'test');
    b.mesh.addTarget(c.transport.address, 'test');
    const up = (x: Mesh, id: string) => x.status().some((p) => p.id === id && p.state === 'up');
    await until(() => up(a.mesh, 'b') && up(b.mesh, 'a') && up(b.mesh, 'c') && up(c.mesh, 'b'), 'links up');
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    return { a, b, c, fromA: () => a.transport.linksTo('b')[0] };
  }

  it('counts a rejected write, neither acknowledges nor forwards it, and still takes a valid write with the same id', async () => {
    const { b, c, fromA } = await line();
    const send = (payload: string) => fromA().send(Buffer.from(JSON.stringify({ t: 'w', id: 'w1', o: 'a', h: 2, r: 'lobby', a: 1 }) + '\n' + payload));
    send('bad');
    await until(() => b.mesh.counters.invalid === 1, 'the invalid write counted');
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(b.mesh.counters.forwarded).to.equal(0);
    expect(c.mesh.counters.received).to.equal(0);
    expect(b.transport.linksTo('a')[0].sent.filter((f) => f.toString().startsWith('{"t":"ack"'))).to.have.length(0);
    send('good');
    await until(() => c.writes.length === 1, 'the valid write reaches C');
    expect(b.writes).to.deep.equal(['lobby:good']);
    expect(b.transport.linksTo('a')[0].sent.filter((f) => f.toString().startsWith('{"t":"ack"'))).to.have.length(1);
    expect(c.mesh.counters.invalid).to.equal(0);
  });

  it('counts malformed envelopes, advertisements and presence metadata', async () => {
    const { b, fromA } = await line();
    fromA().send(Buffer.from('not an envelope'));
    fromA().send(Buffer.from('{"t":"links"}\n' + JSON.stringify(Array.from({ length: 5000 }, (_, i) => `ghost${i}`))));
    fromA().send(Buffer.from('{"t":"room","id":"p1","o":"a","h":1,"r":"lobby","p":{"c":1,"v":1e300}}\n{}'));
    await until(() => b.mesh.counters.invalid === 3, 'three invalid frames counted');
    expect([...b.mesh.reachableNodes()].sort()).to.deep.equal(['a', 'c']);
  });

  it(`cuts a peer with ${CloseCode.InvalidFrames} after ${MAX_INVALID_FRAMES} invalid frames in the window`, async () => {
    const { b, fromA } = await line();
    const link = fromA();
    let closed: number | null = null;
    link.on('close', (code) => (closed = code));
    for (let i = 0; i < MAX_INVALID_FRAMES - 1; i++) link.send(Buffer.from(`garbage ${i}`));
    await until(() => b.mesh.counters.invalid === MAX_INVALID_FRAMES - 1, 'the frames counted');
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(closed).to.equal(null);
    link.send(Buffer.from('one more'));
    await until(() => closed !== null, 'the link closed');
    expect(closed).to.equal(CloseCode.InvalidFrames);
    expect(b.mesh.status().find((p) => p.id === 'a')?.state).to.equal('down');
    expect(b.mesh.status().find((p) => p.id === 'c')?.state).to.equal('up');
  });
});
