/**
 * The API as the signed-in user: every request carries their own credential (an API key or an
 * OpenID Connect token), held in memory only, so the server's access checks and its record of
 * reads apply to the console exactly as to any other client.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface Whoami {
  principal: { kind: string; id: string; method: string; groups: string[]; roles: string[] };
  actions: string[];
  tiers: { read: string[]; search: string[]; export: string[] };
  /** Each tier's retention in days (null: kept forever). */
  retention: Record<string, number | null>;
  origin: string;
  vkey: string;
}

export interface Ingest {
  principal: string;
  method?: string;
  verified?: boolean;
}

/** A search hit: a readable entry, or a gap (an entry the asker may know exists but not read). */
export interface Hit {
  index: number;
  received: string;
  tier: string;
  key?: string;
  ingest?: Ingest;
  event?: Record<string, unknown> & {
    id: string;
    time: string;
    action: string;
    outcome: string;
    actor: { id: string; type: string; verified?: boolean; on_behalf_of?: string };
    source: { kind: string; host?: string; agent?: string };
    resource?: { type: string; id: string };
    subject?: string;
  };
  state?: string;
  erasure?: unknown;
}

/** A legal hold as `GET /v1/holds` lists it. */
export interface Hold {
  id: string;
  reason: string;
  tier: string | null;
  actor: string | null;
  subject: string | null;
  since: string | null;
  until: string | null;
  created: string;
  created_by: string;
  released: string | null;
  released_by: string | null;
  release_reason: string | null;
}

export interface SearchPage {
  hits: Hit[];
  next?: string;
  total?: number;
  indexed_through: number;
}

let token: string | null = null;

export function signIn(t: string): void {
  token = t;
}

export function signOut(): void {
  token = null;
}

export function signedIn(): boolean {
  return token !== null;
}

async function call(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  const res = await fetch(path, { ...init, headers, cache: 'no-store' });
  if (!res.ok) {
    let body: { error?: { code?: string; message?: string } & Record<string, unknown> } = {};
    try {
      body = await res.json();
    } catch {
      // not JSON: the status says it
    }
    const e = body.error ?? {};
    throw new ApiError(res.status, e.code ?? `http_${res.status}`, e.message ?? res.statusText, e);
  }
  return res;
}

/** `signal`: abandons the request (the server then stops work it would only throw away). */
export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await call(path, signal ? { signal } : {})).json() as Promise<T>;
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  return (
    await call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  ).json() as Promise<T>;
}

export async function getText(path: string): Promise<string> {
  return (await call(path)).text();
}

export async function getBytes(path: string): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await (await call(path, { headers: { accept: 'application/octet-stream' } })).arrayBuffer());
}

/** Downloads what `path` answers as a file named `name` (exports), as the user. */
export async function download(path: string, name: string): Promise<void> {
  const blob = await (await call(path)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Follows `GET /v1/stream` (server-sent events) as the user, calling `onHit` for each matching
 * entry in log order; EventSource cannot send a credential, so the stream is read with fetch.
 * Resolves when `signal` aborts; rejects when the stream fails.
 */
export async function follow(q: string, after: number | null, onHit: (h: Hit) => void, signal: AbortSignal): Promise<void> {
  const p = new URLSearchParams({ q });
  if (after !== null) p.set('after', String(after));
  const res = await call(`/v1/stream?${p}`, { signal, headers: { accept: 'text/event-stream' } });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const utf8 = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += utf8.decode(value, { stream: true });
      let end = buf.indexOf('\n\n');
      while (end >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        end = buf.indexOf('\n\n');
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n');
        if (/^event: entry$/m.test(block) && data) onHit(JSON.parse(data) as Hit);
      }
    }
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  }
}
