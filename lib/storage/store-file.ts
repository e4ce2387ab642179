/**
 * Opening DATA_DIR's store file (LMDB). Once a store was opened in a directory (a marker file
 * says so), a missing or cut store file is damage, not a first start: refused with the
 * file's name, never a silent empty start.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { lmdbFileProblem } from './file-check.js';
import type { Key } from './disk-window.js';

export const STORE_FILE = 'store.mdb';
/** Written once the store was first opened here. */
const OPENED_MARKER = 'store.opened';
/** LMDB refuses to open a file that is not a whole environment; a file this small never is. */
const MIN_FILE_BYTES = 8192;

/** Opens (or creates) the store in `dir`; `firstOpen()` marks the directory as used, once the caller is ready. */
export function openStoreFile(dir: string): { db: RootDatabase<Buffer, Key>; firstOpen: () => void } {
  const file = join(dir, STORE_FILE);
  const marker = join(dir, OPENED_MARKER);
  const existed = existsSync(marker);
  guardLmdbCommitFailures();
  const refuse = (why: string) => new Error(`the store file ${file} ${why}; restore it or remove DATA_DIR to start afresh`);
  if (existed && !existsSync(file)) throw refuse('is missing from a DATA_DIR used before: refusing to start empty');
  if (existed && statSync(file).size < MIN_FILE_BYTES) throw refuse(`is damaged (${statSync(file).size} bytes): refusing to start empty`);
  const problem = existsSync(file) && statSync(file).size > 0 ? lmdbFileProblem(file) : null;
  if (problem) throw refuse(`is damaged: ${problem}; refusing to start`);
  let db: RootDatabase<Buffer, Key>;
  try {
    db = open<Buffer, Key>({ path: file, noSubdir: true, overlappingSync: false, compression: false, encoding: 'binary' });
  } catch (err) {
    throw refuse(`cannot be opened (${(err as Error).message}): refusing to start empty`);
  }
  return { db, firstOpen: () => existed || writeFileSync(marker, 'chatmesh store: store.mdb holds the record of this instance\n') };
}

/**
 * A failed commit (disk full) is reported to each write's promise, which DiskStore handles,
 * and also rejects a promise lmdb keeps to itself, which nothing can handle: that one is
 * ignored here. Every other unhandled rejection is thrown on, as Node would (a crash).
 */
let guarded = false;
function guardLmdbCommitFailures(): void {
  if (guarded) return;
  guarded = true;
  process.on('unhandledRejection', (reason) => {
    const err = reason as (Error & { commitError?: Promise<unknown> }) | null;
    if (err instanceof Error && err.commitError instanceof Promise && err.message.startsWith('Commit failed')) {
      err.commitError.catch(() => {});
      return;
    }
    throw reason;
  });
}

