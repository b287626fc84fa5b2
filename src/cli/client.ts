import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultDir } from '../datadir.js';
import { SteleError } from '../errors.js';

export const DEFAULT_LISTEN = '127.0.0.1:7433';
export const defaultUrl = () => process.env.STELE_URL ?? `http://${DEFAULT_LISTEN}`;

/** The token for API calls: --token, then $STELE_TOKEN, then the admin token of the data directory. */
export function resolveToken(opts: { token?: string; dir?: string }): string | undefined {
  if (opts.token) return opts.token;
  if (process.env.STELE_TOKEN) return process.env.STELE_TOKEN;
  const file = join(opts.dir ?? defaultDir(), 'admin.token');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

/** --url and the token every API command needs. */
export function apiTarget(opts: { url?: string; token?: string; dir?: string }): { url: string; token: string } {
  const token = resolveToken(opts);
  if (!token) throw new SteleError('no_token', 'no token: pass --token, set STELE_TOKEN, or point --dir at the data directory');
  return { url: opts.url ?? defaultUrl(), token };
}

/** Calls the Stele API and returns the JSON answer, turning an error answer into a SteleError. */
export async function api<T>(base: string, path: string, init: RequestInit & { token?: string } = {}): Promise<T> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  let res: Response;
  try {
    res = await fetch(`${base.replace(/\/+$/, '')}${path}`, { ...init, headers });
  } catch (err) {
    throw new SteleError('unreachable', `cannot reach ${base}: ${(err as Error).cause ?? (err as Error).message}`, 503);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } & Record<string, unknown> } | undefined)?.error;
    const { code, message, ...detail } = e ?? {};
    throw new SteleError(code ?? 'http_error', `${res.status}: ${message ?? text}`, res.status, detail);
  }
  return body as T;
}

/** The options every API command takes. */
export interface Target {
  url?: string;
  token?: string;
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
