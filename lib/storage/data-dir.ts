/**
 * The DATA_DIR of one instance: checked writable at start-up, locked against a second
 * process, and the keeper of the node id (stable across restarts).
 *
 * The lock is a file holding the owner's pid and process start time (from /proc): a lock
 * left by a killed process (kill -9) is taken over, a lock held by a live process is not,
 * and a pid reused by another process does not count as the owner.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config.js';

const LOCK_FILE = 'LOCK';
const NODE_ID_FILE = 'node-id';
/** DATA_DIRs locked by this process (several nodes may live in one process, as in tests). */
const heldHere = new Set<string>();

/** Creates the directory if needed; a ConfigError naming DATA_DIR if it cannot be written. */
export function checkDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK | constants.R_OK);
    const probe = join(dir, `.probe-${process.pid}`);
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (err) {
    throw new ConfigError('DATA_DIR', `${dir} cannot be written: ${(err as Error).message}`);
  }
}

/** The node id kept in DATA_DIR, made (and written) the first time. */
export function keptNodeId(dir: string): { id: string } {
  checkDataDir(dir);
  const file = join(dir, NODE_ID_FILE);
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (id !== '') return { id };
  } catch {
    // none yet
  }
  const id = randomBytes(6).toString('hex');
  writeFileSync(file, id + '\n');
  return { id };
}

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function alive(pid: number, start: string): boolean {
  const now = startTime(pid);
  if (now !== null) return now === start;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock of a DATA_DIR; throws (naming DATA_DIR and the owner) if a live process holds it. */
export function lockDataDir(dir: string): () => void {
  const file = join(dir, LOCK_FILE);
  if (heldHere.has(file)) throw new ConfigError('DATA_DIR', `${dir} is in use by another node in this process (lock ${file})`);
  try {
    const [pid, start] = readFileSync(file, 'utf8').trim().split(' ');
    if (Number(pid) !== process.pid && alive(Number(pid), start)) {
      throw new ConfigError('DATA_DIR', `${dir} is in use by process ${pid} (lock ${file}): two instances cannot share a DATA_DIR`);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
  }
  writeFileSync(file, `${process.pid} ${startTime(process.pid) ?? '?'}\n`);
  heldHere.add(file);
  return () => {
    if (!heldHere.delete(file)) return;
    try {
      unlinkSync(file);
    } catch {
      // gone already
    }
  };
}
