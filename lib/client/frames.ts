/**
 * The client protocol as the client library sees it: what it sends, and the frames the
 * server sends back (README "The client protocol"; the desk frames from
 * /work/plan/desk-design.md). Plain types, no imports: this folder runs in browsers too.
 */

/** A chat message, as delivered to the application (live, or from a join's history). */
export interface ChatMessage {
  id: string;
  room: string;
  user: string;
  text: string;
  /** Milliseconds (hybrid logical clock); (ts, id) is the room's order. */
  ts: number;
  /** The sender's clientId, when the server echoes it. */
  clientId?: string;
  /** The author's token subject (AUTH=jwt). */
  by?: string;
  /** When the message was last edited (support desk), if it was. */
  editedAt?: number;
}

export interface HistoryItem {
  id: string;
  user: string;
  text: string;
  ts: number;
  clientId?: string;
  editedAt?: number;
}

export interface JoinedFrame {
  type: 'joined';
  room: string;
  user: string;
  /** Empty in a big room (over PRESENCE_MAX_MEMBERS): then `count` and `truncated`. */
  members: string[];
  count?: number;
  truncated?: boolean;
  history: HistoryItem[];
  /** Present on a resume: the `since` the client sent. */
  since?: string;
  /** A resume this instance could not answer whole: messages may have been missed. */
  gap?: boolean;
  /** A paged resume: ask again with `after: next` (and the same `since`). */
  more?: boolean;
  next?: string;
}

/**
 * One join or leave (`event`, `user`), or, when one turn of the server had several, a batch
 * (`joined`, `left`: each name once; a joiner may see its own name).
 */
export interface PresenceFrame {
  type: 'presence';
  room: string;
  event?: 'join' | 'leave';
  user?: string;
  joined?: string[];
  left?: string[];
}

/** A room over PRESENCE_MAX_MEMBERS tells counts only (at most one a second). */
export interface OccupancyFrame {
  type: 'occupancy';
  room: string;
  count: number;
}

export interface MessageFrame {
  type: 'message';
  id: string;
  room: string;
  user: string;
  text: string;
  ts: number;
  /** The sender's clientId (the server names it `cid` in message frames). */
  cid?: string;
  by?: string;
}

export interface DeletedFrame {
  type: 'deleted';
  room: string;
  id: string;
  ts: number;
  at: number;
}

/** The support desk's fields of a conversation, as frames and inbox items carry them. */
export interface DeskFields {
  id: string;
  status: 'open' | 'pending' | 'snoozed' | 'resolved';
  snoozedUntil?: number;
  assignee: string | null;
  metadata: Record<string, string | number | boolean | null>;
  updatedAt: number;
}

/** Support desk: a conversation's fields changed (status, assignee, metadata). */
export interface ConversationFrame extends DeskFields {
  type: 'conversation';
  room: string;
}

/** A read receipt: `user` has read the room up to message `upTo`. */
export interface ReadFrame {
  type: 'read';
  room: string;
  user: string;
  upTo: string;
}

/** A message's text was edited. */
export interface EditedFrame {
  type: 'edited';
  room: string;
  /** The edited message's id. */
  id: string;
  text: string;
  editedAt: number;
}

/** `user` is typing in `room`: it means "for the next 5 s" (the server forwards every 2 s at most). */
export interface TypingFrame {
  type: 'typing';
  room: string;
  user: string;
}

export interface MembersFrame {
  type: 'members';
  room: string;
  /** Empty in a big room: then `count` and `truncated`. */
  members: string[];
  count?: number;
  truncated?: boolean;
}

export interface LeftFrame {
  type: 'left';
  room: string;
}

export interface RefreshedFrame {
  type: 'refreshed';
  exp: number;
}

/** A conversation's inbox item, as GET /api/conversations gives it (`unread`: with AUTH=jwt). */
export interface InboxItem extends DeskFields {
  createdAt: number;
  lastMessage: { id: string; sender: string; content: string; timestamp: number } | null;
  unread?: number;
}

/** The inbox feed: the answer to an inbox frame (`subscribed`), a changed conversation (`item`), or one gone (`removed`: expired). */
export interface InboxFrame {
  type: 'inbox';
  subscribed?: boolean;
  item?: InboxItem;
  removed?: string;
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  /** An error answering a send names its room and clientId (servers since the support desk). */
  room?: string;
  clientId?: string;
}

export type ServerFrame =
  | JoinedFrame | PresenceFrame | MessageFrame | DeletedFrame | ConversationFrame | ReadFrame
  | EditedFrame | TypingFrame | MembersFrame | OccupancyFrame | LeftFrame | RefreshedFrame | InboxFrame | ErrorFrame;

/** Frames the client sends. */
export type ClientFrame =
  | { type: 'join'; room: string; user?: string; since?: string; after?: string }
  | { type: 'leave'; room: string }
  | { type: 'members'; room: string }
  | { type: 'message'; room: string; text: string; clientId: string }
  | { type: 'typing'; room: string }
  | { type: 'read'; room: string; upTo: string }
  | { type: 'refresh'; token: string }
  | { type: 'inbox'; subscribe?: false };

const TYPES = new Set(['joined', 'presence', 'message', 'deleted', 'conversation', 'read', 'edited', 'typing', 'members', 'occupancy', 'left', 'refreshed', 'inbox', 'error']);

/** Parses one server text frame; null for anything that is not a known frame. */
export function parseServerFrame(data: unknown): ServerFrame | null {
  if (typeof data !== 'string') return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const frame = value as { type?: unknown; room?: unknown };
  if (typeof frame.type !== 'string' || !TYPES.has(frame.type)) return null;
  // Every frame but error, refreshed and inbox belongs to a room.
  if (frame.type !== 'error' && frame.type !== 'refreshed' && frame.type !== 'inbox' && typeof frame.room !== 'string') return null;
  return value as ServerFrame;
}

/** A message frame or history item as the app gets it (only the known fields). */
export function toChatMessage(room: string, m: HistoryItem & { by?: string; cid?: string }): ChatMessage {
  const clientId = m.cid ?? m.clientId;
  return { id: m.id, room, user: String(m.user), text: m.text, ts: Number(m.ts) || 0, ...(typeof clientId === 'string' && { clientId }), ...(m.by !== undefined && { by: m.by }), ...(typeof m.editedAt === 'number' && { editedAt: m.editedAt }) };
}

/** The member list after a presence frame; `recheck`: someone left (the name may still be in the room on another connection: ask). */
export function afterPresence(members: Iterable<string>, frame: PresenceFrame): { members: string[]; recheck: boolean } {
  const next = new Set(members);
  if (frame.joined !== undefined || frame.left !== undefined) {
    for (const name of Array.isArray(frame.joined) ? frame.joined : []) next.add(String(name));
    return { members: [...next], recheck: Array.isArray(frame.left) && frame.left.length > 0 };
  }
  if (frame.event === 'join' && typeof frame.user === 'string') next.add(frame.user);
  return { members: [...next], recheck: frame.event === 'leave' };
}
