/**
 * The one error type every layer throws for a problem the caller caused (bad input, missing auth,
 * unknown entry). The HTTP layer turns it into `{"error": {"code", "message", ...detail}}` with
 * `status`; the CLI prints the message and exits non-zero. Anything else is a bug or an I/O failure
 * (HTTP 500).
 */
export class SteleError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    /** Machine-readable specifics (e.g. the offending token's position in a query), sent beside the message. */
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'SteleError';
  }
}
