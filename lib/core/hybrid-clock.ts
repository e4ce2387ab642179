/**
 * A hybrid logical clock (Kulkarni et al.): wall-clock milliseconds plus a counter, never
 * going backwards, and pushed forward by every timestamp seen from another node. Two events
 * where one happened after the other (on one node, or through a message between nodes)
 * always get increasing timestamps, even within the same millisecond.
 *
 * Message ids embed the timestamp so that sorting by (timestamp, id) keeps causal order.
 */
export interface HlcTimestamp {
  wall: number;
  counter: number;
}

/** Remote timestamps further ahead than this are not followed (a peer with a broken clock). */
export const MAX_FORWARD_JUMP_MS = 60_000;

const WALL_DIGITS = 9; // base 36: enough for dates until the year 5188
const COUNTER_DIGITS = 4; // base 36: 1.6 million events in one millisecond
/** The largest counter an id can hold (`zzzz`). */
export const MAX_COUNTER = 36 ** COUNTER_DIGITS - 1;

export class HybridClock {
  private wall = 0;
  private counter = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** A timestamp for a local event, greater than every timestamp issued or observed. */
  tick(): HlcTimestamp {
    const physical = this.now();
    if (physical > this.wall) {
      this.wall = physical;
      this.counter = 0;
    } else if (this.counter < MAX_COUNTER) {
      this.counter++;
    } else {
      // The counter is spent for this millisecond: move to the next one, so every id keeps
      // its fixed width (an id with a five-digit counter would not parse anywhere).
      this.wall++;
      this.counter = 0;
    }
    return { wall: this.wall, counter: this.counter };
  }

  /** Takes note of a timestamp from another node, so later local events come after it. */
  observe(remote: HlcTimestamp): void {
    if (remote.wall > this.now() + MAX_FORWARD_JUMP_MS) return;
    if (!Number.isSafeInteger(remote.counter) || remote.counter < 0 || remote.counter > MAX_COUNTER) return;
    if (remote.wall > this.wall) {
      this.wall = remote.wall;
      this.counter = remote.counter;
    } else if (remote.wall === this.wall && remote.counter > this.counter) {
      this.counter = remote.counter;
    }
  }
}

/**
 * A sortable, URL-safe id: the timestamp in fixed-width base 36, then the node's id, so ids
 * sort like their timestamps and are unique across nodes.
 */
export function timestampId(ts: HlcTimestamp, nodeId: string): string {
  return ts.wall.toString(36).padStart(WALL_DIGITS, '0') + ts.counter.toString(36).padStart(COUNTER_DIGITS, '0') + '-' + nodeId;
}

/** The timestamp inside an id made by timestampId; null for any other string. */
export function parseTimestampId(id: string): HlcTimestamp | null {
  if (id.length < WALL_DIGITS + COUNTER_DIGITS + 2 || id[WALL_DIGITS + COUNTER_DIGITS] !== '-') return null;
  const wall = parseInt(id.slice(0, WALL_DIGITS), 36);
  const counter = parseInt(id.slice(WALL_DIGITS, WALL_DIGITS + COUNTER_DIGITS), 36);
  if (!Number.isSafeInteger(wall) || !Number.isSafeInteger(counter)) return null;
  if (!/^[0-9a-z]+$/.test(id.slice(0, WALL_DIGITS + COUNTER_DIGITS))) return null;
  return { wall, counter };
}
