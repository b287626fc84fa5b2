/**
 * Installing the git hooks into a repository: the hooks directory git really uses (core.hooksPath
 * respected), existing hooks kept and chained rather than overwritten, idempotent, and the `stele.*`
 * git config the hooks read. `stele hooks install|uninstall|status|drain` (src/cli/commands/hooks.ts)
 * are thin over these.
 *
 * Client hooks (post-commit, pre-push) are a few lines of sh builtins written here (`clientHookFile`):
 * they append a line to `<git dir>/stele/spool` and start the background sender (git-send.ts) when
 * none runs; the sender reads the reflogs for commits and rewrites. Server hooks run
 * clients/git/stele-hook, POSIX sh, so that they work where there is no Node.js.
 * What the hooks record (the events' shape) is documented in docs/sources/git.md.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Env, envValue } from '../core/config/env.js';
import { SteleError } from '../core/errors.js';
import { initState, loadState, runSender, saveState, senderPaths } from './git-send.js';

/** The hook script shipped with Stele (this file is dist/src/sources/git-hooks.js; the script is clients/git/). */
export const HOOK_SCRIPT = fileURLToPath(new URL('../../../clients/git/stele-hook', import.meta.url));
/** The client hooks' template (post-commit and pre-push are the same file). */
export const CLIENT_HOOK_SCRIPT = fileURLToPath(new URL('../../../clients/git/stele-client-hook', import.meta.url));
/** Its name in the hooks directory. */
export const SCRIPT_NAME = 'stele-hook';
/** A line every hook file Stele writes carries. */
export const MARKER = '# stele-hooks:';
const SCRIPT_MARKER = 'stele-hook: records a git repository';
/** Suffix of a hook that was there before Stele's, which Stele's runs first. */
export const CHAINED_SUFFIX = '.pre-stele';
/** The background sender the client hooks start (this file is dist/src/sources/git-hooks.js). */
export const SENDER_SCRIPT = fileURLToPath(new URL('../cli/commands/hooks-sender.js', import.meta.url));

export const CLIENT_HOOKS = ['post-commit', 'pre-push'] as const;
/**
 * Client hooks earlier versions installed: removed on install. reference-transaction ran ten times
 * per rebased commit (docs/sources/git.md); the sender reads the same updates from the reflogs.
 */
const RETIRED_HOOKS = ['reference-transaction'] as const;
export const SERVER_HOOKS = ['post-receive', 'pre-receive'] as const;
const ALL_HOOKS = [...CLIENT_HOOKS, ...RETIRED_HOOKS, ...SERVER_HOOKS];

/** What each hook file says it does (its second line). */
const PURPOSE: Record<string, string> = {
  'post-commit':
    'wakes the sender, which records new commits and branch/tag rewrites, creations, deletions from the reflogs (git.commit, git.ref.update)',
  'reference-transaction': 'records new commits and branch/tag rewrites, creations, deletions (git.commit, git.ref.update)',
  'pre-push': 'records pushes (git.push); never blocks one',
  'post-receive': 'records what was pushed, by whom, with signature checks (git.receive)',
  'pre-receive': 'refuses pushes while the audit log is unreachable (--require-log)',
};

export function hookFile(name: string): string {
  return [
    '#!/bin/sh',
    `${MARKER} ${name} ${PURPOSE[name] ?? ''} in the Stele audit log.`,
    `# Installed by \`stele hooks install\`; a ${name} hook that was here before is kept as ${name}${CHAINED_SUFFIX}`,
    '# and run first by stele-hook. Configure with git config stele.* (see stele-hook); remove with `stele hooks uninstall`.',
    `exec sh "$(dirname "$0")/${SCRIPT_NAME}" ${name} "$@"`,
    '',
  ].join('\n');
}

const shq = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/**
 * A client hook: only sh builtins on the way (one process per run, ~3 ms here; `date` once per
 * push), because git runs post-commit for every commit and every rebased one. It finds the common
 * git directory without running git, appends to the spool, and starts the sender unless the pid in
 * `stele/sender.pid` is alive (`set -C`: one hook of a burst creates the file and starts it).
 */
/**
 * A client hook: clients/git/stele-client-hook with the name, Node.js and the sender filled in.
 * Builtins only on the way (one process per run, ~3 ms here), because git runs post-commit for
 * every commit and every rebased one.
 */
export function clientHookFile(name: string, node = process.execPath, sender = SENDER_SCRIPT): string {
  return readFileSync(CLIENT_HOOK_SCRIPT, 'utf8')
    .replaceAll('@NAME@', name)
    .replace('@PURPOSE@', PURPOSE[name] ?? '')
    .replace('@NODE@', shq(node))
    .replace('@SENDER@', shq(sender));
}

function git(cwd: string, args: string[]): string {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trimEnd();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new SteleError('no_git', 'git is not installed (or not on PATH)');
    throw new SteleError('git_failed', `git ${args.join(' ')} in ${cwd}: ${(e.stderr ?? e.message).trim()}`, { cause: e });
  }
}

export interface Repo {
  /** The directory hooks run in: the work tree's top, or the git directory of a bare repository. */
  base: string;
  /** The (common) git directory, where the queue lives. */
  gitDir: string;
  hooksDir: string;
  bare: boolean;
  /** git's version, e.g. [2, 39, 5]. */
  gitVersion: number[];
}

/** Finds the repository at or above `dir` and the hooks directory git uses for it. */
export function findRepo(dir: string): Repo {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new SteleError('not_a_repository', `${abs} does not exist`);
  let bare: boolean;
  try {
    bare = git(abs, ['rev-parse', '--is-bare-repository']) === 'true';
  } catch (err) {
    if (err instanceof SteleError && err.code === 'git_failed')
      throw new SteleError('not_a_repository', `${abs} is not in a git repository`);
    throw err;
  }
  const gitDir = resolve(abs, git(abs, ['rev-parse', '--git-common-dir']));
  const base = bare ? gitDir : git(abs, ['rev-parse', '--show-toplevel']);
  // `--git-path hooks` follows core.hooksPath; a relative one is relative to where hooks run.
  const hooksDir = resolve(base, git(base, ['rev-parse', '--git-path', 'hooks']));
  const v = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(git(abs, ['version']));
  const gitVersion = v ? [Number(v[1]), Number(v[2]), Number(v[3] ?? 0)] : [0, 0, 0];
  return { base, gitDir, hooksDir, bare, gitVersion };
}

const isOurs = (path: string) => {
  try {
    return readFileSync(path, 'utf8').includes(MARKER);
  } catch {
    return false;
  }
};
const exists = (path: string) => {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
};

export interface InstallOptions {
  /** A directory in the repository (default: the current one). */
  repo?: string;
  /** Server hooks (post-receive; pre-receive with requireLog) instead of client hooks. */
  server?: boolean;
  requireLog?: boolean;
  url?: string;
  tokenFile?: string;
  client?: string;
  command?: string;
  timeout?: string;
  /** The repository's name in events (stele.repo). */
  name?: string;
}

export interface InstallReport {
  repo: string;
  hooksDir: string;
  gitDir: string;
  bare: boolean;
  /** Hooks written now (new or changed). */
  installed: string[];
  /** Hooks already up to date. */
  unchanged: string[];
  /** Existing hooks kept as <name>.pre-stele and chained. */
  chained: string[];
  /** Stele hooks removed (pre-receive without --require-log). */
  removed: string[];
  /** git config set in the repository. */
  config: Record<string, string>;
  queue: string;
  warnings: string[];
}

function writeIfChanged(path: string, content: string): boolean {
  const same = existsSync(path) && readFileSync(path, 'utf8') === content;
  if (!same) writeFileSync(path, content);
  chmodSync(path, 0o755);
  return !same;
}

/** Removes Stele's hook `name` and puts back the hook it chained, if any. */
function removeHook(hooksDir: string, name: string): boolean {
  const path = join(hooksDir, name);
  if (!exists(path) || !isOurs(path)) return false;
  unlinkSync(path);
  const chained = `${path}${CHAINED_SUFFIX}`;
  if (exists(chained)) renameSync(chained, path);
  return true;
}

/** `stele hooks install`: idempotent; never overwrites a hook that is not Stele's. `env` tells whether $STELE_TOKEN is set. */
export function installHooks(opts: InstallOptions, env: Env): InstallReport {
  const repo = findRepo(opts.repo ?? '.');
  const warnings: string[] = [];
  if (repo.bare && !opts.server) {
    throw new SteleError(
      'bare_repository',
      `${repo.gitDir} is a bare repository: nobody commits there; install the server hooks with --server`,
    );
  }
  if (opts.requireLog && !opts.server) throw new SteleError('bad_option', '--require-log is for server hooks: add --server');
  if (opts.server && !repo.bare) warnings.push(`${repo.base} is not a bare repository; server hooks run when others push to it`);
  if (opts.client !== undefined && !['auto', 'curl', 'stele'].includes(opts.client)) {
    throw new SteleError('bad_option', `--client must be auto, curl or stele, got "${opts.client}"`);
  }
  if (opts.timeout !== undefined && !/^[1-9][0-9]{0,3}$/.test(opts.timeout)) {
    throw new SteleError('bad_option', `--timeout must be a whole number of seconds from 1 to 9999, got "${opts.timeout}"`);
  }
  if (opts.url !== undefined && !/^https?:\/\/[^\s]+$/.test(opts.url)) {
    throw new SteleError('bad_option', `--url must be an http:// or https:// URL, got "${opts.url}"`);
  }
  let tokenFile: string | undefined;
  if (opts.tokenFile !== undefined) {
    tokenFile = isAbsolute(opts.tokenFile) ? opts.tokenFile : resolve(opts.tokenFile);
    if (!existsSync(tokenFile)) throw new SteleError('bad_option', `--token-file ${tokenFile} does not exist`);
    const mode = statSync(tokenFile).mode;
    if (mode & 0o077) warnings.push(`${tokenFile} is readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  }

  // Others may run these hooks (pushes to a shared bare repository): not owner-only, whatever the umask.
  if (mkdirSync(repo.hooksDir, { recursive: true }) !== undefined) chmodSync(repo.hooksDir, 0o755);
  const scriptPath = join(repo.hooksDir, SCRIPT_NAME);
  if (opts.server && exists(scriptPath) && !readFileSync(scriptPath, 'utf8').includes(SCRIPT_MARKER)) {
    throw new SteleError('hook_conflict', `${scriptPath} exists and is not Stele's; move it away first`);
  }
  const report: InstallReport = {
    repo: repo.base,
    hooksDir: repo.hooksDir,
    gitDir: repo.gitDir,
    bare: repo.bare,
    installed: [],
    unchanged: [],
    chained: [],
    removed: [],
    config: {},
    queue: opts.server ? join(repo.gitDir, 'stele-queue.ndjson') : senderPaths(repo.gitDir).state,
    warnings,
  };
  const wanted: string[] = opts.server ? ['post-receive', ...(opts.requireLog ? ['pre-receive'] : [])] : [...CLIENT_HOOKS];

  // Check every conflict before changing anything.
  for (const name of wanted) {
    const path = join(repo.hooksDir, name);
    if (exists(path) && !isOurs(path) && exists(`${path}${CHAINED_SUFFIX}`)) {
      throw new SteleError(
        'hook_conflict',
        `both ${path} and ${path}${CHAINED_SUFFIX} exist and the first is not Stele's: merge them into one, then install again`,
      );
    }
  }

  if (opts.server && writeIfChanged(scriptPath, readFileSync(HOOK_SCRIPT, 'utf8'))) report.installed.push(SCRIPT_NAME);
  for (const name of wanted) {
    const path = join(repo.hooksDir, name);
    if (exists(path) && !isOurs(path)) {
      renameSync(path, `${path}${CHAINED_SUFFIX}`);
      report.chained.push(name);
    }
    if (writeIfChanged(path, opts.server ? hookFile(name) : clientHookFile(name))) report.installed.push(name);
    else report.unchanged.push(name);
  }
  if (!opts.server) {
    for (const name of RETIRED_HOOKS) if (removeHook(repo.hooksDir, name)) report.removed.push(name);
    startQueue(repo.gitDir);
  }
  if (opts.server && !opts.requireLog && removeHook(repo.hooksDir, 'pre-receive')) report.removed.push('pre-receive');

  const set = (key: string, value: string | undefined) => {
    if (value === undefined) return;
    git(repo.base, ['config', '--local', key, value]);
    report.config[key] = value;
  };
  set('stele.url', opts.url);
  set('stele.tokenFile', tokenFile);
  set('stele.client', opts.client);
  set('stele.command', opts.command);
  set('stele.timeout', opts.timeout);
  set('stele.repo', opts.name);
  if (!tokenFile && !readConfig(repo.base)['stele.tokenfile'] && !envValue(env, 'STELE_TOKEN')) {
    warnings.push('no token: pass --token-file (a file holding an API key, e.g. from stele keys create --name git-hooks ...)');
  }
  return report;
}

export interface UninstallReport {
  hooksDir: string;
  removed: string[];
  /** Hooks put back from <name>.pre-stele. */
  restored: string[];
  /** Events still queued (left in place: `stele hooks drain` before uninstalling sends them). */
  queued: number;
  /** The `stele.*` settings `install` adds, removed from the repository's own config. */
  unset: string[];
}

/** The settings `stele hooks install` may add to a repository's config. */
const INSTALL_KEYS = ['stele.url', 'stele.tokenFile', 'stele.client', 'stele.command', 'stele.timeout', 'stele.repo'];

/** `stele hooks uninstall`: removes Stele's hooks, restores the chained ones, removes the settings install added; leaves the queue. */
export function uninstallHooks(opts: { repo?: string }): UninstallReport {
  const repo = findRepo(opts.repo ?? '.');
  const report: UninstallReport = {
    hooksDir: repo.hooksDir,
    removed: [],
    restored: [],
    queued: queuedEvents(repo.gitDir),
    unset: [],
  };
  for (const name of ALL_HOOKS) {
    const chained = exists(join(repo.hooksDir, `${name}${CHAINED_SUFFIX}`));
    if (removeHook(repo.hooksDir, name)) {
      report.removed.push(name);
      if (chained) report.restored.push(name);
    }
  }
  const script = join(repo.hooksDir, SCRIPT_NAME);
  if (exists(script) && readFileSync(script, 'utf8').includes(SCRIPT_MARKER)) {
    unlinkSync(script);
    report.removed.push(SCRIPT_NAME);
  }
  const local = readConfig(repo.base, ['--local']);
  for (const key of INSTALL_KEYS) {
    if (local[key.toLowerCase()] === undefined) continue;
    git(repo.base, ['config', '--local', '--unset-all', key]);
    report.unset.push(key);
  }
  // An empty [stele] section would stay behind otherwise.
  if (report.unset.length && Object.keys(readConfig(repo.base, ['--local'])).length === 0) {
    try {
      git(repo.base, ['config', '--local', '--remove-section', 'stele']);
    } catch {
      // no section left
    }
  }
  return report;
}

/**
 * The client hooks' queue: `<git dir>/stele/` with the sender's state, its cursors at the reflogs'
 * ends (history from before installing is not reported). Events the shell hooks of earlier versions
 * left queued move into its outbox.
 */
function startQueue(gitDir: string): void {
  const p = senderPaths(gitDir);
  mkdirSync(p.dir, { recursive: true });
  const s = loadState(p) ?? initState(gitDir);
  let moved = false;
  for (const f of ['stele-queue.sending.ndjson', 'stele-queue.ndjson']) {
    const path = join(gitDir, f);
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      try {
        if (line.trim()) s.outbox.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut short by a crash: the shell hooks would have failed to send it too
      }
    }
    unlinkSync(path);
    moved = true;
  }
  if (moved || !existsSync(p.state)) saveState(p, s);
}

function lines(path: string): number {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '').length;
  } catch {
    return 0;
  }
}

/** Events the server hooks' queue holds, and the client sender's outbox. */
function queuedEvents(gitDir: string): number {
  return (
    lines(join(gitDir, 'stele-queue.ndjson')) +
    lines(join(gitDir, 'stele-queue.sending.ndjson')) +
    (loadState(senderPaths(gitDir))?.outbox.length ?? 0)
  );
}

/** The repository's `stele.*` git config (keys lower-cased, as git prints them). */
export function readConfig(base: string, scope: string[] = []): Record<string, string> {
  let out = '';
  try {
    out = git(base, ['config', ...scope, '--get-regexp', '^stele\\.']);
  } catch {
    return {}; // exit 1: none set
  }
  const cfg: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf(' ');
    if (line) cfg[i < 0 ? line : line.slice(0, i)] = i < 0 ? '' : line.slice(i + 1);
  }
  return cfg;
}

export interface HooksStatus {
  hooksDir: string;
  /** Stele's hooks present, and which of them chain an earlier hook. */
  hooks: { name: string; chained: boolean }[];
  config: Record<string, string>;
  queued: number;
  rejected: number;
  queue: string;
  rejectedFile: string;
  log: string;
  /** The last lines of the hooks' log (problems sending). */
  problems: string[];
}

const tail = (path: string) => {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-5);
  } catch {
    return []; // no log: no problems
  }
};

export function hooksStatus(opts: { repo?: string }): HooksStatus {
  const repo = findRepo(opts.repo ?? '.');
  const p = senderPaths(repo.gitDir);
  const client = isOurs(join(repo.hooksDir, 'post-commit')) || existsSync(p.state);
  const log = client ? p.log : join(repo.gitDir, 'stele-hook.log');
  const rejectedFile = client ? p.rejected : join(repo.gitDir, 'stele-queue.rejected.ndjson');
  return {
    hooksDir: repo.hooksDir,
    hooks: ALL_HOOKS.filter((n) => isOurs(join(repo.hooksDir, n))).map((name) => ({
      name,
      chained: exists(join(repo.hooksDir, `${name}${CHAINED_SUFFIX}`)),
    })),
    config: readConfig(repo.base),
    queued: queuedEvents(repo.gitDir),
    rejected: lines(rejectedFile),
    queue: client ? p.state : join(repo.gitDir, 'stele-queue.ndjson'),
    rejectedFile,
    log,
    problems: tail(log),
  };
}

/**
 * Sends what is queued now, in the foreground: the client hooks' sender (after a running one
 * finishes; what the reflogs say that is not sent yet included), and the server hooks' queue
 * (the installed script's `drain --wait`).
 */
export async function drainQueue(opts: { repo?: string }): Promise<{ sent: boolean; queued: number }> {
  const repo = findRepo(opts.repo ?? '.');
  const script = join(repo.hooksDir, SCRIPT_NAME);
  const server = existsSync(script);
  const client = existsSync(senderPaths(repo.gitDir).state);
  if (!server && !client)
    throw new SteleError('not_installed', `no Stele hooks in ${repo.hooksDir}: run stele hooks install first`);
  let sent = true;
  if (client) sent = (await runSender(repo.gitDir, { background: false, waitMs: 60_000 })).sent;
  if (server) {
    try {
      execFileSync('sh', [script, 'drain', '--wait'], { cwd: repo.base, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch {
      sent = false;
    }
  }
  return { sent, queued: queuedEvents(repo.gitDir) };
}
