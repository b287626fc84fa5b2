/**
 * Reading git's reflogs from a cursor: the background sender (git-send.ts) learns what happened to
 * HEAD and the branches from the lines git appends to `<git dir>/logs/...` on every ref update, so
 * that no hook has to run per update (git 2.39 runs `reference-transaction` ten times per rebased
 * commit; see docs/sources/git.md).
 *
 * A reflog line is `<old> <new> <name> <<email>> <epoch> <tz>\t<message>`. A cursor is the byte
 * offset read up to and the line that ends there: when the file no longer has that line there
 * (`git reflog expire` rewrote it, or the branch was deleted and made again) the line is looked up
 * elsewhere in the file, and failing that the entries newer than it are taken.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface ReflogEntry {
  old: string;
  new: string;
  email: string;
  /** Seconds since the epoch. */
  epoch: number;
  tz: string;
  message: string;
  /** The line as git wrote it (a branch's and HEAD's line for the same commit are equal). */
  line: string;
}

export interface Cursor {
  at: number;
  /** The line ending at `at` ('' at 0). */
  last: string;
}

const LINE = /^([0-9a-f]{40,64}) ([0-9a-f]{40,64}) [^<]*<([^>]*)> (\d+) ([+-]\d{4})(?:\t(.*))?$/;

export function parseEntry(line: string): ReflogEntry | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  return {
    old: m[1] as string,
    new: m[2] as string,
    email: m[3] as string,
    epoch: Number(m[4]),
    tz: m[5] as string,
    message: m[6] ?? '',
    line,
  };
}

/**
 * The reflogs the sender follows, as paths relative to the common git directory: every worktree's
 * HEAD and every branch. Tags have no reflog unless core.logAllRefUpdates=always; the sender finds
 * tag changes by comparing `for-each-ref` snapshots instead.
 */
export function reflogFiles(commonDir: string): string[] {
  const out: string[] = [];
  if (existsSync(join(commonDir, 'logs', 'HEAD'))) out.push('logs/HEAD');
  let worktrees: string[] = [];
  try {
    worktrees = readdirSync(join(commonDir, 'worktrees'));
  } catch {
    // no linked worktrees
  }
  for (const w of worktrees) {
    if (existsSync(join(commonDir, 'worktrees', w, 'logs', 'HEAD'))) out.push(`worktrees/${w}/logs/HEAD`);
  }
  const walk = (rel: string) => {
    let names: string[];
    try {
      names = readdirSync(join(commonDir, rel));
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const r = `${rel}/${n}`;
      try {
        if (statSync(join(commonDir, r)).isDirectory()) walk(r);
        else out.push(r);
      } catch {
        // deleted while listing
      }
    }
  };
  walk('logs/refs/heads');
  return out;
}

/** The ref a reflog file belongs to: `HEAD` (of a worktree) or `refs/heads/<name>`. */
export function refOfReflog(rel: string): string {
  return rel.endsWith('/HEAD') || rel === 'logs/HEAD' ? 'HEAD' : rel.slice('logs/'.length);
}

function readFrom(path: string, from: number, size: number): string {
  if (size <= from) return '';
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(size - from);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, from + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The file's size, or -1 when it is gone. */
export function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}

/**
 * The complete lines after the cursor, and the cursor after them. A line still being written (no
 * newline yet) is left for the next read.
 */
export function readNew(path: string, cur: Cursor): { entries: ReflogEntry[]; cursor: Cursor } {
  const size = sizeOf(path);
  if (size < 0) return { entries: [], cursor: cur };
  let start = cur.at;
  let afterEpoch = -1;
  const lastLen = Buffer.byteLength(`${cur.last}\n`);
  const stillThere =
    cur.at === 0 || (size >= cur.at && cur.at >= lastLen && readFrom(path, cur.at - lastLen, cur.at) === `${cur.last}\n`);
  let text: string;
  if (stillThere) {
    text = readFrom(path, start, size);
  } else {
    // Rewritten: find the last line read; else take what is newer than it.
    const all = readFrom(path, 0, size);
    const i = cur.last ? all.indexOf(`${cur.last}\n`) : -1;
    if (i >= 0) {
      start = Buffer.byteLength(all.slice(0, i + cur.last.length + 1));
      text = all.slice(i + cur.last.length + 1);
    } else {
      start = 0;
      text = all;
      afterEpoch = parseEntry(cur.last)?.epoch ?? -1;
    }
  }
  const end = text.lastIndexOf('\n');
  if (end < 0) return { entries: [], cursor: stillThere ? cur : { at: start, last: cur.last } };
  const complete = text.slice(0, end);
  const lines = complete.split('\n');
  const entries: ReflogEntry[] = [];
  for (const l of lines) {
    const e = parseEntry(l);
    if (e && e.epoch >= afterEpoch && l !== cur.last) entries.push(e);
  }
  return {
    entries,
    cursor: { at: start + Buffer.byteLength(complete) + 1, last: lines[lines.length - 1] as string },
  };
}

/** A cursor at the end of the file as it is now (what was there before installing is not reported). */
export function cursorAtEnd(path: string): Cursor {
  const size = sizeOf(path);
  if (size <= 0) return { at: 0, last: '' };
  const text = readFrom(path, 0, size);
  const end = text.lastIndexOf('\n');
  if (end < 0) return { at: 0, last: '' };
  const before = text.slice(0, end);
  return { at: Buffer.byteLength(before) + 1, last: before.slice(before.lastIndexOf('\n') + 1) };
}
