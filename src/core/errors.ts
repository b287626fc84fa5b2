/**
 * The one error type every layer throws for a problem it can name: bad input, missing auth, an
 * unknown entry, an unavailable log. Its `code` is one of {@link ERROR_STATUS}'s keys, and the HTTP
 * status comes from that table alone, so a code cannot mean 400 in one place and 404 in another.
 * The HTTP layer (src/server/errors.ts) turns it into `{"error": {"code", "message", ...detail}}`;
 * the CLI (src/cli/errors.ts) prints the message, or the same pair under --json. Anything that is
 * not a SteleError is a bug or an I/O failure: HTTP 500 with a generic message.
 *
 * Where a problem sits is data, not prose: the failing event's index in its request
 * (`detail.batchIndex`), its NDJSON line (`detail.line`) and the JSON pointer of the offending value
 * within the event (`detail.pointer`). The message says the same for people ("event 3: /actor/type
 * must be ..."), and is never parsed back: callers that rename the place (a source's `items[3]`)
 * read `detail` and `problem`.
 */

/**
 * Every code and its HTTP status: the only place a status is chosen. docs/http-api.md lists them
 * (test/docs.test.ts checks the two agree). Codes only the CLI raises carry the status of the
 * nearest HTTP meaning; nothing reads it but the CLI's retry decisions.
 */
export const ERROR_STATUS = {
  // 400: the request (or command) itself is wrong.
  bad_request: 400,
  bad_tile_path: 400,
  invalid_json: 400,
  invalid_utf8: 400,
  unsafe_integer: 400,
  too_deep: 400,
  invalid_event: 400,
  invalid_time: 400,
  invalid_source_event: 400,
  invalid_otlp: 400,
  bad_query: 400,
  bad_hold: 400,
  bad_erasure: 400,
  bad_duration: 400,
  bad_policy: 400,
  // 400, raised by the CLI and the server's start-up rather than by a request.
  bad_option: 400,
  bad_file: 400,
  bad_listen: 400,
  bad_tls: 400,
  bad_vkey: 400,
  bad_checkpoint: 400,
  bad_data_dir: 400,
  bad_master_key: 400,
  bad_origin: 400,
  bare_repository: 400,
  bundle_invalid: 400,
  verify_failed: 400,
  git_failed: 400,
  hook_conflict: 400,
  import_incomplete: 400,
  listen_denied: 400,
  address_in_use: 400,
  no_checkpoint: 400,
  no_data_dir: 400,
  no_events: 400,
  no_git: 400,
  no_key_store: 400,
  no_master_key: 400,
  no_new_master_key: 400,
  no_token: 400,
  not_a_repository: 400,
  not_installed: 400,
  // 401/403: who is asking, and what they may do.
  unauthorized: 401,
  invalid_token: 401,
  forbidden: 403,
  reserved: 403,
  // 404-422: the thing asked about.
  not_found: 404,
  policy_missing: 404,
  conflict: 409,
  held: 409,
  id_conflict: 409,
  locked: 409,
  checkpoint_conflict: 409,
  immutable_change: 409,
  already_released: 409,
  expired: 410,
  erased: 410,
  too_large: 413,
  too_many_events: 413,
  body_too_large: 413,
  unsupported_media_type: 415,
  count_unavailable: 422,
  // The client went away before its answer, which was then left unfinished (nginx's "client closed request").
  abandoned: 499,
  // 429: slow down.
  rate_limited: 429,
  too_many_denials: 429,
  // 500: a bug or a broken data directory; the client is told nothing more.
  internal: 500,
  failed: 500,
  key_missing: 500,
  bad_wrapped_key: 500,
  wrong_master_key: 500,
  // 502: the CLI got an answer it could not use from a server.
  http_error: 502,
  export_failed: 502,
  // An S3 request failed, or a bucket holds what the log does not (a mirror of another log).
  s3_failed: 502,
  tsa_failed: 502,
  mirror_conflict: 502,
  // 503: try again later.
  unreachable: 503,
  overloaded: 503,
  shutting_down: 503,
  not_sent: 503,
  log_unavailable: 503,
  log_failed: 503,
  index_unavailable: 503,
  index_behind: 503,
  checkpoint_timeout: 503,
  key_store: 503,
  key_destroyed: 503,
  no_tsa: 404,
  idp_unavailable: 503,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Machine-readable specifics, sent beside the message (HTTP) and across threads (WireError). */
export type ErrorDetail = Record<string, unknown>;

export interface SteleErrorOptions {
  /** Machine-readable specifics: a position (batchIndex, line, pointer), the offending token, a reason. */
  detail?: ErrorDetail;
  /** The error this one reports (kept for logs and debugging; never sent to a client). */
  cause?: unknown;
  /** Where, for people: prefixed to the message as "`at`: problem" (e.g. "event 3", "items[2]"). */
  at?: string;
}

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.hasOwn(ERROR_STATUS, s);
}

export class SteleError extends Error {
  /** The HTTP status of `code`, from ERROR_STATUS. */
  readonly status: number;
  /** The message without its `at` prefix: what a caller that renames the place builds on. */
  readonly problem: string;
  readonly at: string | undefined;
  readonly detail: ErrorDetail | undefined;

  constructor(
    readonly code: ErrorCode,
    problem: string,
    opts: SteleErrorOptions = {},
  ) {
    super(opts.at ? `${opts.at}: ${problem}` : problem, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SteleError';
    this.status = ERROR_STATUS[code];
    this.problem = problem;
    this.at = opts.at;
    this.detail = opts.detail;
  }
}

/** `err` itself if it is a SteleError, else an 'internal' one (500) with `err` as its cause. */
export function asSteleError(err: unknown): SteleError {
  if (err instanceof SteleError) return err;
  return new SteleError('internal', err instanceof Error ? err.message : String(err), { cause: err });
}

/**
 * Options placing an error at event `batchIndex` of a request: "event 3: ..." and
 * `detail.batchIndex`. Undefined places nothing, as for a request of one event, which is not
 * numbered.
 */
export function eventAt(batchIndex: number | undefined, detail?: ErrorDetail): SteleErrorOptions {
  if (batchIndex === undefined) return detail ? { detail } : {};
  return { at: `event ${batchIndex}`, detail: { ...detail, batchIndex } };
}

/** The index in its request of the event `err` is about (`detail.batchIndex`), if it names one. */
export function batchIndexOf(err: SteleError): number | undefined {
  const i = err.detail?.batchIndex;
  return typeof i === 'number' ? i : undefined;
}

/** `err` placed at event `batchIndex` of its request (its whole message becomes the problem). */
export function inEvent(err: SteleError, batchIndex: number): SteleError {
  return new SteleError(err.code, err.message, { ...eventAt(batchIndex, err.detail), cause: err.cause });
}

/** `err` with its place named `at` for people instead (e.g. a source's "items[3]"); the detail stays. */
export function relabel(err: SteleError, at: string, problem = err.problem): SteleError {
  return new SteleError(err.code, problem, { at, ...(err.detail ? { detail: err.detail } : {}), cause: err.cause });
}

/**
 * The one form in which an error crosses a thread boundary (ingest workers, the index thread, the
 * integrator thread): plain data for postMessage. A non-SteleError travels as 'internal' with its
 * message, which stays in the server's log and is not sent to clients.
 */
export interface WireError {
  code: ErrorCode;
  problem: string;
  at?: string;
  detail?: ErrorDetail;
  /** The cause's message, for the log. */
  cause?: string;
}

export function toWire(err: unknown): WireError {
  const e = asSteleError(err);
  const cause = e.cause instanceof Error ? e.cause.message : e.cause === undefined ? undefined : String(e.cause);
  return {
    code: e.code,
    problem: e.problem,
    ...(e.at ? { at: e.at } : {}),
    ...(e.detail ? { detail: e.detail } : {}),
    ...(cause !== undefined && cause !== e.problem ? { cause } : {}),
  };
}

export function fromWire(w: WireError): SteleError {
  return new SteleError(w.code, w.problem, {
    ...(w.at ? { at: w.at } : {}),
    ...(w.detail ? { detail: w.detail } : {}),
    ...(w.cause !== undefined ? { cause: new Error(w.cause) } : {}),
  });
}

/**
 * Whether `err` is a networked store's connection failing (refused, reset, timed out, or
 * PostgreSQL's SQLSTATE classes 08 connection exception and 57P operator intervention, e.g. a
 * restart): worth trying again, unlike an error in the data.
 */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|08...|57P..)$/.test(code))
    return true;
  return err instanceof Error && /Connection terminated|connection timeout/i.test(err.message);
}
