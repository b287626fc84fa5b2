/**
 * The one error type every layer throws for a problem the caller caused (bad input, missing auth,
 * unknown entry). The HTTP layer turns it into `{"error": {"code", "message"}}` with `status`; the CLI
 * prints the message and exits non-zero. Anything else is a bug or an I/O failure (HTTP 500).
 */
export class SteleError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'SteleError';
  }
}
