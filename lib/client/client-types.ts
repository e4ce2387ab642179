/** The ChatClient's options and events. */
import type { ConnectionOptions, ConnectionState } from './connection.js';
import type { ChatError } from './chat-error.js';
import type { ChatMessage, ConversationFrame, DeletedFrame, EditedFrame, InboxFrame, OccupancyFrame, PresenceFrame, ReadFrame, TypingFrame } from './frames.js';
import type { JoinedInfo } from './room-state.js';

export interface ChatClientOptions extends ConnectionOptions {
  /** The name to join with (required without auth; with a token the server uses its `sub`). */
  user?: string;
  /** How many message ids are remembered for dedupe. @default 10000 */
  maxSeenIds?: number;
  /** With a token function: refresh this long before the token expires. @default 60 */
  refreshMarginSec?: number;
  /** Wait before writing again a frame the server refused as rate_limited. @default 1000 */
  rateLimitRetryMs?: number;
}

export interface ChatClientEvents {
  message(message: ChatMessage): void;
  joined(info: JoinedInfo): void;
  gap(event: { room: string }): void;
  presence(frame: PresenceFrame): void;
  /** The member list changed; in a big room (over PRESENCE_MAX_MEMBERS) only `count` is known. */
  members(event: { room: string; members: string[]; count?: number }): void;
  occupancy(frame: OccupancyFrame): void;
  deleted(frame: DeletedFrame): void;
  edited(frame: EditedFrame): void;
  conversation(frame: ConversationFrame): void;
  read(frame: ReadFrame): void;
  typing(frame: TypingFrame): void;
  /** The inbox feed (after `inbox()`): its answer, then each changed conversation's item. */
  inbox(frame: InboxFrame): void;
  refreshed(event: { exp: number }): void;
  state(state: ConnectionState): void;
  /** A server error no promise took (a refused typing, read or refresh, a failed re-join). */
  error(error: ChatError): void;
}
