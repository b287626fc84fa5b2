/**
 * Shared helpers for the end-to-end tests: a data directory made with `stele init --json`, a real
 * `stele serve` child process on a free 127.0.0.1 port, appends over HTTP, and the CLI run as a child.
 *
 * Every child process and temporary directory is tracked: `cleanup()` (call it from `after`) kills
 * what is still running and removes the directories, and an exit handler kills leftover children
 * even when a test file dies early.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled CLI: this file is dist/test/helpers/stele.js, the CLI dist/src/cli/main.js. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function killAllNow(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAllNow();
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  });
}

/** Kills every child still running and removes every temporary directory. For `after` hooks. */
export async function cleanup(): Promise<void> {
  const waits = [...children].map((c) => exitOf(c, 5000));
  killAllNow();
  await Promise.all(waits);
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/** A new empty temporary directory, removed by `cleanup`. */
export function tempDir(prefix = 'stele-e2e-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `check` every 100 ms until it holds, instead of a fixed pause a loaded machine may outlast;
 * fails naming `what`, with the last error `check` threw.
 */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    let last: unknown;
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${last ? ` (${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

/** Waits until the log's served checkpoint covers `size` entries. */
export async function checkpointCovers(url: string, size: number): Promise<void> {
  await eventually(`a checkpoint of ${size} entries`, async () => {
    const r = await fetch(`${url}/log/checkpoint`);
    return r.ok && Number((await r.text()).split('\n')[1]) >= size;
  });
}

function exitOf(c: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve({ code: c.exitCode, signal: c.signalCode });
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ code: c.exitCode, signal: c.signalCode }), timeoutMs);
    c.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, for assertions on "the message names the culprit". */
  output: string;
}

/** Runs `stele <args>` to completion (killed after `timeoutMs`). Never rejects on a non-zero exit. */
export function runStele(args: readonly string[], timeoutMs = 60_000, env?: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(env ? { env: { ...process.env, ...env } } : {}),
    });
    children.add(c);
    let stdout = '';
    let stderr = '';
    c.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    c.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', (err) => {
      clearTimeout(timer);
      children.delete(c);
      reject(err);
    });
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(c);
      resolve({ code, signal, stdout, stderr, output: `${stdout}\n${stderr}` });
    });
  });
}

export interface DataDir {
  dir: string;
  origin: string;
  vkey: string;
  token: string;
}

/** `stele init --json` in a new temporary directory (or `dir`). */
export async function initDir(origin = 'e2e.test/log', dir = join(tempDir(), 'data')): Promise<DataDir> {
  const r = await runStele(['init', '--dir', dir, '--origin', origin, '--json']);
  if (r.code !== 0) throw new Error(`stele init failed (${r.code}): ${r.output}`);
  const j = JSON.parse(r.stdout) as { dir: string; origin: string; vkey: string; token: string | null };
  if (!j.token) throw new Error(`stele init did not create ${dir}`);
  return { dir: j.dir, origin: j.origin, vkey: j.vkey, token: j.token };
}

export interface ServeOptions {
  checkpointIntervalMs?: number;
  /** How long to wait for the server to answer /healthz. */
  readyTimeoutMs?: number;
  /** More `stele serve` options (e.g. --tls-cert F, --denial-limit N). */
  args?: string[];
  /** Whether GET /healthz answers 200 at a URL (default: fetch; HTTPS with a private CA needs its own). */
  healthy?: (url: string) => Promise<boolean>;
  /** More environment variables for the server (e.g. S3 credentials). */
  env?: Record<string, string>;
}

/** A `stele serve` child process. */
export class SteleServer {
  private out = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly proc: ChildProcess,
    readonly dir: string,
  ) {
    proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.out += d;
    });
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.out += d;
    });
    this.exited = new Promise((resolve) =>
      proc.on('exit', (code, signal) => {
        children.delete(proc);
        resolve({ code, signal });
      }),
    );
  }

  url = '';

  /** Everything the server printed so far. */
  get output(): string {
    return this.out;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /**
   * Starts `stele serve --dir D --listen 127.0.0.1:0` (the kernel picks a free port; the server
   * prints the address it got) and resolves once GET /healthz answers 200. Rejects with the
   * server's output if it exits or does not come up in time (a failed recovery shows up here).
   */
  static async start(dir: string, opts: ServeOptions = {}): Promise<SteleServer> {
    const args = [CLI, 'serve', '--dir', dir, '--listen', '127.0.0.1:0', '--log-level', 'warn'];
    if (opts.checkpointIntervalMs !== undefined) args.push('--checkpoint-interval', String(opts.checkpointIntervalMs));
    args.push(...(opts.args ?? []));
    const proc = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
    });
    children.add(proc);
    const s = new SteleServer(proc, dir);
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    const state: { early: { code: number | null; signal: NodeJS.Signals | null } | null } = { early: null };
    void s.exited.then((e) => {
      state.early = e;
    });
    try {
      while (!s.url) {
        if (state.early) throw new Error(`stele serve exited (${JSON.stringify(state.early)}) before listening:\n${s.out}`);
        if (Date.now() > deadline) throw new Error(`stele serve did not start listening in time:\n${s.out}`);
        const m = /listening on (https?:\/\/\S+)/.exec(s.out);
        if (m) s.url = m[1] as string;
        else await sleep(10);
      }
      for (;;) {
        if (state.early)
          throw new Error(`stele serve exited (${JSON.stringify(state.early)}) before /healthz answered:\n${s.out}`);
        try {
          if (opts.healthy) {
            if (await opts.healthy(`${s.url}/healthz`)) break;
            throw new Error('/healthz did not answer 200');
          }
          const res = await fetch(`${s.url}/healthz`, { signal: AbortSignal.timeout(2000) });
          if (res.ok) break;
          throw new Error(`/healthz answered ${res.status}: ${await res.text()}`);
        } catch (err) {
          if (Date.now() > deadline)
            throw new Error(`stele serve never answered /healthz (${(err as Error).message}):\n${s.out}`);
        }
        await sleep(20);
      }
    } catch (err) {
      proc.kill('SIGKILL');
      await s.exited;
      throw err;
    }
    return s;
  }

  /** SIGKILL: the crash. Resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.running) this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a clean shutdown), SIGKILL if it takes longer than `timeoutMs`. Resolves with how it exited. */
  async stop(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.proc.kill('SIGTERM');
    const e = await exitOf(this.proc, timeoutMs);
    if (this.running) {
      this.proc.kill('SIGKILL');
      await this.exited;
      throw new Error(`stele serve did not stop within ${timeoutMs} ms of SIGTERM:\n${this.out}`);
    }
    return e;
  }
}

/** A valid event with a client-chosen UUID (a fresh one unless given). */
export function makeEvent(id: string = randomUUID(), n = 0): Record<string, unknown> {
  return {
    id,
    actor: { id: `client-${n % 7}@example.com`, type: 'human' },
    action: 'e2e.test.append',
    source: { kind: 'e2e', host: 'localhost', agent: 'stele-test', version: '1' },
    resource: { type: 'item', id: `item-${n}` },
    outcome: 'success',
    data: { n, pad: 'x'.repeat(n % 64) },
  };
}

export interface Appended {
  id: string;
  index: number;
}

/** Thrown for an HTTP error answer (the server answered, unlike a connection failure). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 500)}`);
  }
}

export type AppendMode = 'single' | 'array' | 'ndjson';

/**
 * POST /v1/events: one event as a JSON object ('single', needs exactly one event), a JSON array, or
 * NDJSON. Resolves with the acknowledged (id, index) pairs; rejects with HttpError on an error
 * answer, or with fetch's TypeError when the connection fails.
 */
export async function appendHttp(
  url: string,
  token: string,
  events: readonly Record<string, unknown>[],
  mode: AppendMode = 'array',
  timeoutMs = 30_000,
): Promise<Appended[]> {
  let body: string;
  let type = 'application/json';
  if (mode === 'single') {
    if (events.length !== 1) throw new Error('mode "single" takes exactly one event');
    body = JSON.stringify(events[0]);
  } else if (mode === 'array') {
    body = JSON.stringify(events);
  } else {
    body = events.map((e) => JSON.stringify(e)).join('\n');
    type = 'application/x-ndjson';
  }
  const res = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': type },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new HttpError(res.status, text);
  return (JSON.parse(text) as { entries: Appended[] }).entries;
}

/**
 * Files under `start` (default: `root`) whose bytes contain `needle`, case-insensitively, as paths
 * relative to `root`: what an erasure test greps a data directory with. Bytes are read as latin1,
 * so a non-ASCII needle must be given as its UTF-8 bytes in latin1.
 */
export function filesContaining(root: string, needle: string, start = root): string[] {
  const n = needle.toLowerCase();
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      try {
        if (statSync(p).isDirectory()) walk(p);
        else if (readFileSync(p).toString('latin1').toLowerCase().includes(n)) out.push(p.slice(root.length + 1));
      } catch (err) {
        // A temporary file renamed meanwhile: its bytes are in the file it became.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  };
  walk(start);
  return out;
}

/** An HTTP answer as tests check it: the status, the body as text, and as a JSON object ({} when it is not one). */
export interface JsonAnswer {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

/** One API request with an optional bearer token and JSON body; never rejects on an error status. */
export async function requestJson(url: string, method = 'GET', token?: string, body?: unknown): Promise<JsonAnswer> {
  const res = await fetch(url, {
    method,
    headers: {
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (an export, a plain-text error): kept as text
  }
  const isObject = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
  return { status: res.status, body: isObject ? (parsed as Record<string, unknown>) : {}, text };
}

/** GET a JSON document (with a bearer token if given); rejects with HttpError on an error answer. */
export async function getJson<T>(url: string, timeoutMs = 30_000, token?: string): Promise<T> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new HttpError(res.status, text);
  return JSON.parse(text) as T;
}

/** GET a text document; rejects with HttpError on an error answer. */
export async function getText(url: string, timeoutMs = 30_000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new HttpError(res.status, text);
  return text;
}

/** GET bytes (a tile or bundle); null on 404. */
export async function getBytes(url: string, timeoutMs = 30_000): Promise<Buffer | null> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status === 404) return null;
  if (!res.ok) throw new HttpError(res.status, await res.text());
  return Buffer.from(await res.arrayBuffer());
}
