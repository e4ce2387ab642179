/** With a token function: a `refresh` frame with a fresh token before the current one expires. */
import { ChatError } from './chat-error.js';
import { refreshDelayMs, tokenFrom, type TokenSource } from './token.js';

export class TokenRefresher {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly source: TokenSource | undefined,
    private readonly marginSec: number,
    private readonly sendRefresh: (token: string) => void,
    private readonly onError: (error: ChatError) => void,
  ) {}

  /** Arms the refresh for a token expiring at `exp` (seconds); nothing with a fixed token. */
  arm(exp: number | null): void {
    this.stop();
    const source = this.source;
    if (typeof source !== 'function' || exp === null) return;
    this.timer = setTimeout(async () => {
      try {
        this.sendRefresh(await tokenFrom(source));
      } catch (err) {
        this.onError(new ChatError('token_source', `the token function failed: ${err instanceof Error ? err.message : String(err)}`));
      }
    }, refreshDelayMs(exp, this.marginSec));
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
