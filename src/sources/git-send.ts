/**
 * The background sender of the client git hooks: one per repository (its common git directory),
 * started by a hook when none runs, and staying a little while so that a burst (a rebase, a series
 * of commits) starts Node once. The hooks only append a line to `<git dir>/stele/spool` and start
 * it; everything else is here: reading the reflogs git writes anyway (what happened to HEAD and the
 * branches, see git-reflog.ts) and the spool (pushes), building the events (git-events.ts), and
 * sending them with retries.
 *
 * Exactly once: each round turns what is new into events and writes them, with the cursors that
 * say they were read, into `state.json` in one atomic rename, so an event is made once; sending is
 * retried until the server has taken it, and a batch sent again after a crash is stored once
 * because every event's id is deterministic (a repeated id answers with its first index).
 *
 * One sender at a time: `stele/sender.pid` is created exclusively (by the hook, `set -C`, or by
 * `stele hooks drain`) and holds the sender's pid; a file whose process is gone, or that the sender
 * has not touched for a minute, is stale. Before exiting, the sender removes it and looks for new
 * work once more: a hook that saw the file appended to the spool before, so that work is found.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { homedir, hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { envValue, processEnv } from '../core/config/env.js';
import { setting } from '../core/config/resolve.js';
import { processAlive } from '../core/process.js';
import {
  type Context,
  commitEvent,
  isoUtc,
  type Json,
  makesCommit,
  type Push,
  parseCommit,
  pushEvent,
  type RawCommit,
  type RefUpdate,
  refUpdateEvent,
} from './git-events.js';
import { type Cursor, cursorAtEnd, parseEntry, type ReflogEntry, readNew, reflogFiles, sizeOf } from './git-reflog.js';

export interface SenderPaths {
  common: string;
  dir: string;
  spool: string;
  state: string;
  lock: string;
  rejected: string;
  log: string;
}

export function senderPaths(commonDir: string): SenderPaths {
  const common = resolve(commonDir);
  const dir = join(common, 'stele');
  return {
    common,
    dir,
    spool: join(dir, 'spool'),
    state: join(dir, 'state.json'),
    lock: join(dir, 'sender.pid'),
    rejected: join(dir, 'rejected.ndjson'),
    log: join(dir, 'log'),
  };
}

export interface State {
  v: 1;
  /** Bytes of the spool read. */
  spool: number;
  /** Bytes of the rotated spool (spool.1) read, while it exists. */
  spoolOld?: number;
  /** Per reflog file (relative to the common git directory). */
  logs: Record<string, Cursor>;
  /** refs/heads and refs/tags as last seen: deletions and tags have no reflog to read. */
  refs: Record<string, string>;
  /** Commits already made into events (the newest few thousand), so that none is sent twice. */
  seen: string[];
  /** Events made and not yet taken by the server. */
  outbox: Json[];
  /** How many times a sender started (the benchmark counts them). */
  starts: number;
}

const ZERO = /^0+$/;
const SEEN_MAX = 5000;
const BATCH = 500;
const SPOOL_ROTATE = 256 * 1024;
const QUIET_MS = 300;
const MAX_WAIT_MS = 5000;

// ---------------------------------------------------------------------------------------------
// git

/** The hook's environment without what points git at a worktree or index (the sender reads the common directory). */
function gitEnv(): NodeJS.ProcessEnv {
  const env = { ...processEnv() };
  for (const k of [
    'GIT_DIR',
    'GIT_WORK_TREE',
    'GIT_INDEX_FILE',
    'GIT_PREFIX',
    'GIT_COMMON_DIR',
    'GIT_EDITOR',
    'GIT_REFLOG_ACTION',
  ])
    delete env[k];
  return env;
}

function git(common: string, args: string[], input?: string): string {
  return execFileSync('git', ['--git-dir', common, ...args], {
    env: gitEnv(),
    encoding: 'utf8',
    input,
    maxBuffer: 1 << 28,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function gitOk(common: string, args: string[]): boolean {
  return spawnSync('git', ['--git-dir', common, ...args], { env: gitEnv(), stdio: 'ignore' }).status === 0;
}

/** Commit objects by sha (`git cat-file --batch`, one process for all of them); what is not a commit is left out. */
export function readCommits(common: string, shas: Iterable<string>): Map<string, RawCommit> {
  const list = [...new Set(shas)];
  const out = new Map<string, RawCommit>();
  if (list.length === 0) return out;
  const buf = execFileSync('git', ['--git-dir', common, 'cat-file', '--batch'], {
    env: gitEnv(),
    input: `${list.join('\n')}\n`,
    maxBuffer: 1 << 28,
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  let at = 0;
  while (at < buf.length) {
    const nl = buf.indexOf(10, at);
    if (nl < 0) break;
    const [sha, type, size] = buf.subarray(at, nl).toString('utf8').split(' ');
    at = nl + 1;
    if (size === undefined) continue; // "<sha> missing"
    const body = buf.subarray(at, at + Number(size)).toString('utf8');
    at += Number(size) + 1;
    if (type === 'commit') out.set(sha as string, parseCommit(sha as string, body));
  }
  return out;
}

export interface SenderConfig {
  url: string;
  tokenFile?: string;
  timeout: number;
  enabled: boolean;
  repo: string;
}

/** `stele.*` (and what names the repository) from git config; $STELE_URL and $STELE_TOKEN as the shell hooks read them. */
export function readSenderConfig(common: string): SenderConfig {
  let out = '';
  try {
    out = git(common, ['config', '--get-regexp', '^(stele\\.|remote\\.origin\\.url$)']);
  } catch {
    // none set
  }
  const cfg: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf(' ');
    if (line) cfg[i < 0 ? line : line.slice(0, i)] = i < 0 ? '' : line.slice(i + 1);
  }
  const timeout = Number(cfg['stele.timeout']);
  let repo = cfg['stele.repo'] || (cfg['remote.origin.url'] ? stripUrl(cfg['remote.origin.url']) : '');
  if (!repo) repo = basename(common) === '.git' ? realpathSync(dirname(common)) : common;
  return {
    url: setting('url', { url: cfg['stele.url'] || undefined }, processEnv()).replace(/\/+$/, ''),
    ...(cfg['stele.tokenfile'] ? { tokenFile: cfg['stele.tokenfile'] } : {}),
    timeout: Number.isInteger(timeout) && timeout > 0 ? timeout : 10,
    enabled: cfg['stele.enabled'] !== 'false',
    repo,
  };
}

const stripUrl = (u: string) => u.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@]*@/, '$1');

function snapshot(common: string): Record<string, string> {
  const refs: Record<string, string> = {};
  for (const line of git(common, ['for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads', 'refs/tags']).split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0) refs[line.slice(sp + 1)] = line.slice(0, sp);
  }
  return refs;
}

// ---------------------------------------------------------------------------------------------
// State

/**
 * A new state: cursors at the reflogs' ends (what came before is not reported), or, given
 * `sinceEpoch`, before the first entry of that time or later (a sender that finds no state was
 * started by a hook that came first: its own update must be reported).
 */
export function initState(commonDir: string, sinceEpoch?: number): State {
  const common = resolve(commonDir);
  const logs: Record<string, Cursor> = {};
  for (const rel of reflogFiles(common)) {
    const path = join(common, rel);
    if (sinceEpoch === undefined) {
      logs[rel] = cursorAtEnd(path);
      continue;
    }
    const { entries } = readNew(path, { at: 0, last: '' });
    let at = 0;
    let last = '';
    for (const e of entries) {
      if (e.epoch >= sinceEpoch) break;
      at += Buffer.byteLength(e.line) + 1;
      last = e.line;
    }
    logs[rel] = { at, last };
  }
  let refs: Record<string, string> = {};
  try {
    refs = snapshot(common);
  } catch {
    // an empty repository
  }
  return { v: 1, spool: 0, logs, refs, seen: [], outbox: [], starts: 0 };
}

export function loadState(p: SenderPaths): State | undefined {
  try {
    return JSON.parse(readFileSync(p.state, 'utf8')) as State;
  } catch {
    return undefined;
  }
}

/** Atomic replace: a reader (or a sender killed now) sees the old state or the new one. */
export function saveState(p: SenderPaths, s: State): void {
  const tmp = `${p.state}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(s));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, p.state);
}

export function note(p: SenderPaths, message: string): void {
  try {
    writeFileSync(p.log, `${isoUtc(Math.floor(Date.now() / 1000))} ${message}\n`, { flag: 'a' });
    if (statSync(p.log).size > 65536) {
      const keep = readFileSync(p.log, 'utf8').split('\n').slice(-200).join('\n');
      writeFileSync(p.log, keep);
    }
  } catch {
    // nowhere to say it
  }
}

// ---------------------------------------------------------------------------------------------
// Collecting: what is new in the spool and the reflogs, as events

interface Found {
  epoch: number;
  make: () => Json | undefined;
}

/**
 * What has been read and not yet made into events. Reading is cheap (no git) and done every tick,
 * even while the sender waits for git to be quiet, because deleting a branch deletes its reflog: a
 * branch made and deleted in one burst is still seen. The state's cursors are saved only with the
 * events made from what they passed.
 */
export interface Pending {
  spool: string[];
  fresh: Map<string, ReflogEntry[]>;
  /** Reflogs gone since (a branch deleted or renamed), with the last line read of each. */
  gone: Map<string, string>;
  /** spool.1 has been read to its end: remove it once the state says so. */
  oldSpoolRead: boolean;
  changed: boolean;
}

export const newPending = (): Pending => ({
  spool: [],
  fresh: new Map(),
  gone: new Map(),
  oldSpoolRead: false,
  changed: false,
});

/** Reads what is new into `pend`, advancing the cursors of `s` in memory. Whether anything was. */
export function gather(p: SenderPaths, s: State, pend: Pending): boolean {
  const lines = readSpool(p, s, pend);
  let changed = lines.length > 0;
  pend.spool.push(...lines);
  const files = reflogFiles(p.common);
  for (const rel of files) {
    const cur = s.logs[rel] ?? { at: 0, last: '' };
    if (sizeOf(join(p.common, rel)) === cur.at && s.logs[rel]) continue;
    const r = readNew(join(p.common, rel), cur);
    s.logs[rel] = r.cursor;
    if (r.entries.length) pend.fresh.set(rel, [...(pend.fresh.get(rel) ?? []), ...r.entries]);
    changed = true;
  }
  for (const rel of Object.keys(s.logs)) {
    if (files.includes(rel)) continue;
    pend.gone.set(rel, (s.logs[rel] as Cursor).last);
    delete s.logs[rel];
    changed = true;
  }
  pend.changed ||= changed;
  return changed;
}

/** After the state is saved: spool.1 removed once read, the spool rotated once read to its end and large. */
function tidySpool(p: SenderPaths, s: State, pend: Pending): void {
  const old = `${p.spool}.1`;
  if (pend.oldSpoolRead) rmQuiet(old);
  // A hook appending right now still lands in spool.1: it is read in the next round.
  if (s.spoolOld === undefined && s.spool >= SPOOL_ROTATE && s.spool === sizeOf(p.spool)) {
    renameSync(p.spool, old);
    s.spoolOld = s.spool;
    s.spool = 0;
    saveState(p, s);
  }
}

function readSpool(p: SenderPaths, s: State, pend: Pending): string[] {
  const lines: string[] = [];
  const take = (path: string, from: number): number => {
    const size = sizeOf(path);
    if (size <= from) return size < from ? 0 : from;
    const text = readFileSync(path).subarray(from, size).toString('utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) return from;
    lines.push(...text.slice(0, end).split('\n'));
    return from + Buffer.byteLength(text.slice(0, end)) + 1;
  };
  if (s.spoolOld !== undefined) {
    take(`${p.spool}.1`, s.spoolOld);
    delete s.spoolOld;
    pend.oldSpoolRead = true;
  }
  const size = sizeOf(p.spool);
  if (size >= 0 && size < s.spool) s.spool = 0; // replaced
  s.spool = take(p.spool, s.spool);
  return lines.filter((l) => l !== '');
}

function rmQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

/** Whether the spool or a reflog changed since the state was written. */
export function hasNewWork(p: SenderPaths, s: State): boolean {
  if (sizeOf(p.spool) > s.spool || (s.spoolOld !== undefined && existsSync(`${p.spool}.1`))) return true;
  const files = reflogFiles(p.common);
  if (files.length !== Object.keys(s.logs).length) return true;
  return files.some((rel) => sizeOf(join(p.common, rel)) !== s.logs[rel]?.at);
}

function myEmail(common: string): string {
  try {
    return /<([^>]*)>/.exec(git(common, ['var', 'GIT_COMMITTER_IDENT']))?.[1] ?? '';
  } catch {
    return '';
  }
}

function removedBy(common: string, old: string, args: string[]): { shas: string[]; count: number } {
  try {
    const shas = git(common, ['rev-list', old, ...args])
      .split('\n')
      .filter(Boolean);
    return { shas: shas.slice(0, 20), count: shas.length };
  } catch {
    return { shas: [], count: 0 };
  }
}

/**
 * One round: events for what is new, appended to the outbox together with the advanced cursors
 * (one atomic write). `force` compares the refs even when no file changed (drain). Returns how many
 * events were made, or -1 when nothing was new at all.
 */
export function collect(p: SenderPaths, s: State, cfg: SenderConfig, force = false, pend = newPending()): number {
  gather(p, s, pend);
  if (!pend.changed && !force) return -1;
  const files = reflogFiles(p.common);
  const fresh = [...pend.fresh].map(([rel, entries]) => ({ rel, entries }));
  const spoolLines = pend.spool;
  const common = p.common;
  const ctx: Context = { repo: cfg.repo, host: hostname() };
  const found: Found[] = [];
  let refs: Record<string, string> = s.refs;
  try {
    refs = snapshot(common);
  } catch {
    // an empty repository: nothing to compare
  }
  const done = (made: number) => {
    saveState(p, s);
    tidySpool(p, s, pend);
    Object.assign(pend, newPending());
    return made;
  };
  if (!cfg.enabled) {
    s.refs = refs;
    return done(0);
  }

  // Which branch a HEAD line belongs to: git writes the same line to both reflogs.
  const branchOfLine = new Map<string, string>();
  for (const f of fresh) {
    if (f.rel.startsWith('logs/refs/heads/')) for (const e of f.entries) branchOfLine.set(e.line, f.rel.slice('logs/'.length));
  }
  const seen = new Set(s.seen);
  const wanted = new Set<string>();
  for (const f of fresh) for (const e of f.entries) if (!ZERO.test(e.new)) wanted.add(e.new);
  const commits = readCommits(common, wanted);

  for (const f of fresh) {
    const isHead = f.rel.endsWith('HEAD');
    for (const e of f.entries) {
      if (isHead) {
        if (!makesCommit(e.message) || seen.has(e.new)) continue;
        seen.add(e.new);
        const c = commits.get(e.new);
        if (!c) continue;
        const branch = branchOfLine.get(e.line)?.replace(/^refs\/heads\//, '');
        found.push({ epoch: e.epoch, make: () => commitEvent(ctx, c, branch) });
        continue;
      }
      const ref = f.rel.slice('logs/'.length);
      const u = branchUpdate(common, ref, e, commits);
      if (u) found.push({ epoch: e.epoch, make: () => refUpdateEvent(ctx, u) });
    }
  }

  const now = Math.floor(Date.now() / 1000);
  let me: string | undefined;
  const actor = () => {
    me ??= myEmail(common);
    return me;
  };
  // Branches whose reflog is gone and that are gone too: deleted, from the last value their reflog gave.
  const deleted = new Set<string>();
  for (const [rel, last] of pend.gone) {
    const ref = rel.slice('logs/'.length);
    const old = parseEntry(last)?.new;
    if (!ref.startsWith('refs/heads/') || refs[ref] !== undefined || !old || ZERO.test(old)) continue;
    deleted.add(ref);
    const u: RefUpdate = { ref, old, new: ZERO_OID, kind: 'delete', time: isoUtc(now), actor: actor() };
    u.removed = removedBy(common, old, ['--not', '--all']);
    found.push({ epoch: now, make: () => refUpdateEvent(ctx, u) });
  }

  // Tags, and branches without a reflog: compared with the last snapshot.
  for (const ref of new Set([...Object.keys(s.refs), ...Object.keys(refs)])) {
    const before = s.refs[ref];
    const after = refs[ref];
    if (before === after || deleted.has(ref)) continue;
    if (ref.startsWith('refs/heads/') && files.includes(`logs/${ref}`)) continue;
    const time = isoUtc(now);
    const u: RefUpdate = { ref, old: before ?? ZERO_OID, new: after ?? ZERO_OID, kind: 'rewrite', time, actor: actor() };
    if (before === undefined) u.kind = 'create';
    else if (after === undefined) {
      u.kind = 'delete';
      u.removed = removedBy(common, `${before}^{commit}`, ['--not', '--all']);
    } else if (gitOk(common, ['merge-base', '--is-ancestor', `${before}^{commit}`, `${after}^{commit}`])) continue;
    else u.removed = removedBy(common, `${before}^{commit}`, [`^${after}^{commit}`]);
    found.push({ epoch: now, make: () => refUpdateEvent(ctx, u) });
  }
  s.refs = refs;

  for (const line of spoolLines) {
    const push = parsePushLine(common, line, actor);
    if (push) found.push({ epoch: Date.parse(push.time) / 1000 || now, make: () => pushEvent(ctx, push) });
  }

  found.sort((a, b) => a.epoch - b.epoch);
  let made = 0;
  for (const f of found) {
    const ev = f.make();
    if (ev) {
      s.outbox.push(ev);
      made++;
    }
  }
  s.seen = [...seen].slice(-SEEN_MAX);
  return done(made);
}

const ZERO_OID = '0000000000000000000000000000000000000000';

/** A branch's reflog entry as a ref update: creations and rewrites; a fast-forward is just its commits. */
function branchUpdate(common: string, ref: string, e: ReflogEntry, commits: Map<string, RawCommit>): RefUpdate | undefined {
  const base = { ref, old: e.old, new: e.new, time: isoUtc(e.epoch), actor: e.email, reflog: e.message };
  if (ZERO.test(e.old)) return { ...base, kind: 'create' };
  if (ZERO.test(e.new)) return { ...base, kind: 'delete', removed: removedBy(common, e.old, ['--not', '--all']) };
  if (e.old === e.new) return undefined;
  if (commits.get(e.new)?.parents.includes(e.old)) return undefined;
  if (gitOk(common, ['merge-base', '--is-ancestor', e.old, e.new])) return undefined;
  return { ...base, kind: 'rewrite', removed: removedBy(common, e.old, [`^${e.new}`]) };
}

/** `push <time> <remote> <url> <local ref> <local sha> <remote ref> <remote sha>`, tab-separated up to the last four. */
function parsePushLine(common: string, line: string, actor: () => string): Push | undefined {
  const f = line.split('\t');
  if (f[0] !== 'push' || f.length < 5) return undefined;
  const [localRef, localSha, remoteRef, remoteSha] = (f[4] as string).split(' ');
  if (!localRef || !remoteRef || !/^[0-9a-f]{40,64}$/.test(localSha ?? '') || !/^[0-9a-f]{40,64}$/.test(remoteSha ?? ''))
    return undefined;
  const p: Push = {
    time: f[1] as string,
    actor: actor(),
    remote: f[2] as string,
    url: stripUrl((f[3] as string) || (f[2] as string)),
    localRef,
    localSha: localSha as string,
    remoteRef,
    remoteSha: remoteSha as string,
    kind: 'rewrite',
  };
  const count = () => {
    try {
      return Number(git(common, ['rev-list', '--count', p.localSha, `^${p.remoteSha}`]).trim());
    } catch {
      return undefined;
    }
  };
  if (ZERO.test(p.remoteSha)) p.kind = 'create';
  else if (ZERO.test(p.localSha)) p.kind = 'delete';
  else if (!gitOk(common, ['cat-file', '-e', `${p.remoteSha}^{commit}`])) p.kind = 'unknown';
  else {
    if (gitOk(common, ['merge-base', '--is-ancestor', p.remoteSha, p.localSha])) p.kind = 'fast-forward';
    const n = count();
    if (n !== undefined) p.commits = n;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Sending

function token(cfg: SenderConfig): string {
  if (cfg.tokenFile) {
    const file = cfg.tokenFile.startsWith('~/') ? join(homedir(), cfg.tokenFile.slice(2)) : cfg.tokenFile;
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      return '';
    }
  }
  return envValue(processEnv(), 'STELE_TOKEN') ?? '';
}

type Sent = 'ok' | 'refused' | 'failed';

async function post(p: SenderPaths, cfg: SenderConfig, events: Json[]): Promise<Sent> {
  const tok = token(cfg);
  let res: Response;
  try {
    res = await fetch(`${cfg.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', ...(tok ? { authorization: `Bearer ${tok}` } : {}) },
      body: `${events.map((e) => JSON.stringify(e)).join('\n')}\n`,
      signal: AbortSignal.timeout(cfg.timeout * 1000),
    });
  } catch (err) {
    const e = err as Error & { cause?: Error };
    note(p, `cannot reach ${cfg.url}: ${e.cause?.message ?? e.message}`);
    return 'failed';
  }
  const body = (await res.text().catch(() => '')).slice(0, 600);
  if (res.status === 200) return 'ok';
  // Refused for its content (409: its id is taken by a different event): no retry changes that.
  if ([400, 409, 413, 422].includes(res.status)) {
    note(p, `refused (${res.status}): ${body}`);
    return 'refused';
  }
  note(p, `${cfg.url} answered ${res.status}: ${body}`);
  return 'failed';
}

/** Sends the outbox in batches; a refused batch one event at a time, refused ones to rejected.ndjson. */
export async function sendOutbox(p: SenderPaths, s: State, cfg: SenderConfig): Promise<boolean> {
  while (s.outbox.length) {
    const batch = s.outbox.slice(0, BATCH);
    const r = await post(p, cfg, batch);
    if (r === 'failed') return false;
    if (r === 'refused') {
      for (const ev of batch) {
        const one = await post(p, cfg, [ev]);
        if (one === 'failed') return false;
        if (one === 'refused') writeFileSync(p.rejected, `${JSON.stringify(ev)}\n`, { flag: 'a' });
        s.outbox.shift();
        saveState(p, s);
      }
      continue;
    }
    s.outbox.splice(0, batch.length);
    saveState(p, s);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The lock and the loop

function lockHolder(p: SenderPaths): { pid: number; stale: boolean } | undefined {
  let text: string;
  let mtime: number;
  try {
    text = readFileSync(p.lock, 'utf8');
    mtime = statSync(p.lock).mtimeMs;
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  const old = Date.now() - mtime > 60_000;
  return { pid, stale: !Number.isInteger(pid) || pid <= 0 ? old : !processAlive(pid) || old };
}

function tryLock(p: SenderPaths): boolean {
  try {
    writeFileSync(p.lock, `${process.pid}\n`, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const h = lockHolder(p);
    if (h?.stale) {
      rmQuiet(p.lock);
      return tryLock(p);
    }
    return false;
  }
}

const owns = (p: SenderPaths) => lockHolder(p)?.pid === process.pid;

export interface RunOptions {
  /** Started by a hook (which wrote our pid into the lock) and staying `lingerMs` after the last activity. */
  background: boolean;
  lingerMs?: number;
  tickMs?: number;
  /** Foreground: how long to wait for a running sender to finish. */
  waitMs?: number;
}

export interface RunResult {
  sent: boolean;
  queued: number;
  /** The lock was not ours to take in time (another sender is at work). */
  busy?: boolean;
}

/** Runs the sender for a repository: the background loop, or one foreground drain. */
export async function runSender(commonDir: string, opts: RunOptions): Promise<RunResult> {
  const p = senderPaths(commonDir);
  mkdirSync(p.dir, { recursive: true });
  if (opts.background) {
    // The hook writes our pid right after starting us; anything else is another sender's.
    let waited = 0;
    while (!owns(p)) {
      if (waited >= 2000) return { sent: false, queued: 0, busy: true };
      await sleep(20);
      waited += 20;
    }
  } else {
    let waited = 0;
    while (!tryLock(p)) {
      if (waited >= (opts.waitMs ?? 30_000)) return { sent: false, queued: loadState(p)?.outbox.length ?? 0, busy: true };
      await sleep(100);
      waited += 100;
    }
  }
  const linger = opts.background ? (opts.lingerMs ?? 2000) : 0;
  const tick = opts.tickMs ?? 100;
  // In a burst (a rebase) git is busy: the sender waits for it to be quiet so as not to take the CPU
  // it needs, and does the round then (or after MAX_WAIT, so a long burst is still sent as it goes).
  const quiet = opts.background ? QUIET_MS : 0;
  const pend = newPending();
  let changedAt = 0;
  let pendingSince = 0;
  const s = loadState(p) ?? initState(p.common, Math.floor(Date.now() / 1000) - 60);
  s.starts = (s.starts ?? 0) + (opts.background ? 1 : 0);
  saveState(p, s);
  let cfg: SenderConfig | undefined;
  let lastActivity = Date.now();
  let failures = 0;
  let nextSend = 0;
  let lastOk = true;
  let first = true;
  for (;;) {
    if (!owns(p)) return { sent: false, queued: s.outbox.length, busy: true };
    try {
      utimesSync(p.lock, new Date(), new Date());
    } catch {
      // removed under us: owns() says so next round
    }
    const now = Date.now();
    if (gather(p, s, pend)) {
      changedAt = now;
      lastActivity = now;
      pendingSince ||= now;
    }
    const work = first || (pend.changed && (now - changedAt >= quiet || now - pendingSince >= MAX_WAIT_MS));
    if (work) {
      pendingSince = 0;
      cfg = readSenderConfig(p.common); // it may have changed (a new URL) since the last round
      collect(p, s, cfg, first, pend);
      first = false;
    }
    if (s.outbox.length && Date.now() >= nextSend) {
      cfg ??= readSenderConfig(p.common);
      if (!cfg.enabled) s.outbox = [];
      lastOk = await sendOutbox(p, s, cfg);
      if (lastOk) failures = 0;
      else {
        failures++;
        nextSend = Date.now() + Math.min(30_000, 500 * 2 ** failures);
      }
    }
    const idle = Date.now() - lastActivity >= linger;
    if (idle && !pend.changed && (s.outbox.length === 0 || !lastOk)) {
      rmQuiet(p.lock);
      // A hook that found the lock before it went appended to the spool first: look once more.
      if (!hasNewWork(p, s) || !tryLock(p)) return { sent: lastOk && s.outbox.length === 0, queued: s.outbox.length };
      continue;
    }
    await sleep(tick);
  }
}
