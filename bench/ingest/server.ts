/**
 * `stele serve` as a child process on a fresh data directory, the way an operator runs it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeDir, tempDir, trackChild } from './cleanup.js';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface SteleServer {
  host: string;
  port: number;
  token: string;
  dir: string;
  pid: number;
  /** CPU seconds (user + system) the server has used so far. */
  cpuSeconds(): number;
  /** SIGTERM (the server closes cleanly, which also writes a --cpu-prof profile), then removes the data dir. */
  stop(): Promise<void>;
}

let clkTck = 0;
function ticksPerSecond(): number {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a process, from /proc (Linux); NaN elsewhere. */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds all processes on the machine have used (busy, not idle or iowait), from /proc/stat. */
export function machineBusySeconds(): number {
  try {
    const f = (/^cpu\s+(.*)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? '').trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/**
 * `stele serve` on a fresh data directory, or on `dir` (made by `stele init` before: nodes of a
 * log in PostgreSQL share their configuration), with `args` after the usual ones. stop() removes
 * the directory unless `keepDir` (a cached one).
 */
export async function startStele(
  opts: { cpuProfDir?: string; env?: NodeJS.ProcessEnv; dir?: string; args?: readonly string[]; keepDir?: boolean } = {},
): Promise<SteleServer> {
  const dir = opts.dir ?? tempDir('data');
  if (!opts.dir) execFileSync(process.execPath, [CLI, 'init', '--dir', dir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
  const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
  return startChild(
    [...nodeArgs, CLI, 'serve', '--dir', dir, '--listen', '127.0.0.1:0', '--log-level', 'warn', ...(opts.args ?? [])],
    token,
    dir,
    opts.env,
    !opts.keepDir,
  );
}

/** The bare node:http reference server (bare-server.ts): no Stele, no disk. */
export function startBare(): Promise<SteleServer> {
  return startChild([fileURLToPath(new URL('./bare-server.js', import.meta.url))], 'unused', null, undefined);
}

async function startChild(
  args: string[],
  token: string,
  dir: string | null,
  env: NodeJS.ProcessEnv | undefined,
  /** Whether stop() removes `dir`. */
  remove = true,
): Promise<SteleServer> {
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  trackChild(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-8000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start within 30 s; stderr:\n${stderr}`)), 30_000);
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /listening on http:\/\/[^\s:]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? sig}) before listening; stderr:\n${stderr}`));
    });
  });
  // Keep draining stdout so the child never blocks on a full pipe.
  child.stdout?.resume();

  const pid = child.pid as number;
  return {
    host: '127.0.0.1',
    port,
    token,
    dir: dir ?? '',
    pid,
    cpuSeconds: () => procCpuSeconds(pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        await exited;
        clearTimeout(killer);
      }
      if (child.exitCode !== 0 && child.signalCode !== 'SIGTERM') {
        process.stderr.write(`bench: server ended with ${child.exitCode ?? child.signalCode}; stderr tail:\n${stderr}\n`);
      }
      if (dir && remove) removeDir(dir);
    },
  };
}
