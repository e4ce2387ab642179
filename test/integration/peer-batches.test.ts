/**
 * Peer frames batched per task on real processes (lib/links/frame-batch.ts): a peer that
 * announced `batch` gets the frames one piece of work makes (the field writes of one PATCH)
 * in one frame; a peer of the previous protocol gets them one per frame, as before; an
 * instance takes a peer's batch as its frames in order, and counts a malformed one invalid.
 */
import { expect } from 'chai';
import { call, ok } from '../helpers/desk-api.js';
import { FakePeer } from '../helpers/fake-peer.js';
import { Instance, stopAll } from '../helpers/instance.js';
import { fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';
import { timestampId } from '../../lib/core/hybrid-clock.js';
import { decodeBatch, encodeBatch, isBatch } from '../../lib/links/frame-batch.js';

afterEach(async () => {
  FakePeer.closeAll();
  await stopAll();
});

/** The envelope headers and payloads in what a fake peer received (handshake frames left out), batches opened. */
function envelopes(peer: FakePeer, raw: Buffer[]): Array<{ header: Record<string, unknown>; payload: string }> {
  return raw.flatMap((data) => (isBatch(data) ? decodeBatch(data)! : [data])).map((frame) => {
    const text = frame.toString();
    const nl = text.indexOf('\n');
    return { header: JSON.parse(nl === -1 ? text : text.slice(0, nl)), payload: nl === -1 ? '' : text.slice(nl + 1) };
  });
}

/** Records the raw frames a fake peer receives from now on. */
function record(peer: FakePeer): Buffer[] {
  const raw: Buffer[] = [];
  peer.ws.on('message', (data: Buffer) => raw.push(Buffer.from(data)));
  return raw;
}

const meshCounters = async (i: Instance) => (await i.health()).body.mesh as unknown as Record<string, number>;

describe('peer frames batched per task', function () {
  this.timeout(30_000);

  it('sends a peer that announced `batch` the writes of one PATCH in one frame, and one of the previous protocol one per frame', async () => {
    const [a] = await fullMesh(1);
    const id = (await ok(call(a, 'POST', '/api/conversations'), 201)).id as string;
    const batching = await FakePeer.link(a, { desk: true, batch: true });
    const previous = await FakePeer.link(a, { desk: true });
    const [batchRaw, previousRaw] = [record(batching), record(previous)];
    await ok(call(a, 'PATCH', `/api/conversations/${id}`, { status: 'pending', assignee: 'agent-7', metadata: { plan: 'pro' } }));
    const fields = (peer: FakePeer, raw: Buffer[]) => envelopes(peer, raw).filter((e) => e.header.t === 'w').map((e) => JSON.parse(e.payload).f).sort();
    for (const [peer, raw] of [[batching, batchRaw], [previous, previousRaw]] as const) {
      await poll(() => fields(peer, raw).length === 3, { what: 'the three field writes at the fake peer' });
      expect(fields(peer, raw)).to.deep.equal(['assignee', 'metadata', 'status']);
    }
    const writesIn = (raw: Buffer[]) => raw.filter((d) => isBatch(d) && decodeBatch(d)!.some((f) => f.toString().startsWith('{"t":"w"')));
    expect(writesIn(batchRaw), 'one batch holds the PATCH\'s writes').to.have.length(1);
    expect(decodeBatch(writesIn(batchRaw)[0])!.length).to.be.at.least(3);
    expect(previousRaw.filter(isBatch), 'never a batch to a node that did not announce it').to.deep.equal([]);
  });

  it('takes the frames of a peer\'s batch in order, and counts a malformed batch invalid without applying any of it', async () => {
    const [a] = await fullMesh(1);
    const conv = (await ok(call(a, 'POST', '/api/conversations'), 201)).id as string;
    const peer = await FakePeer.link(a, { desk: true, batch: true });
    const now = Date.now();
    const envelope = (n: number, text: string) => {
      const id = timestampId({ wall: now + n, counter: 0 }, peer.id);
      const write = { type: 'message', id, room: conv, user: 'remote', text, ts: now + n };
      return Buffer.from(JSON.stringify({ t: 'w', id, o: peer.id, h: 1, r: conv }) + '\n' + JSON.stringify(write));
    };
    const before = (await meshCounters(a)).invalid ?? 0;
    const bad = encodeBatch([envelope(1, 'never stored'), envelope(2, 'nor this')]);
    peer.raw(bad.toString() + 'x'); // a byte more than its lengths say (text frames: a binary one is ignored)
    peer.raw(encodeBatch([envelope(3, 'first'), envelope(4, 'second'), envelope(5, 'third')]).toString());
    const texts = async () => ((await ok(call(a, 'GET', `/api/conversations/${conv}`))).messages as Array<{ content: string }>).map((m) => m.content);
    await poll(async () => (await texts()).length >= 3, { what: 'the batch\'s three messages stored' });
    expect(await texts()).to.deep.equal(['first', 'second', 'third']);
    await poll(async () => ((await meshCounters(a)).invalid ?? 0) > before, { what: 'the malformed batch counted invalid' });
    expect(peer.closeCode, 'one bad frame does not cut the link').to.equal(null);
  });
});
