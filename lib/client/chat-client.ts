/**
 * ChatClient: rooms, messages and events over a Connection that reconnects by itself.
 * On every (re)connect each room is joined again with `since` = the newest message seen in
 * it (paged resumes followed to the end, live messages held until then so the order holds);
 * sends wait in the Outbox until their echo and are written again, with the same clientId,
 * after a reconnect; messages reach the app once (deduped by id, bounded).
 */
import { ChatError } from './chat-error.js';
import { newClientId } from './client-id.js';
import { Connection } from './connection.js';
import { Emitter } from './emitter.js';
import type { ChatClientEvents, ChatClientOptions } from './client-types.js';
import { afterPresence, toChatMessage, type ChatMessage, type ErrorFrame, type JoinedFrame, type MessageFrame, type ServerFrame } from './frames.js';
import { InflightRequests, type Inflight } from './inflight.js';
import { Outbox, type PendingSend } from './outbox.js';
import { RoomState, type JoinedInfo } from './room-state.js';
import { SeenIds } from './seen-ids.js';
import { TokenRefresher } from './token-refresher.js';
import { tokenExpiry } from './token.js';

export class ChatClient extends Emitter<ChatClientEvents> {
  protected readonly connection: Connection;
  private readonly rooms = new Map<string, RoomState>();
  private readonly outbox = new Outbox();
  protected readonly inflight = new InflightRequests();
  private readonly seen: SeenIds;
  private readonly refresher: TokenRefresher;
  /** The server echoes clientId: echoes are matched by it alone. */
  private echoesClientId = false;
  private closed = false;

  constructor(private readonly options: ChatClientOptions) {
    super();
    this.seen = new SeenIds(options.maxSeenIds ?? 10_000);
    this.refresher = new TokenRefresher(options.token, options.refreshMarginSec ?? 60, (token) => {
      if (this.connection.send({ type: 'refresh', token })) this.inflight.push({ kind: 'refresh' });
    }, (error) => this.emit('error', error));
    this.connection = new Connection(options, {
      open: () => this.onOpen(),
      frame: (frame) => this.onFrame(frame),
      close: (code, reason, final) => this.onClose(code, reason, final),
      state: (state) => this.emit('state', state),
    });
  }

  /** Connects (joins and sends connect by themselves). */
  connect(): this {
    if (!this.closed) this.connection.start();
    return this;
  }

  /** Joins the room (again after every reconnect, until `leave`); resolves on `joined`. */
  join(room: string, options: { since?: string } = {}): Promise<JoinedInfo> {
    if (this.closed) return Promise.reject(new ChatError('closed', 'the client is closed', room));
    const existing = this.rooms.get(room);
    if (existing && this.isLive(existing)) return Promise.resolve(existing.info());
    const state = existing ?? new RoomState(room, options.since);
    const promise = new Promise<JoinedInfo>((resolve, reject) => state.waiters.push({ resolve, reject }));
    // A room already known is being joined (after the next connect, or now): nothing to write.
    if (!existing) {
      this.rooms.set(room, state);
      if (this.connection.isOpen) this.writeJoin(state);
    }
    this.connect();
    return promise;
  }

  /** Sends a message; resolves with its echo (written again after reconnects until then). */
  send(room: string, text: string): Promise<ChatMessage> {
    if (this.closed) return Promise.reject(new ChatError('closed', 'the client is closed', room));
    const state = this.rooms.get(room);
    if (!state) return Promise.reject(new ChatError('not_joined', `join ${room} before sending to it`, room));
    return new Promise<ChatMessage>((resolve, reject) => {
      const entry: PendingSend = { clientId: newClientId(), room, text, sentOn: null, resolve, reject };
      this.outbox.add(entry);
      if (this.isLive(state)) this.writeSend(entry);
    });
  }

  /** Leaves the room: no more re-joins; its unacknowledged sends are rejected (`left`). */
  leave(room: string): Promise<void> {
    const state = this.rooms.get(room);
    if (!state) return Promise.resolve();
    this.forget(state, new ChatError('left', `left ${room}`, room));
    if (!this.connection.send({ type: 'leave', room })) return Promise.resolve();
    this.inflight.push({ kind: 'leave', room });
    return new Promise<void>((resolve) => state.leaveWaiters.push(resolve));
  }

  /** Who is in the room (on every instance). */
  members(room: string): Promise<string[]> {
    const state = this.rooms.get(room);
    if (!state || !this.connection.send({ type: 'members', room })) return Promise.reject(new ChatError('not_joined', `not in ${room} now`, room));
    this.inflight.push({ kind: 'members', room });
    return new Promise((resolve, reject) => state.membersWaiters.push({ resolve, reject }));
  }

  /** Tells the room we are typing (it means "for the next 5 s"); false when not connected. */
  typing(room: string): boolean {
    return this.writeSilent({ kind: 'typing', room }, { type: 'typing', room });
  }

  /** Read receipt: we have read the room up to message `upTo`; false when not connected. */
  read(room: string, upTo: string): boolean {
    return this.writeSilent({ kind: 'read', room }, { type: 'read', room, upTo });
  }

  /** The members we know of (kept live by presence). */
  membersOf(room: string): string[] {
    return [...(this.rooms.get(room)?.members ?? [])].sort();
  }

  /** Sends not yet acknowledged by their echo. */
  get pendingSends(): number {
    return this.outbox.size;
  }

  get connected(): boolean {
    return this.connection.isOpen;
  }

  /** Closes for good: pending joins and sends are rejected (`closed`). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.stop();
  }

  private isLive(state: RoomState): boolean {
    return state.joinedOn !== null && state.joinedOn === this.connection.current && !state.resuming;
  }

  private writeJoin(state: RoomState, after?: string, since = state.lastId): void {
    const user = this.options.user;
    const frame = { type: 'join' as const, room: state.name, ...(user !== undefined && { user }), ...(since !== undefined && { since }), ...(after !== undefined && { after }) };
    if (this.connection.send(frame)) this.inflight.push({ kind: 'join', room: state.name });
  }

  private writeSend(entry: PendingSend): void {
    const socket = this.connection.current;
    if (!socket || !this.connection.send({ type: 'message', room: entry.room, text: entry.text, clientId: entry.clientId })) return;
    entry.sentOn = socket;
    this.inflight.push({ kind: 'message', room: entry.room, clientId: entry.clientId });
  }

  private writeSilent(request: Inflight, frame: { type: 'typing'; room: string } | { type: 'read'; room: string; upTo: string }): boolean {
    const state = this.rooms.get(frame.room);
    if (!state || !this.isLive(state) || !this.connection.send(frame)) return false;
    this.inflight.push(request);
    return true;
  }

  protected onOpen(): void {
    this.inflight.clear();
    for (const state of this.rooms.values()) this.writeJoin(state);
    this.refresher.arm(this.connection.token === null ? null : tokenExpiry(this.connection.token));
  }

  private onClose(code: number, reason: string, final: boolean): void {
    this.refresher.stop();
    this.inflight.clear();
    for (const state of this.rooms.values()) state.disconnected(new ChatError('disconnected', 'the connection closed', state.name));
    if (!final) return;
    this.closed = true;
    const codeName = code === 4401 ? 'token_expired' : code === 4403 ? 'token_revoked' : 'closed';
    const error = new ChatError(codeName, `connection closed (${code}${reason ? `: ${reason}` : ''})`);
    for (const state of this.rooms.values()) for (const w of state.waiters.splice(0)) w.reject(error);
    this.outbox.rejectAll(error);
  }

  protected onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'joined': return this.onJoined(frame);
      case 'message': return this.onMessage(frame);
      case 'error': return this.onError(frame);
      case 'presence': {
        const state = this.rooms.get(frame.room);
        if (!state) return;
        const { members, recheck } = afterPresence(state.members, frame);
        this.emit('members', state.setMembers(members));
        if (recheck) this.members(frame.room).catch(() => {});
        return this.emit('presence', frame);
      }
      case 'members': {
        const state = this.rooms.get(frame.room);
        if (!state) return;
        this.inflight.answer('members', (r) => r.room === frame.room);
        this.emit('members', state.setMembers(frame.members, frame.truncated ? frame.count : undefined));
        state.membersWaiters.shift()?.resolve(frame.members);
        return;
      }
      case 'occupancy': {
        const state = this.rooms.get(frame.room);
        if (state && typeof frame.count === 'number') this.emit('members', state.setMembers([], frame.count));
        return this.emit('occupancy', frame);
      }
      case 'left': {
        this.inflight.answer('leave', (r) => r.room === frame.room);
        const state = this.rooms.get(frame.room);
        if (state) for (const resolve of state.leaveWaiters.splice(0)) resolve();
        return;
      }
      case 'deleted':
        this.seen.add(frame.id);
        return this.emit('deleted', frame);
      case 'refreshed':
        this.inflight.answer('refresh', () => true);
        this.refresher.arm(frame.exp);
        return this.emit('refreshed', { exp: frame.exp });
      // Desk frames (edited, conversation, read, typing) go to the app as they are.
      default: return this.emit(frame.type, frame as never);
    }
  }

  private onJoined(frame: JoinedFrame): void {
    const state = this.rooms.get(frame.room);
    this.inflight.answer('join', (r) => r.room === frame.room);
    if (!state) return; // left meanwhile
    state.user = frame.user;
    this.emit('members', state.setMembers(Array.isArray(frame.members) ? frame.members : [], frame.truncated ? frame.count : undefined));
    if (frame.gap) {
      state.gap = true;
      this.emit('gap', { room: state.name });
    }
    for (const item of Array.isArray(frame.history) ? frame.history : []) this.deliver(state, { ...item, room: state.name });
    if (frame.more === true && typeof frame.next === 'string') {
      // A long resume comes in pages: ask for the next one, with the same since.
      state.resuming = true;
      this.writeJoin(state, frame.next, frame.since);
      return;
    }
    state.resuming = false;
    state.joinedOn = this.connection.current;
    state.everJoined = true;
    for (const live of state.buffered.splice(0)) this.deliver(state, live);
    const info = state.info();
    for (const w of state.waiters.splice(0)) w.resolve(info);
    this.emit('joined', info);
    state.gap = false;
    for (const entry of this.outbox.unsent(state.name, state.joinedOn!)) this.writeSend(entry);
  }

  private onMessage(frame: MessageFrame): void {
    const state = this.rooms.get(frame.room);
    if (!state) return;
    if (state.resuming) state.buffered.push(frame);
    else this.deliver(state, frame);
  }

  /** One message, live or from history: settles our send if it is its echo, then reaches the app once. */
  private deliver(state: RoomState, m: ChatMessage | MessageFrame): void {
    if (typeof m.id !== 'string' || typeof m.text !== 'string') return;
    const message = toChatMessage(state.name, m);
    if (message.clientId !== undefined) this.echoesClientId = true;
    if (message.user === state.user) {
      const entry = message.clientId !== undefined ? this.outbox.byClientId(message.clientId) : this.echoesClientId ? undefined : this.outbox.byText(state.name, message.text);
      if (entry) {
        this.inflight.answer('message', (r) => r.clientId === entry.clientId);
        this.outbox.settle(entry, { message });
      }
    }
    if (!this.seen.add(message.id)) return;
    // The same send stored twice (two instances, before either knew of the other's copy).
    if (message.clientId !== undefined && !this.seen.add(`${message.user}\0${message.clientId}`)) return;
    state.saw(message);
    this.emit('message', message);
  }

  private onError(frame: ErrorFrame): void {
    const request = this.inflight.blame(frame.code, typeof frame.clientId === 'string' ? frame.clientId : undefined);
    const state = request?.room === undefined ? undefined : this.rooms.get(request.room);
    const error = new ChatError(frame.code, frame.message, request?.room);
    const retryMs = this.options.rateLimitRetryMs ?? 1000;
    if (request?.kind === 'message' && state) {
      const entry = this.outbox.byClientId(request.clientId!);
      if (!entry || frame.code !== 'rate_limited') return entry && this.outbox.settle(entry, { error });
      // Dropped by the rate limit: written again later (the same clientId, so never twice).
      entry.sentOn = null;
      setTimeout(() => this.isLive(state) && entry.sentOn === null && this.writeSend(entry), retryMs);
      return;
    }
    if (request?.kind === 'join' && state) {
      if (state.everJoined && frame.code === 'rate_limited') {
        setTimeout(() => this.connection.isOpen && !state.joinedOn && this.rooms.get(state.name) === state && this.writeJoin(state), retryMs);
        return;
      }
      // The app's join is refused, or a re-join is (then the app hears it as an error event).
      if (state.waiters.length === 0) this.emit('error', error);
      return this.forget(state, error);
    }
    if (request?.kind === 'members' && state) state.membersWaiters.shift()?.reject(error);
    else this.emit('error', error);
  }

  private forget(state: RoomState, error: ChatError): void {
    if (this.rooms.get(state.name) === state) this.rooms.delete(state.name);
    for (const w of state.waiters.splice(0)) w.reject(error);
    this.outbox.rejectAll(error, state.name);
  }
}
