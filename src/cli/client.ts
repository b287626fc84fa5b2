import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Env, envValue, processEnv } from '../core/config/env.js';
import { dataDir, setting } from '../core/config/resolve.js';
import { isErrorCode, SteleError } from '../core/errors.js';

/** The server URL: --url, else $STELE_URL, else the address `stele serve` listens on by default. */
export const serverUrl = (flag: string | undefined, env: Env = processEnv()): string => setting('url', { url: flag }, env);

/** How a command may be given its API token. */
export interface TokenOptions {
  token?: string;
  tokenFile?: string;
  dir?: string;
}

export const NO_TOKEN_MESSAGE =
  'no token: pass --token-file (a file, or - for standard input), set STELE_TOKEN or STELE_TOKEN_FILE, or point --dir at the data directory';

/**
 * The token in a token file's text: its first non-blank line, trimmed (a trailing newline, CRLF
 * or spaces are never part of a key). Pure; throws when there is none.
 */
export function tokenFromText(text: string, where: string): string {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '');
  if (!line) throw new SteleError('no_token', `${where} holds no token`);
  return line.trim();
}

/** Reads a token file (`-`: standard input, to the end), warning when others may read the file. */
export function readTokenFile(path: string): string {
  if (path === '-') return tokenFromText(readFileSync(0, 'utf8'), 'standard input (--token-file -)');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SteleError(
      'no_token',
      `cannot read the token file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    );
  }
  const mode = statSync(path).mode;
  if (mode & 0o077) {
    process.stderr.write(
      `stele: warning: the token file ${path} is readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it\n`,
    );
  }
  return tokenFromText(text, `the token file ${path}`);
}

/**
 * The token for API calls: --token, then --token-file, then $STELE_TOKEN, then $STELE_TOKEN_FILE,
 * then the admin token of the data directory. --token is kept for scripts, but its value is in the
 * process list (/proc/<pid>/cmdline) for every local user to read; the others are not.
 */
export function resolveToken(opts: TokenOptions, env: Env = processEnv()): string | undefined {
  if (opts.token && opts.tokenFile !== undefined) {
    throw new SteleError('bad_option', 'give either --token or --token-file, not both');
  }
  if (opts.token) return opts.token;
  if (opts.tokenFile !== undefined) return readTokenFile(opts.tokenFile);
  const token = envValue(env, 'STELE_TOKEN');
  if (token) return token;
  const tokenFile = envValue(env, 'STELE_TOKEN_FILE');
  if (tokenFile) return readTokenFile(tokenFile);
  const file = join(dataDir(opts.dir, env), 'admin.token');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

/** --url and the token every API command needs. */
export function apiTarget(opts: TokenOptions & { url?: string }, env: Env = processEnv()): { url: string; token: string } {
  const url = serverUrl(opts.url, env);
  const token = resolveToken(opts, env);
  if (!token) throw new SteleError('no_token', NO_TOKEN_MESSAGE);
  return { url, token };
}

/** Sends a request to the Stele API with the token; a connection failure is `unreachable`. */
export async function request(base: string, path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  try {
    return await fetch(`${base.replace(/\/+$/, '')}${path}`, { ...init, headers });
  } catch (err) {
    throw new SteleError('unreachable', `cannot reach ${base}: ${(err as Error).cause ?? (err as Error).message}`, {
      cause: err,
    });
  }
}

/** The SteleError an error answer (`res` not ok, its body `text`) stands for. */
export function answerError(res: Response, text: string): SteleError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const e = (body as { error?: { code?: string; message?: string } & Record<string, unknown> } | undefined)?.error;
  const { code, message, ...detail } = e ?? {};
  // Retry-After (whole seconds) is the HTTP way to say when to come back; the body may say it too.
  const retryAfter = Number(res.headers.get('retry-after') ?? Number.NaN);
  if (detail.retryAfter === undefined && Number.isSafeInteger(retryAfter) && retryAfter >= 0) detail.retryAfter = retryAfter;
  const problem = `${res.status}: ${message ?? text}`;
  // A Stele server's codes are ours; anything else (a proxy's page, another version) keeps its status as data.
  if (isErrorCode(code)) return new SteleError(code, problem, { detail });
  return new SteleError('http_error', problem, {
    detail: { ...detail, httpStatus: res.status, ...(code === undefined ? {} : { remoteCode: code }) },
  });
}

/** Calls the Stele API and returns the JSON answer, turning an error answer into a SteleError. */
export async function api<T>(base: string, path: string, init: RequestInit & { token?: string } = {}): Promise<T> {
  const res = await request(base, path, init);
  const text = await res.text();
  if (!res.ok) throw answerError(res, text);
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined as T;
  }
}

/** The options every API command takes. */
export interface Target {
  url?: string;
  token?: string;
  tokenFile?: string;
  dir?: string;
  json?: boolean;
}

/** Prints a value as indented JSON (--json). */
export const out = (v: unknown): void => {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
};

/** POSTs a JSON body (or none) to the API with the command's token. */
export function post<T>(opts: Target, path: string, body?: unknown): Promise<T> {
  const { url, token } = apiTarget(opts);
  return api<T>(url, path, {
    method: 'POST',
    token,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
}

/**
 * Runs `call` again while the server answers 503 `overloaded` (backpressure: nothing was
 * appended), after the Retry-After it gave, up to `attempts` times in all.
 */
export async function retryOverloaded<T>(call: () => Promise<T>, attempts = 30): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof SteleError) || err.code !== 'overloaded' || n >= attempts) throw err;
      const after = typeof err.detail?.retryAfter === 'number' ? err.detail.retryAfter : 1;
      await new Promise((r) => setTimeout(r, after * 1000));
    }
  }
}

/**
 * Read your writes: resolves once entry `index` is searchable on the server at `url`, with how far
 * the index had got then (`indexed_through`). Each try is a search for that entry with
 * `after=<index>`: the server answers once the entry is searchable, or after its own bound with
 * 503 `index_behind` and a Retry-After, when this tries again, no sooner than that, until
 * `timeoutMs` has passed since the call. Then it throws `index_behind` (with `indexedThrough`, how
 * far the index had got, when the server said). Any other refusal (no `search` right, an index the
 * log does not have) is thrown as it came.
 */
export async function waitSearchable(
  url: string,
  token: string,
  index: number,
  timeoutMs: number,
): Promise<{ indexedThrough: number | undefined }> {
  const deadline = Date.now() + timeoutMs;
  const params = new URLSearchParams({ q: `index:${index}`, limit: '1', after: String(index) });
  let behind: SteleError | undefined;
  const timedOut = () => {
    const through = behind?.detail?.indexedThrough;
    return new SteleError(
      'index_behind',
      `entry ${index} was not searchable within ${timeoutMs / 1000} s` +
        (typeof through === 'number' ? ` (only the entries below ${through} were)` : ''),
      { detail: { ...(typeof through === 'number' ? { indexedThrough: through } : {}) }, cause: behind },
    );
  };
  for (;;) {
    const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
    try {
      const page = await api<{ indexed_through?: number }>(url, `/v1/events?${params}`, { token, signal });
      return { indexedThrough: page.indexed_through };
    } catch (err) {
      if (signal.aborted) throw timedOut();
      if (!(err instanceof SteleError) || err.code !== 'index_behind') throw err;
      behind = err;
    }
    const retryAfter = typeof behind.detail?.retryAfter === 'number' ? behind.detail.retryAfter * 1000 : 1000;
    // Honour Retry-After: no try before it; when it falls past the deadline, stop now.
    if (Date.now() + retryAfter >= deadline) throw timedOut();
    await new Promise((r) => setTimeout(r, retryAfter));
  }
}
