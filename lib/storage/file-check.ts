/**
 * A check of an LMDB data file before this process opens it: a file cut short (a copy that
 * stopped, a damaged disk) is mapped, and the first read past its end kills the process
 * with SIGBUS, without a word. So a child process reads every record first; if it dies or
 * fails, start-up stops with the reason and the file's name.
 *
 * (Comparing the file's size with the last page its meta page names is not enough: LMDB
 * counts pages it allocated and freed within a transaction without ever writing them.)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);

/** Null if every record of the file reads, else what went wrong. */
export function lmdbFileProblem(file: string): string | null {
  const r = spawnSync(process.execPath, [SELF, file], { encoding: 'utf8', timeout: 300_000 });
  if (r.error) return `it could not be checked (${r.error.message})`;
  if (r.signal) return `reading it kills the process (${r.signal}): it is cut short or damaged`;
  if (r.status !== 0) return (r.stderr || r.stdout).trim().split('\n')[0] || `its check exited with ${r.status}`;
  return null;
}

/** Run as a script: reads every record of the file given, exits 0 if all read. */
function scan(file: string): void {
  import('lmdb').then(
    ({ open }) => {
      try {
        const db = open<Buffer>({ path: file, noSubdir: true, readOnly: true, encoding: 'binary' });
        let bytes = 0;
        for (const { value } of db.getRange()) bytes += value.length;
        process.stdout.write(`${bytes}\n`);
        process.exit(0);
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exit(1);
      }
    },
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}

if (process.argv[1] === SELF && process.argv[2]) scan(process.argv[2]);
