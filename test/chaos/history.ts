/**
 * What a fault campaign records, as plain data: the checker (checker.ts) is a set of pure
 * functions over it, so it can be unit-tested with hand-made histories.
 *
 * Times (`t`) are milliseconds since the campaign started. An instance is named by its slot
 * (0, 1, 2: one per host) and its incarnation (0 for the first process in the slot, +1 at
 * every restart): a write held by incarnation k of a slot is gone with that process when it
 * exits, whatever happens to the slot afterwards (no DATA_DIR: a restart starts empty).
 */

/** Where a message sorts: history order is (ts, id). */
export interface Key {
  ts: number;
  id: string;
}

export interface Incarnation {
  slot: number;
  incarnation: number;
}

export type FaultKind = 'kill' | 'pause' | 'cut' | 'isolate' | 'loss';

/** One fault of the nemesis' schedule. */
export interface Fault {
  /** Sequence number in the schedule. */
  n: number;
  kind: FaultKind;
  /** Slot of the instance (or host) it hits. */
  target: number;
  /** Planned start, ms after the campaign's start. */
  at: number;
  /** Planned duration, ms. */
  durationMs: number;
}

export type HistoryEvent =
  /** A process started in a slot (incarnation 0 at setup, then at every restart). */
  | ({ type: 'start'; t: number; nodeId: string } & Incarnation)
  /** A process exited; `byNemesis` when the nemesis (or the final teardown) killed it. */
  | ({ type: 'exit'; t: number; byNemesis: boolean; code: number | null; signal: string | null } & Incarnation)
  | { type: 'fault-start'; t: number; fault: Fault }
  | { type: 'fault-end'; t: number; fault: Fault }
  /** A client WebSocket connection opened (numbered per client, from 1) to an instance. */
  | ({ type: 'ws-open'; t: number; client: number; conn: number } & Incarnation)
  | { type: 'ws-close'; t: number; client: number; conn: number; why: string }
  /** A `joined` reply: `since` is what the client resumed from (absent on a first join). */
  | ({
      type: 'ws-joined';
      t: number;
      client: number;
      conn: number;
      room: string;
      since?: Key;
      gap?: boolean;
      history: Key[];
    } & Incarnation)
  /** A message frame on a client connection; `echo` when it is the client's own message sent on that connection (its ack). */
  | ({ type: 'ws-message'; t: number; client: number; conn: number; room: string; key: Key; user: string; echo: boolean } & Incarnation)
  /** A `deleted` frame on a client connection: that instance holds the delete. */
  | ({ type: 'ws-deleted'; t: number; client: number; conn: number; room: string; id: string } & Incarnation)
  /** A REST writer's request answered 201/204 (ack), or with another status, or not at all (unknown). */
  | ({ type: 'rest-created'; t: number; writer: number; conv: string } & Incarnation)
  | ({ type: 'rest-posted'; t: number; writer: number; conv: string; key: Key } & Incarnation)
  | ({ type: 'rest-deleted'; t: number; writer: number; conv: string; id: string } & Incarnation)
  | ({ type: 'rest-rejected'; t: number; writer: number; op: 'create' | 'post' | 'delete'; conv?: string; id?: string; status: number } & Incarnation)
  | ({ type: 'rest-unknown'; t: number; writer: number; op: 'create' | 'post' | 'delete'; conv?: string; id?: string; error: string } & Incarnation);

/** What every instance holds at the end, read after the heal and the wait for convergence. */
export interface FinalState {
  /** Per slot: conversation id → its messages in history order, or null when the instance answers 404. */
  histories: Array<Record<string, Key[] | null>>;
  /** False when the instances still differed when the wait for convergence gave up. */
  converged: boolean;
}

/** (ts, id) order. */
export function compareKeys(a: Key, b: Key): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
