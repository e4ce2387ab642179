/**
 * The client wire protocol: JSON text frames, a tagged union on `type`.
 * Frames are decoded and validated here, at the edge, so the rest of the code only
 * ever sees well-formed values.
 */
import { ClientErrorCode } from '../errors.js';
import { forbiddenKey } from './forbidden-keys.js';

export interface JoinFrame {
  type: 'join';
  room: string;
  /** Required without auth; with a token it may be left out (it is the token's sub). */
  user: string | undefined;
  /** Resume: the id of the last message this client saw in the room. */
  since?: string;
  /** The next page of a resume: the `next` of the previous `joined` (with the same `since`). */
  after?: string;
}
export interface LeaveFrame {
  type: 'leave';
  room: string;
}
export interface MessageFrame {
  type: 'message';
  room: string;
  /** Optional: defaults to the name the connection joined the room with. */
  user: string | undefined;
  text: string;
  /** Sends that never double: a client's id for this send (1–64 characters); a resend with it stores nothing. */
  clientId?: string;
}
export interface MembersFrame {
  type: 'members';
  room: string;
}
/** "I am typing" (for the next 5 s): the room's other members get a typing event. */
export interface TypingFrame {
  type: 'typing';
  room: string;
}
/** AUTH=jwt: a new token for this connection, before the current one expires (same sub). */
export interface RefreshFrame {
  type: 'refresh';
  token: string;
}
/** Moves this member's read cursor forward to message `upTo` (members get a `read` receipt). */
export interface ReadFrame {
  type: 'read';
  room: string;
  upTo: string;
}
/** Follow the inbox (agents): `inbox` frames with each changed conversation's item; subscribe false: stop. */
export interface InboxFrame {
  type: 'inbox';
  subscribe: boolean;
}
export type ClientFrame = JoinFrame | LeaveFrame | MessageFrame | MembersFrame | TypingFrame | ReadFrame | InboxFrame;
/** What a connection with a token may send. */
export type AuthClientFrame = ClientFrame | RefreshFrame;

export interface FrameLimits {
  maxNameLength: number;
  maxTextLength: number;
  /** The connection came with a token: join's user is optional and refresh is a frame. */
  authenticated?: boolean;
}

/** Longest clientId of a message frame (as core/store-write.ts CLIENT_ID_MAX: the write's `cid`). */
const MAX_CLIENT_ID_LENGTH = 64;

/** Longest token a refresh frame may carry (as lib/auth MAX_TOKEN_LENGTH). */
const MAX_REFRESH_TOKEN_LENGTH = 16_384;

export type DecodeResult<F = ClientFrame> =
  | { ok: true; frame: F }
  | { ok: false; code: ClientErrorCode; message: string };

// C0 and C1 control characters and DEL have no place in a name.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

const fail = (code: ClientErrorCode, message: string): { ok: false; code: ClientErrorCode; message: string } => ({ ok: false, code, message });

/** Parses and validates one client text frame. Never throws. */
export function decodeClientFrame(text: string, limits: FrameLimits & { authenticated: true }): DecodeResult<AuthClientFrame>;
export function decodeClientFrame(text: string, limits: FrameLimits): DecodeResult;
export function decodeClientFrame(text: string, limits: FrameLimits): DecodeResult<AuthClientFrame> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail(ClientErrorCode.BadJson, 'frame is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(ClientErrorCode.InvalidFrame, 'frame must be a JSON object');
  }
  const obj = value as Record<string, unknown>;
  const forbidden = forbiddenKey(obj);
  if (forbidden !== undefined) return fail(ClientErrorCode.InvalidField, `key "${forbidden}" is not allowed`);
  const type = obj.type;
  if (typeof type !== 'string') return fail(ClientErrorCode.InvalidField, 'type must be a string');

  switch (type) {
    case 'join': {
      const room = checkName(obj, 'room', limits);
      if (typeof room !== 'string') return room;
      const user = obj.user === undefined && limits.authenticated ? undefined : checkName(obj, 'user', limits);
      if (user !== undefined && typeof user !== 'string') return user;
      const since = obj.since;
      if (since !== undefined && (typeof since !== 'string' || since.length === 0 || since.length > 256)) {
        return fail(ClientErrorCode.InvalidField, 'since must be a message id');
      }
      const after = obj.after;
      if (after !== undefined && (since === undefined || typeof after !== 'string' || after.length === 0 || after.length > 256)) {
        return fail(ClientErrorCode.InvalidField, 'after must be a message id (the next of a paged resume), with since');
      }
      if (since === undefined) return { ok: true, frame: { type, room, user } };
      return { ok: true, frame: after === undefined ? { type, room, user, since } : { type, room, user, since, after } };
    }
    case 'leave':
    case 'members':
    case 'typing': {
      const room = checkName(obj, 'room', limits);
      if (typeof room !== 'string') return room;
      return { ok: true, frame: { type, room } };
    }
    case 'message': {
      const room = checkName(obj, 'room', limits);
      if (typeof room !== 'string') return room;
      let user: string | undefined;
      if (obj.user !== undefined) {
        const checked = checkName(obj, 'user', limits);
        if (typeof checked !== 'string') return checked;
        user = checked;
      }
      const text = obj.text;
      if (typeof text !== 'string') return fail(ClientErrorCode.InvalidField, 'text must be a string');
      if (text.trim() === '') return fail(ClientErrorCode.InvalidField, 'text must not be empty');
      if (text.length > limits.maxTextLength) {
        return fail(ClientErrorCode.InvalidField, `text must be at most ${limits.maxTextLength} characters`);
      }
      if (!text.isWellFormed()) return fail(ClientErrorCode.InvalidField, 'text holds an unpaired surrogate');
      const clientId = obj.clientId;
      if (clientId === undefined) return { ok: true, frame: { type, room, user, text } };
      if (typeof clientId !== 'string' || clientId.length === 0 || clientId.length > MAX_CLIENT_ID_LENGTH || CONTROL_CHARS.test(clientId) || !clientId.isWellFormed()) {
        return fail(ClientErrorCode.InvalidField, `clientId must be a string of 1 to ${MAX_CLIENT_ID_LENGTH} characters without control characters`);
      }
      return { ok: true, frame: { type, room, user, text, clientId } };
    }
    case 'read': {
      const room = checkName(obj, 'room', limits);
      if (typeof room !== 'string') return room;
      const upTo = obj.upTo;
      if (typeof upTo !== 'string' || upTo.length === 0 || upTo.length > 256) return fail(ClientErrorCode.InvalidField, 'upTo must be a message id');
      return { ok: true, frame: { type, room, upTo } };
    }
    case 'inbox': {
      const extra = Object.keys(obj).find((k) => k !== 'type' && k !== 'subscribe');
      if (extra !== undefined) return fail(ClientErrorCode.InvalidField, `inbox takes only subscribe, not ${JSON.stringify(extra.slice(0, 64))}`);
      if (obj.subscribe !== undefined && typeof obj.subscribe !== 'boolean') return fail(ClientErrorCode.InvalidField, 'subscribe must be true or false');
      return { ok: true, frame: { type, subscribe: obj.subscribe !== false } };
    }
    case 'refresh': {
      if (!limits.authenticated) break;
      const token = obj.token;
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_REFRESH_TOKEN_LENGTH) {
        return fail(ClientErrorCode.InvalidField, 'token must be a token string');
      }
      return { ok: true, frame: { type, token } };
    }
  }
  return fail(ClientErrorCode.UnknownType, `unknown type ${JSON.stringify(type.slice(0, 64))}`);
}

/** A room or user name: a non-blank string, not too long, no control characters. */
function checkName(obj: Record<string, unknown>, field: 'room' | 'user', limits: FrameLimits): string | ReturnType<typeof fail> {
  const value = obj[field];
  if (typeof value !== 'string') return fail(ClientErrorCode.InvalidField, `${field} must be a string`);
  if (value.trim() === '') return fail(ClientErrorCode.InvalidField, `${field} must not be empty`);
  if (value.length > limits.maxNameLength) {
    return fail(ClientErrorCode.InvalidField, `${field} must be at most ${limits.maxNameLength} characters`);
  }
  if (CONTROL_CHARS.test(value)) return fail(ClientErrorCode.InvalidField, `${field} must not hold control characters`);
  if (!value.isWellFormed()) return fail(ClientErrorCode.InvalidField, `${field} holds an unpaired surrogate`);
  return value;
}

/** Server → client events. Encoded once per instance, whatever the number of recipients. */
export interface MessageEvent {
  type: 'message';
  id: string;
  room: string;
  user: string;
  text: string;
  ts: number;
}
export interface PresenceEvent {
  type: 'presence';
  event: 'join' | 'leave';
  room: string;
  user: string;
}
/** Not stored: "typing for the next 5 s" (at most one per user and room every 2 s is sent). */
export interface TypingEvent {
  type: 'typing';
  room: string;
  user: string;
}
export type RoomEvent = MessageEvent | PresenceEvent;

/** What an error answers, when the frame said: its room, and a message's clientId (so a client can tell which send failed). */
export interface ErrorAbout {
  room?: string;
  clientId?: string;
}

export function errorFrame(code: string, message: string, about?: ErrorAbout): string {
  return JSON.stringify({ type: 'error', code, message, ...about });
}

/** The room and clientId of a frame not decoded (refused by the rate limit): read only from a small, well-formed frame. */
export function aboutUndecoded(data: unknown): ErrorAbout | undefined {
  if (!Buffer.isBuffer(data) || data.length > 4096) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(data.toString());
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { room, clientId } = v as Record<string, unknown>;
  const ok = (x: unknown): x is string => typeof x === 'string' && x.length <= 256 && x.isWellFormed();
  if (!ok(room)) return undefined;
  return ok(clientId) && clientId.length <= 64 ? { room, clientId } : { room };
}
