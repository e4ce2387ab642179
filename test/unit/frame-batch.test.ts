/**
 * Batches of peer frames (lib/links/frame-batch.ts): what goes out is what comes back, in
 * order; groups stay under the byte and frame bounds; a big frame goes alone; anything
 * malformed from a peer decodes to null (the link hands it up as it is, to be counted invalid).
 */
import { expect } from 'chai';
import { MAX_BATCH_BYTES, MAX_BATCH_FRAMES, batchFrames, decodeBatch, encodeBatch, isBatch } from '../../lib/links/frame-batch.js';

const frame = (s: string) => Buffer.from(s);

describe('peer frame batches', () => {
  it('decodes what it encodes, in order, byte for byte (newlines and any bytes inside frames included)', () => {
    const frames = [frame('{"t":"w","id":"a"}\n{"text":"x"}'), frame('{"t":"ack","id":"b"}'), Buffer.from([0x0a, 0x00, 0xff, 0x7b])];
    const batch = encodeBatch(frames);
    expect(isBatch(batch)).to.equal(true);
    expect(decodeBatch(batch)!.map((f) => f.toString('hex'))).to.deep.equal(frames.map((f) => f.toString('hex')));
  });

  it('sends one frame as it is, and groups many under the byte and frame bounds', () => {
    const one = [frame('{"t":"ack","id":"x"}')];
    expect(batchFrames(one)).to.deep.equal(one);
    expect(isBatch(one[0])).to.equal(false);
    const small = Array.from({ length: MAX_BATCH_FRAMES + 10 }, (_, i) => frame(`{"t":"ack","id":"${i}"}`));
    const groups = batchFrames(small);
    expect(groups.length).to.equal(2);
    expect(groups.flatMap((g) => decodeBatch(g)!).map(String)).to.deep.equal(small.map(String));
    const big = Buffer.alloc(MAX_BATCH_BYTES + 1, 0x61);
    const mixed = batchFrames([small[0], small[1], big, small[2]]);
    expect(mixed.length, 'two small, the big one alone, the last small one alone').to.equal(3);
    expect(mixed[1]).to.equal(big);
    for (const g of mixed) expect(g.length).to.be.at.most(MAX_BATCH_BYTES + 64);
  });

  it('refuses malformed batches: bad header, lengths that are not positive integers, too many, or that do not add up', () => {
    const body = '{"t":"ack"}';
    const cases = [
      '{"t":"batch","l":[11]}', // no newline
      '{"t":"batch","l":[11}\n' + body, // not JSON
      '{"t":"batch","l":[]}\n',
      '{"t":"batch","l":[0,11]}\n' + body,
      '{"t":"batch","l":[-1]}\n' + body,
      '{"t":"batch","l":[1.5]}\n' + body,
      '{"t":"batch","l":["11"]}\n' + body,
      '{"t":"batch","l":[10]}\n' + body, // a byte left over
      '{"t":"batch","l":[12]}\n' + body, // past the end
      '{"t":"batch","l":' + JSON.stringify(Array(MAX_BATCH_FRAMES + 1).fill(1)) + '}\n' + 'x'.repeat(MAX_BATCH_FRAMES + 1),
    ];
    for (const c of cases) expect(decodeBatch(Buffer.from(c)), c.slice(0, 40)).to.equal(null);
    expect(isBatch(Buffer.from('{"t":"w","id":"batch"}\n{}'))).to.equal(false);
  });
});
