/**
 * Revoked tokens, as a table every instance can hold a copy of. Merging is a join (per key, the
 * largest `before` and `until`), so entries can arrive in any order, twice, or through several
 * peers and every copy ends up the same. Times are seconds since the epoch, like iat and exp.
 */
import { MAX_JTI_LENGTH, MAX_SUB_LENGTH, type Identity } from './identity.js';

export type RevocationEntry =
  /** One token, by its `jti`. */
  | { kind: 'jti'; jti: string; until: number }
  /** Every token of `sub` issued before `before` (and any of its tokens without iat). */
  | { kind: 'sub'; sub: string; before: number; until: number };

/** 9999-12-31: beyond it a time is a bug or an attack, not a revocation. */
export const MAX_REVOCATION_TIME = 253_402_300_799;

/**
 * Entry for one token. It can be dropped once the token would be refused anyway, i.e. after its
 * exp plus the clock tolerance the verifier grants.
 */
export function revokeToken(identity: Pick<Identity, 'jti' | 'exp'>, clockToleranceSec: number): RevocationEntry {
  if (identity.jti === null) throw new Error('a token without jti can only be revoked by subject');
  return { kind: 'jti', jti: identity.jti, until: Math.ceil(identity.exp) + clockToleranceSec };
}

/**
 * Entry for every token of `sub` issued up to now. `before` is the next whole second so a token
 * issued in this very second is included. It can be dropped when the last such token has expired:
 * the verifier refuses lifetimes over maxTokenLifetimeSec, so that is before + lifetime + tolerance.
 */
export function revokeSubject(sub: string, nowSec: number, maxTokenLifetimeSec: number, clockToleranceSec: number): RevocationEntry {
  const before = Math.floor(nowSec) + 1;
  return { kind: 'sub', sub, before, until: before + maxTokenLifetimeSec + clockToleranceSec };
}

export class RevocationTable {
  private readonly jtis = new Map<string, number>();
  private readonly subs = new Map<string, { before: number; until: number }>();

  constructor(entries: Iterable<RevocationEntry> = []) {
    for (const e of entries) this.add(e);
  }

  get size(): number {
    return this.jtis.size + this.subs.size;
  }

  /** Merges an entry in; true when the table changed (so a caller gossips only news). */
  add(entry: RevocationEntry): boolean {
    if (entry.kind === 'jti') {
      const until = this.jtis.get(entry.jti);
      if (until !== undefined && until >= entry.until) return false;
      this.jtis.set(entry.jti, entry.until);
      return true;
    }
    const old = this.subs.get(entry.sub);
    if (old !== undefined && old.before >= entry.before && old.until >= entry.until) return false;
    this.subs.set(entry.sub, {
      before: Math.max(old?.before ?? entry.before, entry.before),
      until: Math.max(old?.until ?? entry.until, entry.until),
    });
    return true;
  }

  isRevoked(identity: Pick<Identity, 'sub' | 'jti' | 'iat'>): boolean {
    if (identity.jti !== null && this.jtis.has(identity.jti)) return true;
    const s = this.subs.get(identity.sub);
    // Without iat a token cannot show it was issued after the revocation.
    return s !== undefined && (identity.iat === null || identity.iat < s.before);
  }

  /** Drops entries whose `until` is before nowSec; returns how many. */
  expire(nowSec: number): number {
    let dropped = 0;
    for (const [jti, until] of this.jtis) {
      if (until < nowSec) {
        this.jtis.delete(jti);
        dropped++;
      }
    }
    for (const [sub, e] of this.subs) {
      if (e.until < nowSec) {
        this.subs.delete(sub);
        dropped++;
      }
    }
    return dropped;
  }

  /** All entries in a fixed order (jti entries, then sub entries, each by key), whatever the insertion order. */
  entries(): RevocationEntry[] {
    const byKey = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return [
      ...byKey(this.jtis).map(([jti, until]): RevocationEntry => ({ kind: 'jti', jti, until })),
      ...byKey(this.subs).map(([sub, e]): RevocationEntry => ({ kind: 'sub', sub, before: e.before, until: e.until })),
    ];
  }

  /** Canonical JSON: equal tables serialize to equal strings (usable as a digest input). */
  serialize(): string {
    return JSON.stringify(this.entries());
  }
}

export interface EntryLimits {
  /** With maxHorizonSec: refuse entries that would live longer than that from now. */
  nowSec?: number;
  maxHorizonSec?: number;
}

export type ParsedEntry = { ok: true; entry: RevocationEntry } | { ok: false; error: string };

/**
 * Checks an entry from an untrusted peer and copies only the known fields. Never throws; the
 * error says what was wrong without echoing the value.
 */
export function parseRevocationEntry(value: unknown, limits: EntryLimits = {}): ParsedEntry {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('entry must be an object');
  const v = value as Record<string, unknown>;
  if (!isTime(v.until)) return fail('until must be a whole number of seconds');
  if (limits.nowSec !== undefined && limits.maxHorizonSec !== undefined && v.until > limits.nowSec + limits.maxHorizonSec) {
    return fail('until too far in the future');
  }
  if (v.kind === 'jti') {
    if (!isBoundedString(v.jti, MAX_JTI_LENGTH)) return fail(`jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`);
    return { ok: true, entry: { kind: 'jti', jti: v.jti, until: v.until } };
  }
  if (v.kind === 'sub') {
    if (!isBoundedString(v.sub, MAX_SUB_LENGTH)) return fail(`sub must be a string of 1 to ${MAX_SUB_LENGTH} characters`);
    if (!isTime(v.before)) return fail('before must be a whole number of seconds');
    if (v.before > v.until) return fail('before must not be after until');
    return { ok: true, entry: { kind: 'sub', sub: v.sub, before: v.before, until: v.until } };
  }
  return fail('kind must be jti or sub');
}

function isTime(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= MAX_REVOCATION_TIME;
}

function isBoundedString(s: unknown, max: number): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= max;
}

function fail(error: string): ParsedEntry {
  return { ok: false, error };
}
