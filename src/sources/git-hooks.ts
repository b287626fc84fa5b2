/**
 * Installing the git hooks (clients/git/stele-hook) into a repository: the hooks directory git
 * really uses (core.hooksPath respected), existing hooks kept and chained rather than overwritten,
 * idempotent, and the `stele.*` git config the hooks read. `stele hooks install|uninstall|status|drain`
 * (src/cli/commands/hooks.ts) are thin over these.
 *
 * What the hooks record (the events' shape) is documented in docs/sources/git.md;
 * the script itself is POSIX sh so that it runs wherever git does, servers included.
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

/** The hook script shipped with Stele (this file is dist/src/sources/git-hooks.js; the script is clients/git/). */
export const HOOK_SCRIPT = fileURLToPath(new URL('../../../clients/git/stele-hook', import.meta.url));
/** Its name in the hooks directory. */
export const SCRIPT_NAME = 'stele-hook';
/** A line every hook file Stele writes carries. */
export const MARKER = '# stele-hooks:';
const SCRIPT_MARKER = 'stele-hook: records a git repository';
/** Suffix of a hook that was there before Stele's, which Stele's runs first. */
export const CHAINED_SUFFIX = '.pre-stele';

export const CLIENT_HOOKS = ['post-commit', 'reference-transaction', 'pre-push'] as const;
export const SERVER_HOOKS = ['post-receive', 'pre-receive'] as const;
const ALL_HOOKS = [...CLIENT_HOOKS, ...SERVER_HOOKS];

/** What each hook file says it does (its second line). */
const PURPOSE: Record<string, string> = {
  'post-commit': 'records each new commit (git.commit)',
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

const atLeast = (v: number[], want: number[]) => {
  for (let i = 0; i < want.length; i++) {
    if ((v[i] ?? 0) !== (want[i] as number)) return (v[i] ?? 0) > (want[i] as number);
  }
  return true;
};

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
  if (!opts.server && !atLeast(repo.gitVersion, [2, 28])) {
    warnings.push(
      `git ${repo.gitVersion.join('.')} has no reference-transaction hook (git 2.28 and later): amend, rebase and reset ` +
        'are recorded only as the commits post-commit sees',
    );
  }
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
  if (exists(scriptPath) && !readFileSync(scriptPath, 'utf8').includes(SCRIPT_MARKER)) {
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
    queue: join(repo.gitDir, 'stele-queue.ndjson'),
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

  const scriptChanged = writeIfChanged(scriptPath, readFileSync(HOOK_SCRIPT, 'utf8'));
  if (scriptChanged) report.installed.push(SCRIPT_NAME);
  for (const name of wanted) {
    const path = join(repo.hooksDir, name);
    if (exists(path) && !isOurs(path)) {
      renameSync(path, `${path}${CHAINED_SUFFIX}`);
      report.chained.push(name);
    }
    if (writeIfChanged(path, hookFile(name))) report.installed.push(name);
    else report.unchanged.push(name);
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
}

/** `stele hooks uninstall`: removes Stele's hooks, restores the chained ones; leaves config and queue. */
export function uninstallHooks(opts: { repo?: string }): UninstallReport {
  const repo = findRepo(opts.repo ?? '.');
  const report: UninstallReport = { hooksDir: repo.hooksDir, removed: [], restored: [], queued: queuedEvents(repo.gitDir) };
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
  return report;
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

function queuedEvents(gitDir: string): number {
  return lines(join(gitDir, 'stele-queue.ndjson')) + lines(join(gitDir, 'stele-queue.sending.ndjson'));
}

/** The repository's `stele.*` git config (keys lower-cased, as git prints them). */
export function readConfig(base: string): Record<string, string> {
  let out = '';
  try {
    out = git(base, ['config', '--get-regexp', '^stele\\.']);
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

export function hooksStatus(opts: { repo?: string }): HooksStatus {
  const repo = findRepo(opts.repo ?? '.');
  const log = join(repo.gitDir, 'stele-hook.log');
  let problems: string[] = [];
  try {
    problems = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-5);
  } catch {
    // no log: no problems
  }
  return {
    hooksDir: repo.hooksDir,
    hooks: ALL_HOOKS.filter((n) => isOurs(join(repo.hooksDir, n))).map((name) => ({
      name,
      chained: exists(join(repo.hooksDir, `${name}${CHAINED_SUFFIX}`)),
    })),
    config: readConfig(repo.base),
    queued: queuedEvents(repo.gitDir),
    rejected: lines(join(repo.gitDir, 'stele-queue.rejected.ndjson')),
    queue: join(repo.gitDir, 'stele-queue.ndjson'),
    rejectedFile: join(repo.gitDir, 'stele-queue.rejected.ndjson'),
    log,
    problems,
  };
}

/** Sends what is queued now, in the foreground (the installed script's `drain --wait`). */
export function drainQueue(opts: { repo?: string }): { sent: boolean; queued: number } {
  const repo = findRepo(opts.repo ?? '.');
  const script = join(repo.hooksDir, SCRIPT_NAME);
  if (!existsSync(script))
    throw new SteleError('not_installed', `no ${SCRIPT_NAME} in ${repo.hooksDir}: run stele hooks install first`);
  let sent = true;
  try {
    execFileSync('sh', [script, 'drain', '--wait'], { cwd: repo.base, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    sent = false;
  }
  return { sent, queued: queuedEvents(repo.gitDir) };
}
