/**
 * CloudTrail log files on disk, for `stele import cloudtrail`: finding them (recursively), reading
 * them (`.json.gz` or `.json`, `{"Records": [...]}`), and the import's state journal, which makes
 * an import resumable.
 *
 * The journal is a JSON Lines file with one line per finished file (path, size, mtime, how many
 * events). A file is skipped on a later run when its path, size and mtime match a line. Lines are
 * appended, never rewritten, so a crash can at worst tear the last line (ignored on load): that
 * file is then sent again, which is harmless because event ids derive from CloudTrail's eventID.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type Env, envValue } from '../core/config/env.js';
import { SteleError } from '../core/errors.js';
import { checkIntegers } from '../ingest/ijson.js';

export interface LogFile {
  /** Absolute path. */
  path: string;
  size: number;
  mtimeMs: number;
}

const LOG_NAME = /\.json(\.gz)?$/i;
/** Digest files (CloudTrail's own integrity chain) sit beside the logs and hold no records. */
const DIGEST_NAME = /CloudTrail-Digest/;

/**
 * The log files named by `args`: files as given (any name), directories searched recursively for
 * `*.json.gz` and `*.json`, skipping CloudTrail digest files; each file once, directories' files in
 * path order (CloudTrail names sort by account, region and time).
 */
export function findLogFiles(args: readonly string[]): { files: LogFile[]; digests: number } {
  const seen = new Set<string>();
  const files: LogFile[] = [];
  let digests = 0;
  const add = (path: string, st: { size: number; mtimeMs: number }) => {
    if (seen.has(path)) return;
    seen.add(path);
    files.push({ path, size: st.size, mtimeMs: st.mtimeMs });
  };
  const walk = (dir: string) => {
    const names = readdirSync(dir).sort();
    for (const name of names) {
      const p = join(dir, name);
      const st = statSync(p, { throwIfNoEntry: false }); // follows symbolic links; a dangling one is skipped
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && LOG_NAME.test(name)) {
        if (DIGEST_NAME.test(name)) digests++;
        else add(p, st);
      }
    }
  };
  for (const a of args) {
    const p = resolve(a);
    if (!existsSync(p)) throw new SteleError('not_found', `${a}: no such file or directory`);
    const st = statSync(p);
    if (st.isDirectory()) walk(p);
    else add(p, st);
  }
  return { files, digests };
}

export type LogFileContent = { kind: 'records'; records: unknown[] } | { kind: 'digest' };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The records of a log file's bytes (gunzipped when they start with the gzip magic), or `digest` for a digest file. */
export function parseLogFile(buf: Buffer, name: string): LogFileContent {
  let raw: Buffer = buf;
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      raw = gunzipSync(buf);
    } catch (err) {
      throw new SteleError('bad_file', `${name}: not a valid gzip file (${(err as Error).message})`, { cause: err });
    }
  }
  let v: unknown;
  let text: string;
  try {
    text = utf8.decode(raw);
    v = JSON.parse(text);
  } catch (err) {
    throw new SteleError('bad_file', `${name}: not a JSON CloudTrail log file (${(err as Error).message})`, { cause: err });
  }
  checkIntegers(text, `${name}: `);
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.Records)) return { kind: 'records', records: o.Records };
    if ('digestEndTime' in o || 'digestPublicKeyFingerprint' in o) return { kind: 'digest' };
  }
  throw new SteleError('bad_file', `${name}: not a CloudTrail log file (expected an object with a "Records" list)`);
}

/** Where the journal of imports into `url` lives by default: $XDG_STATE_HOME/stele (or ~/.local/state/stele). */
export function defaultStatePath(url: string, env: Env): string {
  const base = envValue(env, 'XDG_STATE_HOME') ?? join(homedir(), '.local', 'state');
  const tag = createHash('sha256').update(url.replace(/\/+$/, '')).digest('hex').slice(0, 16);
  return join(base, 'stele', `import-cloudtrail-${tag}.jsonl`);
}

export interface FinishedFile extends LogFile {
  /** Events sent from the file. */
  events: number;
  /** Malformed records left out (reported when the file was imported). */
  malformed: number;
}

/** The journal of finished files (see the module comment). */
export class ImportState {
  private readonly finished = new Map<string, FinishedFile>();

  constructor(readonly path: string) {
    if (!existsSync(path)) return;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        const f = JSON.parse(line) as FinishedFile;
        if (typeof f.path === 'string' && typeof f.size === 'number' && typeof f.mtimeMs === 'number')
          this.finished.set(f.path, f);
      } catch {
        // a torn last line from a crash: that file is imported again
      }
    }
  }

  /** Whether `f`, as it is now, was imported already. */
  isDone(f: LogFile): boolean {
    const d = this.finished.get(f.path);
    return d !== undefined && d.size === f.size && d.mtimeMs === f.mtimeMs;
  }

  get size(): number {
    return this.finished.size;
  }

  /** Records a finished file (after the server acknowledged every event of it). */
  markDone(f: FinishedFile): void {
    if (this.finished.size === 0 && !existsSync(this.path)) mkdirSync(dirname(this.path), { recursive: true });
    const line = {
      path: f.path,
      size: f.size,
      mtimeMs: f.mtimeMs,
      events: f.events,
      malformed: f.malformed,
      at: new Date().toISOString(),
    };
    appendFileSync(this.path, `${JSON.stringify(line)}\n`);
    this.finished.set(f.path, f);
  }
}
