/**
 * Catch-up frames stay well under the largest frame a peer takes: summaries and gives are
 * cut into pages of at most `maxBytes` of JSON (and SUMMARY_PAGE entries for summaries).
 */
import type { StoreWrite, SummaryEntry } from '../core/conversation-store.js';

/** Summary entries per frame. */
const SUMMARY_PAGE = 1000;

/** Pages of a summary: at least one (an empty summary is still sent: its `last` ends the peer's hold). */
export function summaryPages(entries: SummaryEntry[], maxBytes: number): SummaryEntry[][] {
  return pages(entries, maxBytes, SUMMARY_PAGE, 1);
}

/** Pages of a give: at least one (the final frame, even empty, ends the peer's hold on the room). */
export function givePages(writes: StoreWrite[], maxBytes: number): StoreWrite[][] {
  return pages(writes, maxBytes, Infinity, 0);
}

function pages<T>(items: T[], maxBytes: number, maxItems: number, overhead: number): T[][] {
  const out: T[][] = [];
  let page: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = Buffer.byteLength(JSON.stringify(item)) + overhead;
    if (page.length > 0 && (page.length >= maxItems || bytes + size > maxBytes)) {
      out.push(page);
      page = [];
      bytes = 0;
    }
    page.push(item);
    bytes += size;
  }
  out.push(page);
  return out;
}
