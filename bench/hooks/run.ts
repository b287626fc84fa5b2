/**
 * `npm run bench:hooks`: what the git hooks add to git, in one run, against a real `stele serve`.
 *
 * The same operations (commits, amends, a 100-commit `git rebase`, pushes to a local bare
 * repository) in copies of one prepared repository, each copy with other hooks:
 *   none          no hooks at all
 *   empty         empty post-commit and pre-push (`exit 0`): the floor of running the hooks we install
 *   empty + r-t   the same plus an empty reference-transaction: the floor an earlier version hit
 *   stele         `stele hooks install`, the log up
 *   stele (down)  the same, the log's URL refusing connections
 *   v1 (before)   the shell hooks of version 1 (post-commit, reference-transaction, pre-push running
 *                 clients/git/stele-hook in the foreground), the log up; fewer operations, it is slow
 * and how many times git runs each hook per operation (counting hooks), so that the time can be
 * put where it goes. Afterwards: what the sender delivered (each commit once) and how many times
 * Node started for the rebase burst.
 *
 * Prints the section and rewrites only the `<!-- bench:hooks -->` section of BENCHMARKS.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { HOOK_SCRIPT, hookFile, SCRIPT_NAME } from '../../src/sources/git-hooks.js';
import { CLI, cleanup, initDir, SteleServer, sleep, tempDir } from '../../test/helpers/stele.js';
import { BENCHMARKS_MD, sectionMarkers, writeSection } from '../section.js';

const { begin: BEGIN, end: END } = sectionMarkers('hooks');
const log = (s: string) => process.stderr.write(`${s}\n`);

const home = tempDir('stele-bench-hooks-home-');
const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1' };
for (const k of Object.keys(env))
  if (k.startsWith('STELE_') || (k.startsWith('GIT_') && k !== 'GIT_CONFIG_NOSYSTEM')) delete env[k];

const git = (cwd: string, args: string[]) =>
  execFileSync('git', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** Milliseconds one git command takes, from start to exit (the hooks it runs included). */
function timed(cwd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync('git', args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} in ${cwd}: ${r.stderr}`);
  return ms;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
};
const f0 = (n: number) => n.toFixed(0);
const f1 = (n: number) => n.toFixed(1);

const REBASED = 100;

/** One repository: main with one commit, `feature` with REBASED commits, then main moves on; an origin. */
function prepare(root: string): string {
  const repo = join(root, 'template');
  execFileSync('git', ['init', '-q', '-b', 'main', repo], { env });
  git(repo, ['config', 'user.email', 'bench@example.com']);
  git(repo, ['config', 'user.name', 'Bench']);
  writeFileSync(join(repo, 'base'), 'base\n');
  git(repo, ['add', 'base']);
  git(repo, ['commit', '-q', '-m', 'base']);
  git(repo, ['checkout', '-q', '-b', 'feature']);
  for (let i = 0; i < REBASED; i++) {
    writeFileSync(join(repo, `feature-${i}`), `${i}\n`);
    git(repo, ['add', `feature-${i}`]);
    git(repo, ['commit', '-q', '-m', `feature ${i}`]);
  }
  git(repo, ['checkout', '-q', 'main']);
  writeFileSync(join(repo, 'main'), 'moved on\n');
  git(repo, ['add', 'main']);
  git(repo, ['commit', '-q', '-m', 'main moves on']);
  return repo;
}

interface Sizes {
  commits: number;
  amends: number;
  rebases: number;
  rebased: number;
  pushes: number;
}

interface Result {
  name: string;
  sizes: Sizes;
  commit: number[];
  amend: number[];
  rebase: number[];
  push: number[];
  repo: string;
}

/** Adds one pass of the operations to `r`. */
function runOps(r: Result): void {
  const { repo, sizes } = r;
  for (let i = 0; i < sizes.commits; i++) {
    writeFileSync(join(repo, 'work'), `${i}\n`);
    git(repo, ['add', 'work']);
    r.commit.push(timed(repo, ['commit', '-q', '-m', `work ${i}`]));
  }
  for (let i = 0; i < sizes.amends; i++) r.amend.push(timed(repo, ['commit', '-q', '--amend', '-m', `work, amended ${i}`]));
  for (let i = 0; i < sizes.pushes; i++) {
    writeFileSync(join(repo, 'pushed'), `${i}\n`);
    git(repo, ['add', 'pushed']);
    git(repo, ['commit', '-q', '-m', `pushed ${i}`]);
    r.push.push(timed(repo, ['push', '-q', 'origin', 'main']));
  }
  git(repo, ['checkout', '-q', 'feature']);
  const tip = git(repo, ['rev-parse', 'HEAD']);
  for (let i = 0; i < sizes.rebases; i++) {
    git(repo, ['reset', '-q', '--hard', `${tip}~${REBASED - sizes.rebased}`]);
    r.rebase.push(timed(repo, ['rebase', '-q', 'main']));
    git(repo, ['reset', '-q', '--hard', tip]);
  }
  git(repo, ['checkout', '-q', 'main']);
}

/**
 * A hook file run alone, `n` times, as git runs it (cwd the work tree, git's input on stdin): its
 * own cost, without the noise of the git command around it.
 */
function hookAlone(repo: string, hook: string, input: string, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    spawnSync(hook, ['origin', 'https://example.com/x.git'], { cwd: repo, env, input, stdio: ['pipe', 'ignore', 'ignore'] });
    out.push(performance.now() - t0);
  }
  return out;
}

/** A copy of the template with its own bare origin. */
function copy(template: string, root: string, name: string): string {
  const repo = join(root, name);
  cpSync(template, repo, { recursive: true });
  const origin = join(root, `${name}-origin.git`);
  execFileSync('git', ['init', '-q', '--bare', origin], { env });
  git(repo, ['remote', 'add', 'origin', origin]);
  git(repo, ['push', '-q', 'origin', 'main']);
  return repo;
}

function writeHooks(repo: string, hooks: Record<string, string>): void {
  const dir = join(repo, '.git', 'hooks');
  mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(hooks)) writeFileSync(join(dir, name), body, { mode: 0o755 });
}

const ALL_HOOKS = [
  'pre-commit',
  'prepare-commit-msg',
  'commit-msg',
  'post-commit',
  'post-rewrite',
  'post-checkout',
  'post-merge',
  'pre-rebase',
  'pre-push',
  'reference-transaction',
  'post-index-change',
];

/** How many times git runs each hook for each operation (hooks that only count). */
function countHooks(template: string, root: string): Record<string, Record<string, number>> {
  const repo = copy(template, root, 'count');
  const tally = join(root, 'tally');
  writeHooks(repo, Object.fromEntries(ALL_HOOKS.map((h) => [h, `#!/bin/sh\necho ${h} >> '${tally}'\n`])));
  const counts: Record<string, Record<string, number>> = {};
  const op = (label: string, f: () => void) => {
    writeFileSync(tally, '');
    f();
    const c: Record<string, number> = {};
    for (const l of readFileSync(tally, 'utf8').split('\n').filter(Boolean)) c[l] = (c[l] ?? 0) + 1;
    counts[label] = c;
  };
  writeFileSync(join(repo, 'work'), 'x\n');
  git(repo, ['add', 'work']);
  op('commit', () => git(repo, ['commit', '-q', '-m', 'one']));
  op('amend', () => git(repo, ['commit', '-q', '--amend', '-m', 'one, amended']));
  op('push', () => git(repo, ['push', '-q', 'origin', 'main']));
  git(repo, ['checkout', '-q', 'feature']);
  op(`rebase of ${REBASED}`, () => git(repo, ['rebase', '-q', 'main']));
  op('reset --hard', () => git(repo, ['reset', '-q', '--hard', 'HEAD~1']));
  return counts;
}

/** Waits until the repository's sender has stopped; then its state. */
async function senderDone(repo: string): Promise<{ outbox: unknown[]; starts: number }> {
  for (let i = 0; i < 600 && existsSync(join(repo, '.git', 'stele', 'sender.pid')); i++) await sleep(100);
  return JSON.parse(readFileSync(join(repo, '.git', 'stele', 'state.json'), 'utf8')) as { outbox: unknown[]; starts: number };
}

async function main(): Promise<void> {
  const loadStart = loadavg()[0] as number;
  const root = tempDir('stele-bench-hooks-');
  const data = await initDir('bench.hooks/log');
  const server = await SteleServer.start(data.dir);
  const tokenFile = join(root, 'token');
  writeFileSync(tokenFile, `${data.token}\n`, { mode: 0o600 });
  const dead = 'http://127.0.0.1:9';
  try {
    log('preparing a repository with a 100-commit feature branch');
    const template = prepare(root);
    const counts = countHooks(template, root);
    const full: Sizes = { commits: 30, amends: 10, rebases: 3, rebased: REBASED, pushes: 5 };
    const results: Result[] = [];
    const empty = '#!/bin/sh\nexit 0\n';
    const install = (repo: string, url: string) =>
      execFileSync(process.execPath, [CLI, 'hooks', 'install', '--repo', repo, '--url', url, '--token-file', tokenFile], {
        env,
        stdio: 'ignore',
      });
    const variants: [string, (repo: string) => void, Sizes][] = [
      ['none', () => {}, full],
      ['empty', (r) => writeHooks(r, { 'post-commit': empty, 'pre-push': empty }), full],
      ['empty + r-t', (r) => writeHooks(r, { 'post-commit': empty, 'pre-push': empty, 'reference-transaction': empty }), full],
      ['stele', (r) => install(r, server.url), full],
      ['stele (down)', (r) => install(r, dead), full],
      [
        'v1 (before)',
        (r) => {
          writeHooks(r, {
            [SCRIPT_NAME]: readFileSync(HOOK_SCRIPT, 'utf8'),
            'post-commit': hookFile('post-commit'),
            'reference-transaction': hookFile('reference-transaction'),
            'pre-push': hookFile('pre-push'),
          });
          git(r, ['config', 'stele.url', server.url]);
          git(r, ['config', 'stele.tokenFile', tokenFile]);
        },
        { commits: 10, amends: 3, rebases: 1, rebased: 20, pushes: 3 },
      ],
    ];
    for (const [name, setup, sizes] of variants) {
      const repo = copy(template, root, name.replace(/[^a-z0-9]+/g, '-'));
      setup(repo);
      results.push({ name, sizes, commit: [], amend: [], rebase: [], push: [], repo });
    }
    // Two passes, the second in the other order, so that a slow minute of the machine is not one variant's.
    const passes = [results, [...results].reverse()];
    for (const [i, pass] of passes.entries()) {
      for (const r of pass) {
        if (i > 0 && r.name.startsWith('v1')) continue; // slow: once is enough to see it
        const z = r.sizes;
        log(`pass ${i + 1}, ${r.name}: ${z.commits} commits, ${z.amends} amends, ${z.pushes} pushes, ${z.rebases} rebases`);
        runOps(r);
        if (r.name.startsWith('stele')) await senderDone(r.repo);
        else await sleep(1000); // v1's background sends
      }
    }

    // Each hook alone, against an empty hook run the same way.
    const alone = copy(template, root, 'alone');
    install(alone, server.url);
    writeHooks(alone, { empty });
    const head = git(alone, ['rev-parse', 'HEAD']);
    const pushLine = `refs/heads/main ${head} refs/heads/main ${head}\n`;
    const hookDir = join(alone, '.git', 'hooks');
    const hookTimes = {
      empty: hookAlone(alone, join(hookDir, 'empty'), '', 200),
      'post-commit': hookAlone(alone, join(hookDir, 'post-commit'), '', 200),
      'pre-push': hookAlone(alone, join(hookDir, 'pre-push'), pushLine, 200),
    };
    await senderDone(alone);

    // The rebase burst alone, the log up: how many times Node starts, and that everything arrives.
    const burst = copy(template, root, 'burst');
    install(burst, server.url);
    git(burst, ['checkout', '-q', 'feature']);
    const t0 = performance.now();
    const rebaseMs = timed(burst, ['rebase', '-q', 'main']);
    const state = await senderDone(burst);
    const deliveredMs = performance.now() - t0;
    const res = await fetch(`${server.url}/v1/events?q=${encodeURIComponent('action:git.commit')}&limit=1000`, {
      headers: { authorization: `Bearer ${data.token}` },
    });
    const hits = ((await res.json()) as { hits: { event: { data: { repo: string } } }[] }).hits.filter(
      (h) => h.event.data.repo === `${burst}-origin.git`, // events name a repository by its origin
    );

    const md = render(results, counts, hookTimes, {
      load: [loadStart, loadavg()[0] as number],
      rebaseMs,
      deliveredMs,
      starts: state.starts,
      commitsStored: hits.length,
      outbox: state.outbox.length,
    });
    process.stdout.write(`${md}\n`);
    writeSection('hooks', md);
    log(`wrote the bench:hooks section of ${BENCHMARKS_MD}`);
  } finally {
    await server.stop();
    await cleanup();
  }
}

interface Burst {
  rebaseMs: number;
  deliveredMs: number;
  starts: number;
  commitsStored: number;
  outbox: number;
  /** The 1-minute load average at the start and the end: the machine may be shared. */
  load: [number, number];
}

function render(
  results: Result[],
  counts: Record<string, Record<string, number>>,
  hookTimes: Record<string, number[]>,
  burst: Burst,
): string {
  const base = results.find((r) => r.name === 'none') as Result;
  const med = (xs: number[]) => pct(xs, 50);
  const rebasePer100 = (r: Result) => (med(r.rebase) * 100) / r.sizes.rebased;
  const rows = results.map((r) => {
    const added = (xs: number[], b: number[]) => `${f1(med(xs) - med(b))} / ${f1(pct(xs, 95) - pct(b, 95))}`;
    return (
      `| ${r.name} | ${f1(med(r.commit))} / ${f1(pct(r.commit, 95))} | ${added(r.commit, base.commit)} | ` +
      `${f1(med(r.amend))} | ${f0(rebasePer100(r))} | ${f0(rebasePer100(r) - rebasePer100(base))} | ` +
      `${f1(med(r.push))} | ${f1(med(r.push) - med(base.push))} |`
    );
  });
  const ops = Object.keys(counts);
  const hooks = ALL_HOOKS.filter((h) => ops.some((o) => counts[o]?.[h]));
  const countRows = hooks.map((h) => `| ${h} | ${ops.map((o) => counts[o]?.[h] ?? 0).join(' | ')} |`);
  const v1 = results.find((r) => r.name.startsWith('v1')) as Result;
  return [
    BEGIN,
    '',
    '## Git hooks: time added to git (`npm run bench:hooks`)',
    '',
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${f0(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
      `${execFileSync('git', ['version'], { encoding: 'utf8' }).trim()}, /bin/sh → dash. One run, all variants in it, ` +
      'each in its own copy of one prepared repository, against one `stele serve` on 127.0.0.1. ' +
      `Load average (1 min) ${f1(burst.load[0])} at the start, ${f1(burst.load[1])} at the end (on 2 shared cores ` +
      'single numbers are noisy: compare rows of the same run).',
    '',
    `Sizes: two passes (the second in the other order) of ${base.sizes.commits} commits, ${base.sizes.amends} amends, ` +
      `${base.sizes.pushes} pushes to a local bare repository and ${base.sizes.rebases} × \`git rebase\` of ${REBASED} ` +
      `commits (medians and p95 over both); v1 (before), once: ${v1.sizes.commits} commits, ${v1.sizes.amends} amends, ` +
      `${v1.sizes.pushes} pushes, one rebase of ${v1.sizes.rebased} commits (scaled to 100 below). "added" is the ` +
      'difference to "none" (negative: below the noise).',
    '',
    '| hooks | commit ms, median / p95 | added ms, median / p95 | amend ms | rebase of 100, ms | added ms | push ms | added ms |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    'Each hook file run alone 200 times as git runs it (the sender running for the first; the log up), ms — the ' +
      "hook's own share of the time added, without the noise of the git command around it:",
    '',
    '| hook | median | p95 | max |',
    '| --- | --- | --- | --- |',
    ...Object.entries(hookTimes).map(([h, xs]) => `| ${h} | ${f1(pct(xs, 50))} | ${f1(pct(xs, 95))} | ${f1(Math.max(...xs))} |`),
    '',
    `Rebase burst, the log up: \`git rebase\` of ${REBASED} commits took ${f0(burst.rebaseMs)} ms; Node started ` +
      `${burst.starts} time(s); all ${burst.commitsStored} rebased commits were in the log ${f0(burst.deliveredMs)} ms ` +
      `after the rebase began (the sender stays 2 s after the last activity); ${burst.outbox} left queued.`,
    '',
    '### How many times git 2.39 runs each hook',
    '',
    `| hook | ${ops.join(' | ')} |`,
    `| --- | ${ops.map(() => '---').join(' | ')} |`,
    ...countRows,
    '',
    '### Where the time went',
    '',
    '- **Before (v1):** every hook ran `stele-hook`, a 700-line sh script that ran `git` several times, `awk`, ' +
      'a hash per event and started a background `sh` to send: the "v1 (before)" row. With reference-transaction ' +
      'installed git runs a hook ten times per rebased commit (the table above), so a rebase paid for ~1,000 hook ' +
      'processes; even empty, they are the "empty + r-t" row.',
    '- **Now:** the hooks are post-commit and pre-push only, made of shell builtins (no `git`, no `awk`; ' +
      '`date` once per push): one `sh` per commit, close to the "empty" floor. Commits, amends, rebases, resets and ' +
      'branch creations are read by the sender from the reflogs git writes anyway; tags from a ' +
      '`for-each-ref` snapshot, a deleted branch from the last line read of its reflog; pushes from the spool. Node (~0.2 s to start) starts once per burst, in the ' +
      'background; what it costs the rebase is CPU it shares with git on this machine.',
    '- **The log down** changes nothing for git: the hooks do not talk to it; the sender retries with backoff and ' +
      'stops after 2 s of quiet, the next hook or `stele hooks drain` starts it again.',
    '',
    END,
  ].join('\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
