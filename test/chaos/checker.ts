/**
 * The campaign's checks: pure functions over the recorded history (history.ts) and the
 * final state of every instance. Nothing here talks to a process or a socket.
 *
 * 1. crashes      — no instance exited unless the nemesis killed it.
 * 2. lost         — an acknowledged write (a REST 201 message or conversation, or a message
 *                   echoed to its WebSocket sender) is "held" by the instance that answered and
 *                   by every instance on which a client received it. If one of those processes
 *                   ran to the end, the write must be in the final state (unless a delete of
 *                   it was attempted: a delete that timed out may still have happened). With
 *                   DATA_DIR every acknowledged write must be there, whatever was killed.
 * 3. diverged     — every instance holds the same history of every conversation.
 * 4. resurrected  — no message whose delete was answered 204 is in any final history, by
 *                   the same rule as 2: the delete is held by the instance that answered and by
 *                   every instance a client got its `deleted` frame from; if every one of those
 *                   processes was killed, the delete may be gone with them (a 204 covers only
 *                   the instances linked at that moment, and nothing is on disk). With DATA_DIR
 *                   no deleted message may come back at all.
 * 5. duplicates   — no message id twice on one client connection (message frames and the
 *                   `history` of `joined` replies on that connection together).
 * 6. brokenResumes — per client and room, with R = every message id it received over all its
 *                   connections, C = the newest of them and E = the excuse point (below): every
 *                   message of the final history sorting after E and at or before C is in R.
 *                   E is the latest of the "you may have missed older messages" points the
 *                   server gave the client: a first join (no `since`) and a resume answered
 *                   `gap:true` excuse what sorts before the first message of their `history`.
 *                   A `gap:true` (or first join) with an empty history excuses nothing: the
 *                   instance had no message of the room, so everything it gets later reaches
 *                   the client live (README: "the messages it missed then arrive live as the
 *                   catch-up lands"). A resume answered `gap:false` excuses nothing.
 */
import { compareKeys, type FaultKind, type FinalState, type HistoryEvent, type Incarnation, type Key } from './history.js';

export interface CheckOptions {
  /** Instances ran with DATA_DIR: every acknowledged write must survive, even kills of every instance. */
  dataDir: boolean;
}

export interface Crash extends Incarnation {
  t: number;
  code: number | null;
  signal: string | null;
}

export interface Lost {
  what: 'message' | 'conversation';
  conv: string;
  id: string;
  via: 'rest' | 'ws';
  ackedAt: number;
  /** The processes that held it (slot/incarnation) and whether each one ran to the end. */
  holders: Array<Incarnation & { survived: boolean }>;
}

export interface Divergence {
  conv: string;
  detail: string;
}

export interface Resurrected {
  conv: string;
  id: string;
  slots: number[];
  deletedAt: number;
  holders: Array<Incarnation & { survived: boolean }>;
}

export interface Duplicate {
  client: number;
  conn: number;
  id: string;
  count: number;
}

export interface BrokenResume {
  client: number;
  room: string;
  missing: Key;
  /** The newest message the client received (C) and the excuse point (E, null: none). */
  newest: Key;
  excuse: Key | null;
  /**
   * The resume that should have covered it: the last `gap:false` resume of this client in
   * this room whose `since` sorts at or after the missing message — its last chance, as it
   * would have come live had it reached that instance later (null: no resume skipped it, so
   * a live delivery or a replay after `since` missed it).
   */
  resume: { conn: number; t: number; since: Key; slot: number; incarnation: number } | null;
  /** When and where the message was first seen (acknowledged or received by any client). */
  firstSeen: { t: number; slot: number } | null;
  /**
   * True when the history shows the resume's instance held the message before that resume
   * (a client received it there, or it was posted there): proof the reply left it out.
   */
  heldAtResume: boolean;
}

export interface Figures {
  faults: Record<FaultKind, number>;
  acknowledged: { restMessages: number; wsMessages: number; conversations: number; deletes: number; total: number };
  rejected: number;
  unknown: number;
  connections: number;
  resumes: number;
  gaps: number;
  messagesDelivered: number;
  restarts: number;
}

export interface CheckResult {
  ok: boolean;
  figures: Figures;
  crashes: Crash[];
  lost: Lost[];
  diverged: Divergence[];
  resurrected: Resurrected[];
  duplicates: Duplicate[];
  brokenResumes: BrokenResume[];
}

const incKey = (i: Incarnation) => `${i.slot}:${i.incarnation}`;

/** 1. Exits the nemesis did not cause. */
export function checkCrashes(events: readonly HistoryEvent[]): Crash[] {
  const out: Crash[] = [];
  for (const e of events) {
    if (e.type === 'exit' && !e.byNemesis) out.push({ slot: e.slot, incarnation: e.incarnation, t: e.t, code: e.code, signal: e.signal });
  }
  return out;
}

/** The final history of a conversation merged over every instance (by id, in order). */
function mergedFinal(final: FinalState, conv: string): Key[] {
  const byId = new Map<string, Key>();
  for (const slot of final.histories) for (const k of slot[conv] ?? []) byId.set(k.id, k);
  return [...byId.values()].sort(compareKeys);
}

function allConversations(final: FinalState): string[] {
  const convs = new Set<string>();
  for (const slot of final.histories) for (const c of Object.keys(slot)) convs.add(c);
  return [...convs].sort();
}

/** 2. Acknowledged writes missing from the final state while some holder of them ran to the end. */
export function checkLost(events: readonly HistoryEvent[], final: FinalState, options: CheckOptions): Lost[] {
  const dead = new Set<string>();
  for (const e of events) if (e.type === 'exit') dead.add(incKey(e));

  interface Acked {
    what: 'message' | 'conversation';
    conv: string;
    id: string;
    via: 'rest' | 'ws';
    ackedAt: number;
    holders: Map<string, Incarnation>;
  }
  const acked = new Map<string, Acked>();
  const ack = (a: Omit<Acked, 'holders'>, holder: Incarnation) => {
    const key = `${a.what}:${a.id}`;
    let entry = acked.get(key);
    if (!entry) acked.set(key, (entry = { ...a, holders: new Map() }));
    entry.holders.set(incKey(holder), { slot: holder.slot, incarnation: holder.incarnation });
  };
  const deleteTried = new Set<string>();
  for (const e of events) {
    if (e.type === 'rest-posted') ack({ what: 'message', conv: e.conv, id: e.key.id, via: 'rest', ackedAt: e.t }, e);
    else if (e.type === 'ws-message' && e.echo) ack({ what: 'message', conv: e.room, id: e.key.id, via: 'ws', ackedAt: e.t }, e);
    else if (e.type === 'rest-created') ack({ what: 'conversation', conv: e.conv, id: e.conv, via: 'rest', ackedAt: e.t }, e);
    else if (e.type === 'rest-deleted') deleteTried.add(e.id);
    else if (e.type === 'rest-unknown' && e.op === 'delete' && e.id) deleteTried.add(e.id);
  }
  // Every instance a client received an acknowledged message from holds it too.
  const holdIfAcked = (id: string, holder: Incarnation) => acked.get(`message:${id}`)?.holders.set(incKey(holder), { slot: holder.slot, incarnation: holder.incarnation });
  for (const e of events) {
    if (e.type === 'ws-message') holdIfAcked(e.key.id, e);
    else if (e.type === 'ws-joined') for (const k of e.history) holdIfAcked(k.id, e);
  }
  // An instance that stored an acknowledged message holds its conversation.
  for (const a of acked.values()) {
    if (a.what !== 'message') continue;
    const conv = acked.get(`conversation:${a.conv}`);
    if (conv) for (const [k, h] of a.holders) conv.holders.set(k, h);
  }

  const present = new Map<string, Set<string>>();
  const idsOf = (conv: string) => {
    let ids = present.get(conv);
    if (!ids) present.set(conv, (ids = new Set(mergedFinal(final, conv).map((k) => k.id))));
    return ids;
  };
  const out: Lost[] = [];
  for (const a of acked.values()) {
    const holders = [...a.holders.values()].map((h) => ({ ...h, survived: !dead.has(incKey(h)) }));
    if (!options.dataDir && !holders.some((h) => h.survived)) continue;
    if (a.what === 'message') {
      if (deleteTried.has(a.id) || idsOf(a.conv).has(a.id)) continue;
    } else if (final.histories.some((slot) => slot[a.conv] !== undefined && slot[a.conv] !== null)) {
      continue;
    }
    out.push({ what: a.what, conv: a.conv, id: a.id, via: a.via, ackedAt: a.ackedAt, holders });
  }
  return out.sort((x, y) => x.ackedAt - y.ackedAt);
}

/** 3. Conversations whose history differs between instances. */
export function checkDiverged(final: FinalState): Divergence[] {
  const out: Divergence[] = [];
  for (const conv of allConversations(final)) {
    const lists = final.histories.map((slot) => slot[conv] ?? null);
    const text = lists.map((l) => JSON.stringify(l));
    if (text.every((t) => t === text[0])) continue;
    const merged = mergedFinal(final, conv);
    const detail = lists
      .map((l, slot) => {
        if (l === null) return `slot ${slot}: 404`;
        const ids = new Set(l.map((k) => k.id));
        const missing = merged.filter((k) => !ids.has(k.id)).map((k) => k.id);
        return `slot ${slot}: ${l.length} messages${missing.length ? `, missing ${missing.slice(0, 5).join(' ')}${missing.length > 5 ? ` (+${missing.length - 5})` : ''}` : ''}`;
      })
      .join('; ');
    out.push({ conv, detail });
  }
  return out;
}

/** 4. Messages deleted with a 204 that are back in some instance's history (while a holder of the delete ran to the end). */
export function checkResurrected(events: readonly HistoryEvent[], final: FinalState, options: CheckOptions): Resurrected[] {
  const dead = new Set<string>();
  for (const e of events) if (e.type === 'exit') dead.add(incKey(e));
  const seenDeleted = new Map<string, Map<string, Incarnation>>();
  for (const e of events) {
    if (e.type !== 'ws-deleted') continue;
    let holders = seenDeleted.get(e.id);
    if (!holders) seenDeleted.set(e.id, (holders = new Map()));
    holders.set(incKey(e), { slot: e.slot, incarnation: e.incarnation });
  }
  const out: Resurrected[] = [];
  for (const e of events) {
    if (e.type !== 'rest-deleted') continue;
    const slots = final.histories.flatMap((slot, i) => ((slot[e.conv] ?? []).some((k) => k.id === e.id) ? [i] : []));
    if (slots.length === 0) continue;
    const byKey = new Map<string, Incarnation>([[incKey(e), { slot: e.slot, incarnation: e.incarnation }], ...(seenDeleted.get(e.id) ?? [])]);
    const holders = [...byKey.values()].map((h) => ({ ...h, survived: !dead.has(incKey(h)) }));
    if (!options.dataDir && !holders.some((h) => h.survived)) continue;
    out.push({ conv: e.conv, id: e.id, slots, deletedAt: e.t, holders });
  }
  return out;
}

/** 5. A message id delivered twice on one connection. */
export function checkDuplicates(events: readonly HistoryEvent[]): Duplicate[] {
  const counts = new Map<string, { client: number; conn: number; id: string; count: number }>();
  const see = (client: number, conn: number, id: string) => {
    const key = `${client}/${conn}/${id}`;
    const c = counts.get(key);
    if (c) c.count++;
    else counts.set(key, { client, conn, id, count: 1 });
  };
  for (const e of events) {
    if (e.type === 'ws-message') see(e.client, e.conn, e.key.id);
    else if (e.type === 'ws-joined') for (const k of e.history) see(e.client, e.conn, k.id);
  }
  return [...counts.values()].filter((c) => c.count > 1);
}

/** 6. Messages a client should have got through its resumes (or live) and never did. */
export function checkResumes(events: readonly HistoryEvent[], final: FinalState): BrokenResume[] {
  type Joined = Extract<HistoryEvent, { type: 'ws-joined' }>;
  const streams = new Map<string, { client: number; room: string; received: Map<string, Key>; joins: Joined[] }>();
  const stream = (client: number, room: string) => {
    const key = `${client}\u0000${room}`;
    let s = streams.get(key);
    if (!s) streams.set(key, (s = { client, room, received: new Map(), joins: [] }));
    return s;
  };
  for (const e of events) {
    if (e.type === 'ws-message') stream(e.client, e.room).received.set(e.key.id, e.key);
    else if (e.type === 'ws-joined') {
      const s = stream(e.client, e.room);
      s.joins.push(e);
      for (const k of e.history) s.received.set(k.id, k);
    }
  }
  const firstSeen = new Map<string, { t: number; slot: number }>();
  /** id → "slot:incarnation" → the first time that process was seen holding it. */
  const heldBy = new Map<string, Map<string, number>>();
  const seen = (id: string, t: number, at: Incarnation) => {
    const cur = firstSeen.get(id);
    if (!cur || t < cur.t) firstSeen.set(id, { t, slot: at.slot });
    let holders = heldBy.get(id);
    if (!holders) heldBy.set(id, (holders = new Map()));
    const prev = holders.get(incKey(at));
    if (prev === undefined || t < prev) holders.set(incKey(at), t);
  };
  for (const e of events) {
    if (e.type === 'ws-message') seen(e.key.id, e.t, e);
    else if (e.type === 'rest-posted') seen(e.key.id, e.t, e);
    else if (e.type === 'ws-joined') for (const k of e.history) seen(k.id, e.t, e);
  }
  const out: BrokenResume[] = [];
  for (const s of streams.values()) {
    if (s.received.size === 0) continue;
    const newest = [...s.received.values()].reduce((a, b) => (compareKeys(a, b) >= 0 ? a : b));
    let excuse: Key | null = null;
    for (const j of s.joins) {
      if (j.since !== undefined && j.gap !== true) continue;
      const first = j.history[0];
      if (first && (excuse === null || compareKeys(first, excuse) > 0)) excuse = first;
    }
    const resumes = s.joins.filter((j) => j.since !== undefined && j.gap === false).sort((a, b) => a.t - b.t);
    for (const m of mergedFinal(final, s.room)) {
      if (excuse !== null && compareKeys(m, excuse) <= 0) continue;
      if (compareKeys(m, newest) > 0) break;
      if (s.received.has(m.id)) continue;
      const r = [...resumes].reverse().find((j) => compareKeys(j.since!, m) >= 0);
      out.push({
        client: s.client,
        room: s.room,
        missing: m,
        newest,
        excuse,
        resume: r ? { conn: r.conn, t: r.t, since: r.since!, slot: r.slot, incarnation: r.incarnation } : null,
        firstSeen: firstSeen.get(m.id) ?? null,
        heldAtResume: r !== undefined && (heldBy.get(m.id)?.get(incKey(r)) ?? Infinity) < r.t,
      });
    }
  }
  return out;
}

export function figures(events: readonly HistoryEvent[]): Figures {
  const f: Figures = {
    faults: { kill: 0, pause: 0, cut: 0, isolate: 0, loss: 0 },
    acknowledged: { restMessages: 0, wsMessages: 0, conversations: 0, deletes: 0, total: 0 },
    rejected: 0,
    unknown: 0,
    connections: 0,
    resumes: 0,
    gaps: 0,
    messagesDelivered: 0,
    restarts: 0,
  };
  for (const e of events) {
    switch (e.type) {
      case 'fault-start':
        f.faults[e.fault.kind]++;
        break;
      case 'rest-posted':
        f.acknowledged.restMessages++;
        break;
      case 'ws-message':
        f.messagesDelivered++;
        if (e.echo) f.acknowledged.wsMessages++;
        break;
      case 'rest-created':
        f.acknowledged.conversations++;
        break;
      case 'rest-deleted':
        f.acknowledged.deletes++;
        break;
      case 'rest-rejected':
        f.rejected++;
        break;
      case 'rest-unknown':
        f.unknown++;
        break;
      case 'ws-open':
        f.connections++;
        break;
      case 'ws-joined':
        if (e.since !== undefined) {
          f.resumes++;
          if (e.gap) f.gaps++;
        }
        break;
      case 'start':
        if (e.incarnation > 0) f.restarts++;
        break;
    }
  }
  const a = f.acknowledged;
  a.total = a.restMessages + a.wsMessages + a.conversations + a.deletes;
  return f;
}

/** Every check. */
export function check(events: readonly HistoryEvent[], final: FinalState, options: CheckOptions): CheckResult {
  const result = {
    figures: figures(events),
    crashes: checkCrashes(events),
    lost: checkLost(events, final, options),
    diverged: checkDiverged(final),
    resurrected: checkResurrected(events, final, options),
    duplicates: checkDuplicates(events),
    brokenResumes: checkResumes(events, final),
  };
  if (!final.converged && result.diverged.length === 0) result.diverged.push({ conv: '*', detail: 'the instances never held the same state twice in a row before the deadline' });
  const ok = [result.crashes, result.lost, result.diverged, result.resurrected, result.duplicates, result.brokenResumes].every((l) => l.length === 0);
  return { ok, ...result };
}
