/** What the /api routes work with: one object, built by ChatNode and handed to every route file. */
import type { AuthOptions, TokenVerifier } from '../../auth/index.js';
import type { ChatmeshOptions } from '../../config.js';
import type { ConversationStore } from '../../core/conversation-store.js';
import type { OlderHistory } from '../../core/history-page.js';
import type { CreationLimiter } from '../../core/creation-limiter.js';
import type { Replicator } from '../../replication/replicator.js';
import type { Revocations } from '../../replication/revocations.js';

export type { OlderHistory } from '../../core/history-page.js';

export type ApiOptions = Pick<ChatmeshOptions, 'maxBodyBytes' | 'maxTextLength' | 'maxNameLength'>;

export interface ApiDeps {
  options: ApiOptions;
  store: ConversationStore;
  replicator: Replicator;
  /** One budget of new conversations per client address, shared with WebSocket joins. */
  creations: CreationLimiter;
  /** AUTH=jwt: verifies each request's token; null with AUTH=none. */
  verifier: TokenVerifier | null;
  /** DATA_DIR: the record on disk, which holds the history older than memory's window; null without. */
  disk: OlderHistory | null;
  revocations: Revocations;
  auth: Pick<AuthOptions, 'clockToleranceSec' | 'maxTokenLifetimeSec'>;
  /** Hears of a bug (an error that is no known refusal), answered 500. */
  onInternalError?: (err: unknown) => void;
}
