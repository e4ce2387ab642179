/**
 * Revocations across the mesh, with no shared store: every instance holds a copy of the
 * RevocationTable (lib/auth/revocation.ts), a join-semilattice, so copies can be merged in any
 * order, twice, through any peers. A new entry is sent to every linked peer on the sync channel
 * (`{"k":"revoke"}`), and each peer passes it on only when it changed its table, so it floods
 * the mesh and stops; at every link-up the two ends send each other their whole table, which is
 * the catch-up after a partition or a restart. Entries are kept until the longest token they can
 * match has expired (their `until`). An older node drops the frame kind as unknown (no blame, no
 * cut link) and simply does not enforce revocations.
 */
import { EventEmitter } from 'node:events';
import { parseRevocationEntry, type RevocationEntry, type RevocationTable } from '../auth/index.js';
import type { Logger } from '../log.js';
import type { Mesh } from '../mesh/mesh.js';
import type { SyncChannel } from './sync-channel.js';

/** Entries per frame: an entry is at most ~300 bytes, far under the peer frame limit. */
const PAGE = 500;
/** How often expired entries are dropped. */
const EXPIRE_EVERY_MS = 60_000;

interface RevocationEvents {
  /** The table changed (from here or a peer): connections matching it must go. */
  revoked: [entry: RevocationEntry];
}

export interface RevocationOptions {
  /** An entry from a peer may not live longer than this from now (seconds): the longest token lifetime plus tolerance. */
  maxHorizonSec: number;
}

export class Revocations extends EventEmitter<RevocationEvents> {
  private expirer: NodeJS.Timeout | null = null;
  readonly counters = { fromPeers: 0, local: 0 };

  constructor(
    readonly table: RevocationTable,
    private readonly mesh: Mesh,
    private readonly sync: SyncChannel,
    private readonly options: RevocationOptions,
    private readonly log: Logger,
  ) {
    super();
    mesh.on('peer-up', this.onPeerUp);
    sync.handle({ revoke: (peerId, entries) => this.onEntries(peerId, entries) });
  }

  start(): void {
    this.expirer = setInterval(() => {
      const dropped = this.table.expire(Math.floor(Date.now() / 1000));
      if (dropped > 0) this.log.debug('expired revocations dropped', { count: dropped });
    }, EXPIRE_EVERY_MS);
    this.expirer.unref();
  }

  close(): void {
    if (this.expirer) clearInterval(this.expirer);
    this.expirer = null;
    this.mesh.off('peer-up', this.onPeerUp);
  }

  /** A revocation made here (POST /api/auth/revocations): applied, announced, sent to every peer. */
  revoke(entry: RevocationEntry): boolean {
    if (!this.table.add(entry)) return false;
    this.counters.local++;
    this.log.info('revocation', { kind: entry.kind, until: entry.until });
    this.emit('revoked', entry);
    this.flood([entry], null);
    return true;
  }

  private flood(entries: RevocationEntry[], except: string | null): void {
    for (const peer of this.mesh.linkedPeers()) if (peer !== except) this.sendAll(peer, entries);
  }

  private sendAll(peerId: string, entries: RevocationEntry[]): void {
    for (let i = 0; i < entries.length; i += PAGE) this.sync.send(peerId, { k: 'revoke', entries: entries.slice(i, i + PAGE) });
  }

  private readonly onPeerUp = (peerId: string): void => {
    const entries = this.table.entries();
    if (entries.length > 0) this.sendAll(peerId, entries);
  };

  private onEntries(peerId: string, values: unknown[]): void {
    const nowSec = Math.floor(Date.now() / 1000);
    const news: RevocationEntry[] = [];
    let invalid = 0;
    for (const value of values) {
      const parsed = parseRevocationEntry(value, { nowSec, maxHorizonSec: this.options.maxHorizonSec });
      if (!parsed.ok) {
        invalid++;
        continue;
      }
      if (parsed.entry.until < nowSec || !this.table.add(parsed.entry)) continue;
      this.counters.fromPeers++;
      news.push(parsed.entry);
      this.emit('revoked', parsed.entry);
    }
    if (invalid > 0) this.mesh.reportInvalid(peerId, `revocations: ${invalid} of ${values.length} entries`);
    if (news.length > 0) this.flood(news, peerId);
  }
}
