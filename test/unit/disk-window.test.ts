/**
 * The disk's window (storage/disk-window.ts): records are keyed by id, but the window and the
 * history read back follow (timestamp, id), so backdated messages take their place.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { historyBefore, trimWindow, type Key } from '../../lib/storage/disk-window.js';

describe('disk window (DATA_DIR)', () => {
  let dir = '';
  let db: RootDatabase<Buffer, Key>;
  const put = (key: Key, value: object) => db.put(key, Buffer.from(JSON.stringify(value)));
  const remove = (key: Key) => void db.remove(key);
  const message = (id: string, ts: number, text = `t${id}`) => put(['r', 'm:' + id], { type: 'message', id, room: 'r', user: 'u', text, ts });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'chatmesh-window-'));
    db = open<Buffer, Key>({ path: join(dir, 'w.mdb'), noSubdir: true, encoding: 'binary' });
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads back in (timestamp, id) order, deleted ones left out, only what sorts before the given message', async () => {
    await Promise.all([message('a', 30), message('b', 10), message('c', 20), message('d', 20, ''), put(['r', 't:d'], { type: 'deleted', room: 'r', id: 'd', ts: 20, at: 'x' }), message('e', 40), put(['other', 'm:z'], { type: 'message', id: 'z', room: 'other', user: 'u', text: 'z', ts: 1 })]);
    expect(historyBefore(db, 'r', null).map((m) => m.id)).to.deep.equal(['b', 'c', 'a', 'e']);
    expect(historyBefore(db, 'r', { timestamp: 30, id: 'a' }).map((m) => m.id)).to.deep.equal(['b', 'c']);
    expect(historyBefore(db, 'r', null)[0]).to.deep.equal({ id: 'b', sender: 'u', content: 'tb', timestamp: 10 });
  });

  it('keeps the newest `max` by (timestamp, id), with their deletes, and drops deletes older than the window', async () => {
    await Promise.all([message('a', 30), message('b', 10), message('c', 20), message('e', 40), put(['r', 't:b'], { type: 'deleted', room: 'r', id: 'b', ts: 10, at: 'x' }), put(['r', 't:q'], { type: 'deleted', room: 'r', id: 'q', ts: 5, at: 'x' }), put(['r', 't:e'], { type: 'deleted', room: 'r', id: 'e', ts: 40, at: 'x' })]);
    trimWindow(db, 'r', 2, remove);
    await db.flushed;
    expect([...db.getKeys({ start: ['r'], end: ['r', '\uffff'] })].map((k) => k[1])).to.deep.equal(['m:a', 'm:e', 't:e']);
    trimWindow(db, 'r', 2, remove); // within the window: nothing to do
    await db.flushed;
    expect(historyBefore(db, 'r', null).map((m) => m.id)).to.deep.equal(['a']);
  });
});
