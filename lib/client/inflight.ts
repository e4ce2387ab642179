/**
 * Frames written on the current socket that may still get a reply, in the order written.
 * The server answers frames in order. An error that names a send's clientId is that send's;
 * any other is the oldest frame's whose kind can fail with that code (a message's echo may
 * come later than the reply to a later frame, so only the code tells them apart).
 */
export type RequestKind = 'join' | 'leave' | 'members' | 'message' | 'typing' | 'read' | 'refresh' | 'inbox';

export interface Inflight {
  kind: RequestKind;
  room?: string;
  clientId?: string;
}

const ANY = ['invalid_field', 'rate_limited', 'bad_json', 'invalid_frame', 'unknown_type'];
const CODES: Record<RequestKind, string[]> = {
  join: ['forbidden', 'already_joined', 'too_many_rooms', 'store_full', 'not_stored', 'storage_unavailable', 'user_mismatch'],
  message: ['not_joined', 'user_mismatch', 'store_full', 'not_stored', 'storage_unavailable'],
  leave: ['not_joined'],
  members: ['not_joined'],
  typing: ['not_joined'],
  read: ['not_joined', 'unknown_message'],
  inbox: ['forbidden', 'too_many_subscribers'],
  refresh: ['token_invalid', 'token_expired', 'token_claims', 'token_revoked', 'auth_unavailable', 'user_mismatch'],
};
/** Frames the server answers only when it refuses them. */
const SILENT: RequestKind[] = ['typing', 'read'];

export class InflightRequests {
  private list: Inflight[] = [];

  push(request: Inflight): void {
    this.list.push(request);
  }

  /** The reply to the oldest `kind` request matching `match` arrived; silent ones before it got none. */
  answer(kind: RequestKind, match: (r: Inflight) => boolean): Inflight | undefined {
    const i = this.list.findIndex((r) => r.kind === kind && match(r));
    if (i === -1) return undefined;
    const [found] = this.list.splice(i, 1);
    this.list = this.list.filter((r, j) => j >= i || !SILENT.includes(r.kind));
    return found;
  }

  /** Whose error frame this is: the oldest request that can fail with `code` (taken out), if any. */
  blame(code: string, clientId?: string): Inflight | undefined {
    const named = clientId === undefined ? -1 : this.list.findIndex((r) => r.kind === 'message' && r.clientId === clientId);
    if (named !== -1) return this.list.splice(named, 1)[0];
    let i = this.list.findIndex((r) => CODES[r.kind].includes(code) || ANY.includes(code));
    // A code this client does not know (a newer server): the oldest request's.
    if (i === -1 && !Object.values(CODES).some((codes) => codes.includes(code)) && !ANY.includes(code)) i = this.list.length > 0 ? 0 : -1;
    if (i === -1) return undefined;
    return this.list.splice(i, 1)[0];
  }

  clear(): void {
    this.list = [];
  }
}
