/**
 * The disk's catch-up, piece by piece: the digest of a room's records on disk is kept as
 * records come and go (new keys in, overwrites not twice, trimmed and removed ones out) and
 * equals what a reload counts; per-hour buckets tell two disks apart where they differ; a
 * write memory's window does not take is kept on disk once (a delete turns the message into
 * its placeholder); the sync codec knows the two new frame kinds and their bounds; and the
 * frames of a big catch-up go out paced, in order.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConversationStore, type StoreWrite } from '../../lib/core/conversation-store.js';
import { hexDigest, idHash } from '../../lib/core/conversation.js';
import { timestampId } from '../../lib/core/hybrid-clock.js';
import { DiskStore } from '../../lib/storage/disk-store.js';
import { DiskDigests } from '../../lib/storage/disk-digest.js';
import type { Key } from '../../lib/storage/disk-window.js';
import { BUCKET_MS } from '../../lib/storage/disk-history.js';
import { decodeSyncFrame, type SyncFrame } from '../../lib/replication/sync-codec.js';
import { PacedSends } from '../../lib/replication/paced-sends.js';
import { poll } from '../helpers/wait.js';

const HOUR = 3_600_000;
/** The start of an hour two hours ago: messages below fall in two buckets. */
const T = Math.floor((Date.now() - 2 * HOUR) / BUCKET_MS) * BUCKET_MS;
const id = (n: number) => timestampId({ wall: T + n * 60_000, counter: 0 }, 'n1');
const msg = (n: number, text = `m${n}`): StoreWrite => ({ type: 'message', id: id(n), room: 'r', user: 'u', text, ts: T + n * 60_000 });
const del = (n: number): StoreWrite => ({ type: 'deleted', room: 'r', id: id(n), ts: T + n * 60_000, at: timestampId({ wall: Date.now(), counter: n }, 'n1') });
const json = (w: StoreWrite) => Buffer.from(JSON.stringify(w));

/** The digest of a set of record keys, computed from scratch. */
function digestOfKeys(keys: string[]): string {
  let hi = 0;
  let lo = 0;
  for (const key of keys) {
    const [a, b] = idHash(key);
    hi = (hi ^ a) >>> 0;
    lo = (lo ^ b) >>> 0;
  }
  return hexDigest(hi, lo);
}

const newStore = () => new ConversationStore({ conversationTtlMs: 100 * HOUR, maxMessagesPerConversation: 5, maxConversations: 100, maxStoreBytes: 1e9 }, 'n1');

describe('disk catch-up: the digest of the records on disk', () => {
  const dirs: string[] = [];
  const disks: DiskStore[] = [];
  const openDisk = (dir = mkdtempSync(join(tmpdir(), 'chatmesh-digest-')), max = 10) => {
    if (!dirs.includes(dir)) dirs.push(dir);
    const disk = new DiskStore(dir, undefined, max);
    disks.push(disk);
    return disk;
  };
  afterEach(async () => {
    for (const disk of disks.splice(0)) await disk.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('counts a new message or delete key once, an overwrite not again, trimmed and removed records out; a reload counts the same', async () => {
    const disk = openDisk();
    const store = newStore();
    const created: StoreWrite = { type: 'created', room: 'r', id: id(0) };
    store.apply(created);
    disk.record(created, json(created), null);
    for (let n = 1; n <= 12; n++) disk.record(msg(n), json(msg(n)), null, true); // as the replicator: new to the store
    const keys = Array.from({ length: 12 }, (_, k) => 'm:' + id(k + 1));
    expect(disk.digests.digestOf('r'), 'the created record is not counted').to.equal(digestOfKeys(keys));
    // A delete: its key in, the message's record overwritten with its placeholder (not counted twice).
    disk.record(del(3), json(del(3)), msg(3, ''));
    disk.record(msg(5), json(msg(5)), null); // the same key again
    expect(disk.digests.digestOf('r')).to.equal(digestOfKeys([...keys, 't:' + id(3)]));
    await disk.durable();
    expect(disk.digests.digestOf('r'), 'the same once committed').to.equal(digestOfKeys([...keys, 't:' + id(3)]));
    // The disk's window is 10: m1, m2 go; m3 and its delete stay.
    disk.compact(store);
    await disk.durable();
    const kept = [...keys.slice(2), 't:' + id(3)];
    expect(disk.digests.digestOf('r')).to.equal(digestOfKeys(kept));
    await disk.close();
    const again = openDisk(dirs[0]);
    again.load(newStore());
    expect(again.digests.digestOf('r'), 'counted from the keys at load').to.equal(digestOfKeys(kept));
    // A room the store no longer holds leaves the disk, and its digest is empty.
    again.removeRooms(['r']);
    again.compact(newStore());
    expect(again.digests.digestOf('r')).to.equal(digestOfKeys([]));
  });

  it('knows what a pending commit writes or removes, counts other record kinds not at all, and turns stale when a commit fails', async () => {
    const onDisk = new Set<string>(['r\0m:a']);
    const digests = new DiskDigests((key: Key) => onDisk.has(key[0] + '\0' + key[1]));
    digests.loaded(['r', 'm:a']);
    let commit!: () => void;
    const first = new Promise<void>((resolve) => (commit = resolve));
    digests.put(['r', 'm:a'], first); // there already: not again
    digests.put(['r', 'm:b'], first);
    digests.put(['r', 'f:status'], first); // another kind: not counted
    digests.put(['', 'probe'], first);
    expect(digests.digestOf('r')).to.equal(digestOfKeys(['m:a', 'm:b']));
    expect(digests.present(['r', 'm:b']), 'pending, not yet readable').to.equal(true);
    digests.remove(['r', 'm:a'], first);
    digests.remove(['r', 'm:a'], first); // twice: once out
    expect(digests.digestOf('r')).to.equal(digestOfKeys(['m:b']));
    expect(digests.idle).to.equal(false);
    onDisk.delete('r\0m:a');
    onDisk.add('r\0m:b');
    commit();
    await first;
    await poll(() => digests.idle, { timeoutMs: 1000, what: 'the commit settled' });
    expect(digests.present(['r', 'm:b'])).to.equal(true);
    expect(digests.present(['r', 'm:a'])).to.equal(false);
    const failed = Promise.reject(new Error('disk full'));
    digests.put(['r', 'm:c'], failed);
    await failed.catch(() => {});
    await poll(() => digests.idle, { timeoutMs: 1000, what: 'the failed commit settled' });
    expect(digests.stale).to.equal(true);
  });

  it('buckets per hour of message time tell two disks apart where they differ; keepOlder makes them equal, once', async () => {
    const a = openDisk();
    const b = openDisk();
    // Two buckets: messages 10..30 in the first hour, 70..90 in the second.
    for (const n of [10, 20, 70, 80]) a.record(msg(n), json(msg(n)), null);
    for (const n of [10, 20, 70]) b.record(msg(n), json(msg(n)), null);
    b.record(del(20), json(del(20)), msg(20, ''));
    await Promise.all([a.durable(), b.durable()]);
    const bucketsA = new Map(a.history.buckets('r'));
    const bucketsB = new Map(b.history.buckets('r'));
    expect([...bucketsA.keys()]).to.deep.equal([T / BUCKET_MS, T / BUCKET_MS + 1]);
    expect(bucketsA.get(T / BUCKET_MS)).to.not.equal(bucketsB.get(T / BUCKET_MS));
    expect(bucketsA.get(T / BUCKET_MS + 1)).to.not.equal(bucketsB.get(T / BUCKET_MS + 1));
    const fromB = [...b.history.writesIn('r', () => true)];
    expect(fromB[0], 'deletes first').to.deep.include({ type: 'deleted', id: id(20) });
    expect(fromB.find((w) => w.type === 'message' && w.id === id(20))).to.deep.include({ text: '' });
    const fromA = [...a.history.writesIn('r', () => true)];
    const keptA = fromB.map((w) => a.history.keepOlder(w)).filter((p) => p !== null);
    const keptB = fromA.map((w) => b.history.keepOlder(w)).filter((p) => p !== null);
    expect(keptA.length, 'A: the delete (with the placeholder over its message)').to.equal(1);
    expect(keptB.length, 'B: message 80').to.equal(1);
    await Promise.all([a.durable(), b.durable()]);
    expect(a.digests.digestOf('r')).to.equal(b.digests.digestOf('r'));
    expect(a.history.buckets('r')).to.deep.equal(b.history.buckets('r'));
    expect(a.history.messageAt('r', id(20))).to.deep.include({ deleted: true });
    expect(a.history.messageAt('r', id(10))).to.deep.equal({ id: id(10), timestamp: T + 600_000, deleted: false });
    expect(a.history.historyBefore('r', null).map((m) => m.content)).to.deep.equal(['m10', 'm70', 'm80']);
    // Given again: nothing new.
    expect(fromB.map((w) => a.history.keepOlder(w)).filter((p) => p !== null)).to.have.length(0);
    // A message whose delete is on disk is kept as its placeholder.
    const c = openDisk();
    c.history.keepOlder(del(30));
    c.history.keepOlder(msg(30));
    await c.durable();
    expect(c.history.messageAt('r', id(30))).to.deep.include({ deleted: true });
    expect(c.history.historyBefore('r', null)).to.have.length(0);
  });
});

describe('disk catch-up: the sync frames', () => {
  const decode = (frame: unknown) => decodeSyncFrame(Buffer.from(JSON.stringify(frame)));

  it('decodes hsum and hgive, refuses them with fields of the wrong shape, and leaves kinds it does not know as unknown', () => {
    expect(decode({ k: 'hsum', c: 'r', from: 0, to: 5, b: [[1, '0123456789abcdef']] })).to.deep.equal({ ok: true, frame: { k: 'hsum', c: 'r', from: 0, to: 5, b: [[1, '0123456789abcdef']] } });
    expect(decode({ k: 'hgive', c: 'r', writes: [] })).to.deep.equal({ ok: true, frame: { k: 'hgive', c: 'r', writes: [] } });
    for (const bad of [{ k: 'hsum', c: 'r', from: 5, to: 1, b: [] }, { k: 'hsum', c: 'r', from: -1, to: 1, b: [] }, { k: 'hsum', c: 1, from: 0, to: 1, b: [] }, { k: 'hsum', c: 'r', from: 0, to: 1, b: 'x' }, { k: 'hgive', c: 'r', writes: {} }, { k: 'hgive', writes: [] }]) {
      expect(decode(bad), JSON.stringify(bad)).to.deep.equal({ ok: false, problem: 'invalid' });
    }
    expect(decode({ k: 'hsum2' })).to.deep.equal({ ok: false, problem: 'unknown' });
  });
});

describe('disk catch-up: paced sends', () => {
  it('sends each peer\'s frames in order, at most a tick\'s budget per tick (the first whatever its size), and drops the queue of a peer no longer linked', async () => {
    const sent: Array<{ peer: string; n: number; at: number }> = [];
    let linked = true;
    const paced = new PacedSends((peer, frame) => {
      if (peer === 'gone' && !linked) return false;
      sent.push({ peer, n: (frame as { writes: number[] }).writes[0], at: Date.now() });
      return true;
    }, { bytesPerTick: 250, tickMs: 30 });
    const frame = (n: number): SyncFrame => ({ k: 'hgive', c: 'r', writes: [n] });
    for (let n = 0; n < 10; n++) paced.enqueue('a', frame(n), 100);
    for (let n = 0; n < 5; n++) paced.enqueue('gone', frame(n), 1000);
    expect(sent, 'nothing in the same turn').to.have.length(0);
    await poll(() => sent.filter((s) => s.peer === 'gone').length >= 2, { timeoutMs: 2000, what: 'two frames to the peer going away' });
    linked = false;
    await poll(() => sent.filter((s) => s.peer === 'a').length === 10, { timeoutMs: 2000, what: 'all ten frames to a' });
    const toA = sent.filter((s) => s.peer === 'a');
    expect(toA.map((s) => s.n)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // 250 bytes a tick: three frames of 100 (the third goes while budget is left), then a pause.
    expect(toA[3].at - toA[0].at).to.be.at.least(20);
    await poll(() => paced.waiting === 0, { timeoutMs: 2000, what: 'the queue of the peer that went away dropped' });
    expect(sent.filter((s) => s.peer === 'gone').length).to.be.below(5);
    paced.close();
  });
});
