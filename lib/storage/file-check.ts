/**
 * A check of an LMDB data file before it is opened: a file cut short (a copy that stopped,
 * a damaged disk) would be mapped and read past its end, and the process would die of
 * SIGBUS without a word. LMDB's two meta pages say which page was the last in use
 * (mm_last_pg, in the meta of the newest transaction): the file must reach it.
 *
 * Layout (lmdb-js's LMDB, page header of 24 bytes): each of pages 0 and 1 holds, from byte
 * 24, the magic 0xBEEFC0DE, the version, the map address and size, the two databases (48
 * bytes each; the page size is the first field of the first), mm_last_pg and mm_txnid.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const MAGIC = 0xbeefc0de;
const META = 24;
const PSIZE_AT = META + 24;
const LAST_PG_AT = META + 24 + 2 * 48;
const TXNID_AT = LAST_PG_AT + 8;

/** Null if the file looks whole, else what is wrong with it. */
export function lmdbFileProblem(file: string): string | null {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(TXNID_AT + 8);
    if (readSync(fd, head, 0, head.length, 0) < head.length) return `cut short (${size} bytes)`;
    if (head.readUInt32LE(META) !== MAGIC) return 'not an LMDB file (no magic number in its first page)';
    const psize = head.readUInt32LE(PSIZE_AT);
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) return `not an LMDB file (page size ${psize})`;
    const second = Buffer.alloc(TXNID_AT + 8);
    if (readSync(fd, second, 0, second.length, psize) < second.length) return `cut short (${size} bytes)`;
    const metas = [head, second].filter((m) => m.readUInt32LE(META) === MAGIC);
    const newest = metas.reduce((a, b) => (b.readBigUInt64LE(TXNID_AT) > a.readBigUInt64LE(TXNID_AT) ? b : a));
    const need = (Number(newest.readBigUInt64LE(LAST_PG_AT)) + 1) * psize;
    return size < need ? `cut short (${size} bytes of the ${need} its last transaction uses)` : null;
  } finally {
    closeSync(fd);
  }
}
