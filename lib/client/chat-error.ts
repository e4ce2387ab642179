/** An error with the stable code of the server's error frame (or of the client: `closed`, `left`, `disconnected`). */
export class ChatError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** The room the refused request was for, when there is one. */
    readonly room?: string,
  ) {
    super(message);
    this.name = 'ChatError';
  }
}
