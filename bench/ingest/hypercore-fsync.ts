/**
 * Does hypercore fsync when it appends? Measured, not assumed: run a small append loop in a child
 * process under `strace -f`, with marker syscalls around the appends (an `openat` of a path that
 * cannot exist), and count fsync/fdatasync/sync_file_range/syncfs calls between the markers.
 *
 * Run as a module: `hypercoreSyncCalls()`; the child is this same file with `child <dir>`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeDir, tempDir } from './cleanup.js';

const START = '/nonexistent-stele-bench/MARK-START';
const END = '/nonexistent-stele-bench/MARK-END';
const APPENDS = 20;

export interface SyncCheck {
  appends: number;
  batch: number;
  /** fsync-family calls between the markers, by name. */
  calls: Record<string, number>;
  total: number;
}

function strace(): string | null {
  for (const p of ['/usr/bin/strace', '/bin/strace', '/usr/local/bin/strace']) if (existsSync(p)) return p;
  return null;
}

/** null when strace is not available (or not permitted) on this machine. */
export function hypercoreSyncCalls(): SyncCheck | null {
  const st = strace();
  if (!st) return null;
  const dir = tempDir('hc-strace');
  try {
    const trace = join(dir, 'trace.txt');
    execFileSync(
      st,
      [
        '-f',
        '-qq',
        '-e',
        'trace=fsync,fdatasync,sync_file_range,syncfs,openat',
        '-o',
        trace,
        process.execPath,
        fileURLToPath(import.meta.url),
        'child',
        join(dir, 'core'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 },
    );
    const lines = readFileSync(trace, 'utf8').split('\n');
    const a = lines.findIndex((l) => l.includes(START));
    const b = lines.findIndex((l) => l.includes(END));
    if (a < 0 || b < a) return null;
    const calls: Record<string, number> = {};
    let total = 0;
    for (const l of lines.slice(a + 1, b)) {
      const m = /\b(fsync|fdatasync|sync_file_range|syncfs)\(/.exec(l);
      if (m) {
        calls[m[1] as string] = (calls[m[1] as string] ?? 0) + 1;
        total++;
      }
    }
    return { appends: APPENDS, batch: 1000, calls, total };
  } catch {
    return null;
  } finally {
    removeDir(dir);
  }
}

async function child(dir: string): Promise<void> {
  const require = createRequire(import.meta.url);
  const Hypercore = require('hypercore') as new (
    d: string,
  ) => { ready(): Promise<void>; append(b: Buffer[]): Promise<unknown>; close(): Promise<void> };
  const core = new Hypercore(dir);
  await core.ready();
  const batch = Array.from({ length: 1000 }, (_, i) => Buffer.alloc(450, i & 255));
  await core.append(batch); // the first append may create files; not what is measured
  const mark = (p: string) => {
    try {
      readFileSync(p);
    } catch {
      // ENOENT, as intended: the openat is the marker
    }
  };
  mark(START);
  for (let i = 0; i < APPENDS; i++) await core.append(batch);
  mark(END);
  await core.close();
}

if (process.argv[2] === 'child' && process.argv[3]) {
  child(process.argv[3]).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
