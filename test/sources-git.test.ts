/**
 * The git hooks (`stele hooks install`: the client hooks and their background sender, the server
 * hooks of clients/git/stele-hook), driven with real `git` in temporary repositories against a real
 * `stele serve`: commits, amend, rebase, reset, pushes to a local bare repository with the server
 * hooks (pusher, SSH-signed commits checked), the log down (commits stay fast, the queue grows) and
 * back (the queue drains), the sender killed with SIGKILL in the middle of a batch (sent again,
 * stored once), one sender per burst, deduplication by commit SHA, and a refused event that must
 * not block the queue.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { commitEventId, derivedId } from '../src/sources/ids.js';
import { CLI, cleanup, type DataDir, eventually, getJson, initDir, runStele, SteleServer, tempDir } from './helpers/stele.js';

type J = Record<string, unknown>;

const HOOK = join(CLI, '..', '..', '..', '..', 'clients', 'git', 'stele-hook');

let data: DataDir;
let server: SteleServer;
let keyFile: string;
let home: string;

/** An environment free of the developer's git and Stele settings. */
function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1', ...extra };
  for (const k of Object.keys(env))
    if (k.startsWith('STELE_') || (k.startsWith('GIT_') && k !== 'GIT_CONFIG_NOSYSTEM')) delete env[k];
  Object.assign(env, extra);
  return env;
}

function git(cwd: string, args: string[], extra: Record<string, string> = {}): string {
  return execFileSync('git', args, { cwd, env: gitEnv(extra), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A new repository with an identity, or a bare one. */
function newRepo(name: string, bare = false): string {
  const dir = join(tempDir('stele-git-'), name);
  execFileSync('git', ['init', '-q', '-b', 'main', ...(bare ? ['--bare'] : []), dir], { env: gitEnv() });
  if (!bare) {
    git(dir, ['config', 'user.email', 'alice@example.com']);
    git(dir, ['config', 'user.name', 'Alice Example']);
  }
  return dir;
}

function commit(repo: string, file: string, content: string, message: string, extra: string[] = []): string {
  writeFileSync(join(repo, file), content);
  git(repo, ['add', file]);
  git(repo, ['commit', '-q', '-m', message, ...extra]);
  return git(repo, ['rev-parse', 'HEAD']);
}

async function stele(args: string[]): Promise<string> {
  const r = await runStele(args);
  assert.equal(r.code, 0, r.output);
  return r.stdout;
}

const install = (repo: string, ...more: string[]) =>
  stele(['hooks', 'install', '--repo', repo, '--url', server.url, '--token-file', keyFile, '--json', ...more]);

/** Sends what the repository's hooks queued, in the foreground (waits for background sends). */
const drain = (repo: string) => stele(['hooks', 'drain', '--repo', repo, '--json']);

interface Hit {
  index: number;
  event: J;
  ingest: J;
}
async function search(q: string): Promise<Hit[]> {
  const r = await getJson<{ hits: Hit[] }>(
    `${server.url}/v1/events?q=${encodeURIComponent(q)}&limit=1000&order=asc`,
    30_000,
    data.token,
  );
  return r.hits;
}
const inRepo = (hits: Hit[], repo: string) => hits.filter((h) => (h.event.data as J).repo === repo);

/** The client sender's state: its outbox (events not yet taken) and how often it was started. */
const senderState = (repo: string) =>
  JSON.parse(readFileSync(join(repo, '.git', 'stele', 'state.json'), 'utf8')) as { outbox: J[]; starts: number };

/** Every event of the repository stored exactly once (ids are what makes a resend harmless). */
async function assertStoredOnce(repo: string): Promise<Hit[]> {
  const hits = inRepo(await search('source:git'), repo);
  const ids = hits.map((h) => h.event.id as string);
  assert.equal(new Set(ids).size, ids.length, 'no event stored twice');
  return hits;
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

before(async () => {
  home = tempDir('stele-git-home-');
  data = await initDir('git.test/log');
  server = await SteleServer.start(data.dir);
  const created = JSON.parse(
    await stele([
      'keys',
      'create',
      '--url',
      server.url,
      '--token',
      data.token,
      '--name',
      'git-hooks',
      '--role',
      'writer',
      '--action',
      'git.*',
      '--json',
    ]),
  ) as { key: string };
  keyFile = join(tempDir('stele-git-key-'), 'key');
  writeFileSync(keyFile, `${created.key}\n`, { mode: 0o600 });
});

after(async () => {
  await server?.stop();
  await cleanup();
});

describe('stele-hook (shell)', () => {
  test('derives the same event ids as src/sources/ids.ts', () => {
    const repo = newRepo('ids');
    const id = (kind: string, key: string) =>
      execFileSync('sh', [HOOK, 'id', kind, key], { cwd: repo, env: gitEnv(), encoding: 'utf8' }).trim();
    const sha = '0123456789abcdef0123456789abcdef01234567';
    assert.equal(id('git.commit', sha), '0adedf62-37a5-884e-bc50-8f690a200306');
    assert.equal(id('git.commit', sha), commitEventId(sha));
    for (const key of [
      'https://example.com/a.git:refs/heads/main:0000:1111',
      `it's "quoted" \\ $(echo no) \`no\` ü 日本`,
      "trailing'",
      '',
    ]) {
      assert.equal(id('git.push', key), derivedId('git.push', key), key);
    }
  });
});

describe('stele hooks install', () => {
  test('follows core.hooksPath, keeps and chains an existing hook, is idempotent; uninstall restores it', async () => {
    const repo = newRepo('install');
    git(repo, ['config', 'core.hooksPath', '.githooks']);
    mkdirSync(join(repo, '.githooks'));
    const mine = '#!/bin/sh\necho "mine $1" >> "$(git rev-parse --git-dir)/mine.log"\nexit 0\n';
    writeFileSync(join(repo, '.githooks', 'pre-push'), mine, { mode: 0o755 });

    // What an earlier version installed: its reference-transaction, chaining the user's own.
    writeFileSync(join(repo, '.githooks', 'reference-transaction'), '#!/bin/sh\n# stele-hooks: reference-transaction\n', {
      mode: 0o755,
    });
    writeFileSync(join(repo, '.githooks', 'reference-transaction.pre-stele'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });

    const first = JSON.parse(await install(repo)) as J;
    assert.equal(first.hooksDir, join(repo, '.githooks'));
    assert.deepEqual(first.installed, ['post-commit', 'pre-push']);
    assert.deepEqual(first.chained, ['pre-push']);
    assert.deepEqual(first.removed, ['reference-transaction'], 'no longer needed: the sender reads the reflogs');
    assert.equal(readFileSync(join(repo, '.githooks', 'reference-transaction'), 'utf8'), '#!/bin/sh\nexit 0\n');
    assert.equal(readFileSync(join(repo, '.githooks', 'pre-push.pre-stele'), 'utf8'), mine);
    assert.match(readFileSync(join(repo, '.githooks', 'pre-push'), 'utf8'), /^#!\/bin\/sh\n# stele-hooks: pre-push/);
    assert.equal(git(repo, ['config', 'stele.url']), server.url);
    assert.equal(git(repo, ['config', 'stele.tokenFile']), keyFile);

    const second = JSON.parse(await install(repo)) as J;
    assert.deepEqual(second.installed, []);
    assert.deepEqual(second.chained, []);
    assert.deepEqual(second.unchanged, ['post-commit', 'pre-push']);
    assert.equal(readFileSync(join(repo, '.githooks', 'pre-push.pre-stele'), 'utf8'), mine, 'not chained twice');

    const status = JSON.parse(await stele(['hooks', 'status', '--repo', repo, '--json'])) as J;
    assert.deepEqual(status.hooks, [
      { name: 'post-commit', chained: false },
      { name: 'pre-push', chained: true },
    ]);

    // The chained pre-push still runs, with git's input, in a real push.
    const bare = newRepo('install-origin.git', true);
    git(repo, ['remote', 'add', 'origin', bare]);
    const sha = commit(repo, 'f', '1\n', 'one');
    git(repo, ['push', '-q', 'origin', 'main']);
    assert.equal(readFileSync(join(repo, '.git', 'mine.log'), 'utf8'), `mine origin\n`);
    await drain(repo);
    assert.equal((await search(`id:${commitEventId(sha)}`)).length, 1);
    assert.equal(inRepo(await search('action:git.push'), bare).length, 1);

    const un = JSON.parse(await stele(['hooks', 'uninstall', '--repo', repo, '--json'])) as J;
    assert.deepEqual(un.restored, ['pre-push']);
    assert.deepEqual(un.unset, ['stele.url', 'stele.tokenFile']);
    assert.equal(readFileSync(join(repo, '.githooks', 'pre-push'), 'utf8'), mine);
    for (const f of ['post-commit', 'stele-hook', 'pre-push.pre-stele', 'reference-transaction.pre-stele']) {
      assert.equal(existsSync(join(repo, '.githooks', f)), false, f);
    }
    assert.equal(spawnSync('git', ['config', '--get-regexp', '^stele\\.'], { cwd: repo, env: gitEnv() }).status, 1);
    assert.equal(git(repo, ['config', 'core.hooksPath']), '.githooks', "core.hooksPath is the user's: kept");
  });

  test('refuses what it cannot do safely, with the reason', async () => {
    const bare = newRepo('refuse.git', true);
    let r = await runStele(['hooks', 'install', '--repo', bare]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is a bare repository: nobody commits there; install the server hooks with --server/);

    const repo = newRepo('conflict');
    writeFileSync(join(repo, '.git', 'hooks', 'post-commit'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(repo, '.git', 'hooks', 'post-commit.pre-stele'), '#!/bin/sh\n', { mode: 0o755 });
    r = await runStele(['hooks', 'install', '--repo', repo]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /post-commit\.pre-stele exist and the first is not Stele's: merge them/);
    assert.equal(existsSync(join(repo, '.git', 'hooks', 'stele-hook')), false, 'nothing installed');

    r = await runStele(['hooks', 'install', '--repo', tempDir()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not in a git repository/);
    r = await runStele(['hooks', 'install', '--repo', repo, '--require-log']);
    assert.match(r.stderr, /--require-log is for server hooks: add --server/);
  });
});

describe('client hooks', () => {
  test('commit, amend, rebase, reset: one git.commit per new commit, git.ref.update for each rewrite', async () => {
    const repo = newRepo('history');
    writeFileSync(join(repo, '.git', 'hooks', 'post-commit'), '#!/bin/sh\necho ran >> .git/chained.log\n', { mode: 0o755 });
    await install(repo);

    const a = commit(repo, 'a.txt', 'a\n', 'add "a" \\ with\ttab');
    const b = commit(repo, 'a.txt', 'b\n', 'second');
    git(repo, ['commit', '-q', '--amend', '-m', 'second, amended']);
    const b2 = git(repo, ['rev-parse', 'HEAD']);
    // A feature branch rebased onto a main that moved on.
    git(repo, ['checkout', '-q', '-b', 'feature']);
    const c = commit(repo, 'c.txt', 'c\n', 'feature work');
    git(repo, ['checkout', '-q', 'main']);
    const d = commit(repo, 'd.txt', 'd\n', 'main moves on');
    git(repo, ['checkout', '-q', 'feature']);
    git(repo, ['rebase', '-q', 'main']);
    const c2 = git(repo, ['rev-parse', 'HEAD']);
    git(repo, ['reset', '-q', '--hard', 'HEAD~1']);
    assert.equal(
      readFileSync(join(repo, '.git', 'chained.log'), 'utf8'),
      'ran\n'.repeat(6),
      'the chained post-commit ran for every commit, rebase picks included',
    );

    await drain(repo);
    const commits = inRepo(await search('action:git.commit'), repo);
    const shas = commits.map((h) => (h.event.resource as J).id);
    assert.deepEqual([...shas].sort(), [a, b, b2, c, d, c2].sort(), 'each new commit once (b is amended away, c rebased)');
    const first = commits.find((h) => (h.event.resource as J).id === a)?.event as J;
    assert.deepEqual(first, {
      id: commitEventId(a),
      time: git(repo, ['show', '-s', '--format=%cI', a]),
      actor: { id: 'alice@example.com', type: 'human', verified: false },
      action: 'git.commit',
      source: { kind: 'git', host: (first.source as J).host, agent: 'stele-hooks', version: '1' },
      resource: { type: 'commit', id: a },
      outcome: 'success',
      data: {
        repo,
        branch: 'main',
        sha: a,
        parents: [],
        summary: 'add "a" \\ with\ttab',
        author: { name: 'Alice Example', email: 'alice@example.com' },
        committer: { name: 'Alice Example', email: 'alice@example.com' },
        signed: false,
      },
    });
    const rebased = commits.find((h) => (h.event.resource as J).id === c2) as Hit;
    assert.deepEqual((rebased.event.data as J).parents, [d]);
    assert.deepEqual(commits[0]?.ingest, { principal: 'git-hooks', method: 'apikey' });

    const updates = inRepo(await search('action:git.ref.update'), repo).map((h) => h.event.data as J);
    const by = (kind: string, ref: string) => updates.filter((u) => u.kind === kind && u.ref === ref);
    assert.equal(by('create', 'refs/heads/main').length, 1);
    assert.equal(by('create', 'refs/heads/feature').length, 1);
    const [amend] = by('rewrite', 'refs/heads/main');
    assert.deepEqual(
      { old: amend?.old, new: amend?.new, reflog: amend?.reflog, removed: amend?.removed, removed_count: amend?.removed_count },
      { old: b, new: b2, reflog: 'commit (amend): second, amended', removed: [b], removed_count: 1 },
    );
    const feature = by('rewrite', 'refs/heads/feature');
    assert.equal(feature.length, 2, 'the rebase and the reset');
    assert.match(feature[0]?.reflog as string, /^rebase \(finish\): refs\/heads\/feature onto /);
    assert.deepEqual(feature[0]?.removed, [c]);
    assert.deepEqual(
      { reflog: feature[1]?.reflog, old: feature[1]?.old, new: feature[1]?.new, removed: feature[1]?.removed },
      { reflog: 'reset: moving to HEAD~1', old: c2, new: d, removed: [c2] },
    );
    assert.equal(updates.filter((u) => u.kind === 'fast-forward').length, 0, 'fast-forwards are the commits themselves');

    // Deleted while no sender runs: its reflog goes with it; the last line read of it says what it was.
    git(repo, ['checkout', '-q', 'main']);
    git(repo, ['branch', '-q', '-D', 'feature']);
    await drain(repo);
    const deleted = inRepo(await search('action:git.ref.update'), repo).map((h) => h.event.data as J);
    assert.deepEqual(
      deleted.filter((u) => u.kind === 'delete').map((u) => [u.ref, u.old, u.new, u.removed_count]),
      [['refs/heads/feature', d, '0'.repeat(40), 0]],
    );
  });

  test('a commit reported twice is stored once; the same commit as Emacs reports it is another event: 409 naming the first', async () => {
    const repo = newRepo('dedupe');
    await install(repo);
    const sha = commit(repo, 'f', '1\n', 'once');
    await drain(repo);
    const hits = async () => (await search(`id:${commitEventId(sha)}`)).length;
    assert.equal(await hits(), 1);
    // The hook again (as after a crash), and the same commit as Emacs reports it.
    execFileSync('sh', [join(repo, '.git', 'hooks', 'post-commit')], { cwd: repo, env: gitEnv() });
    await drain(repo);
    const emacs = await fetch(`${server.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${data.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id: commitEventId(sha),
        actor: { id: 'alice@example.com', type: 'human' },
        action: 'git.commit',
        source: { kind: 'emacs', agent: 'stele.el' },
        resource: { type: 'commit', id: sha },
        outcome: 'success',
      }),
    });
    const first = (await search(`id:${commitEventId(sha)}`))[0];
    assert.equal(emacs.status, 409);
    const refused = (await emacs.json()) as { error: { code: string; index: number } };
    assert.equal(refused.error.code, 'id_conflict');
    assert.equal(refused.error.index, first?.index);
    assert.equal(await hits(), 1);
  });

  test('the log down: commits stay fast and queue; the next run drains the queue', async () => {
    const repo = newRepo('offline');
    await install(repo);
    git(repo, ['config', 'stele.url', `http://127.0.0.1:${await deadPort()}`]);
    const shas: string[] = [];
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(repo, 'f'), `${i}\n`);
      git(repo, ['add', 'f']);
      const t0 = performance.now();
      const r = spawnSync('git', ['commit', '-q', '-m', `offline ${i}`], { cwd: repo, env: gitEnv(), encoding: 'utf8' });
      const ms = performance.now() - t0;
      assert.equal(r.status, 0, r.stderr);
      assert.ok(ms < 3000, `git commit took ${Math.round(ms)} ms with the log down`);
      shas.push(git(repo, ['rev-parse', 'HEAD']));
    }
    const drained = JSON.parse(await drain(repo)) as { sent: boolean; queued: number };
    assert.equal(drained.sent, false);
    assert.equal(drained.queued, 4, '3 commits and the branch creation, each once');
    assert.match(readFileSync(join(repo, '.git', 'stele', 'log'), 'utf8'), /cannot reach http:\/\/127\.0\.0\.1:\d+/);
    assert.equal(inRepo(await search('source:git'), repo).length, 0);

    // Back up: the next commit's background sender takes everything, each event once.
    git(repo, ['config', 'stele.url', server.url]);
    shas.push(commit(repo, 'f', 'online\n', 'online again'));
    await eventually('the commits', async () => inRepo(await search('action:git.commit'), repo).length >= 4);
    const stored = inRepo(await search('action:git.commit'), repo).map((h) => (h.event.resource as J).id);
    assert.deepEqual(stored.sort(), [...shas].sort());
    await drain(repo);
    assert.equal(senderState(repo).outbox.length, 0);
    assert.equal((await assertStoredOnce(repo)).length, 5);
  });

  test('pre-push never blocks, and keeps credentials out of the log', async () => {
    const repo = newRepo('credentials');
    await install(repo);
    git(repo, ['config', 'stele.url', `http://127.0.0.1:${await deadPort()}`]);
    const sha = commit(repo, 'f', '1\n', 'one');
    const zero = '0'.repeat(40);
    const r = spawnSync(
      'sh',
      [join(repo, '.git', 'hooks', 'pre-push'), 'origin', 'https://bob:ghp_s3cret@github.com/acme/app.git'],
      {
        cwd: repo,
        env: gitEnv(),
        input: `refs/heads/main ${sha} refs/heads/main ${zero}\n`,
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    await drain(repo);
    for (const f of ['spool', 'state.json'])
      assert.doesNotMatch(readFileSync(join(repo, '.git', 'stele', f), 'utf8'), /s3cret|bob:/);
    const push = senderState(repo).outbox.filter((e) => e.action === 'git.push')[0] as J;
    assert.deepEqual(push.data, {
      repo,
      remote: 'origin',
      url: 'https://github.com/acme/app.git',
      ref: 'refs/heads/main',
      local_ref: 'refs/heads/main',
      old: zero,
      new: sha,
      kind: 'create',
      stage: 'pre-push',
    });
    assert.equal(push.id, derivedId('git.push', `https://github.com/acme/app.git:refs/heads/main:${zero}:${sha}`));
  });

  test("a refused event goes to the rejected file and does not block the queue; an older version's queue is taken over", async () => {
    const repo = newRepo('poison');
    // Left queued by the shell client hooks of an earlier version.
    writeFileSync(
      join(repo, '.git', 'stele-queue.ndjson'),
      `${JSON.stringify({ actor: { id: 'x', type: 'robot' }, action: 'git.commit', source: { kind: 'git' }, outcome: 'success' })}\n`,
    );
    await install(repo);
    assert.equal(existsSync(join(repo, '.git', 'stele-queue.ndjson')), false);
    const sha = commit(repo, 'f', 'x\n', 'after a bad event');
    await drain(repo);
    assert.equal((await search(`id:${commitEventId(sha)}`)).length, 1);
    assert.match(readFileSync(join(repo, '.git', 'stele', 'rejected.ndjson'), 'utf8'), /"robot"/);
    assert.match(
      readFileSync(join(repo, '.git', 'stele', 'log'), 'utf8'),
      /\/actor\/type must be one of human, service, ai_agent/,
    );
    const status = JSON.parse(await stele(['hooks', 'status', '--repo', repo, '--json'])) as J;
    assert.equal(status.rejected, 1);
    assert.equal(status.queued, 0);
  });
});

describe('pushes', () => {
  test('pre-push and post-receive record a push, the pusher and signature checks; force pushes and deletions', async () => {
    const keys = tempDir('stele-git-ssh-');
    for (const k of ['alice', 'mallory'])
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', join(keys, k)]);
    const bare = newRepo('origin.git', true);
    writeFileSync(join(keys, 'allowed'), `alice@example.com ${readFileSync(join(keys, 'alice.pub'), 'utf8')}`);
    git(bare, ['config', 'gpg.ssh.allowedSignersFile', join(keys, 'allowed')]);
    const serverInstall = JSON.parse(await install(bare, '--server', '--name', 'acme/app')) as J;
    assert.deepEqual(serverInstall.installed, ['stele-hook', 'post-receive']);

    const repo = newRepo('pusher');
    await install(repo);
    git(repo, ['remote', 'add', 'origin', bare]);
    git(repo, ['config', 'gpg.format', 'ssh']);
    git(repo, ['config', 'user.signingkey', join(keys, 'alice.pub')]);
    const base = commit(repo, 'f', '0\n', 'base');
    git(repo, ['push', '-q', 'origin', 'main'], { GL_USERNAME: 'alice' });
    const signed = commit(repo, 'f', '1\n', 'signed by alice', ['-S']);
    git(repo, ['config', 'user.signingkey', join(keys, 'mallory.pub')]);
    const unknown = commit(repo, 'f', '2\n', 'signed by an unknown key', ['-S']);
    const plain = commit(repo, 'f', '3\n', 'not signed');
    git(repo, ['push', '-q', 'origin', 'main'], { GL_USERNAME: 'alice' });
    git(repo, ['reset', '-q', '--hard', signed]);
    git(repo, ['push', '-q', '--force', 'origin', 'main', 'main:refs/heads/topic'], { STELE_PUSHER: 'alice@corp' });
    git(repo, ['push', '-q', 'origin', ':topic']);
    await drain(repo);
    await drain(bare);

    // The client names the repository by its origin's URL: here the bare repository's path.
    const pushes = inRepo(await search('action:git.push'), bare).map((h) => h.event);
    assert.deepEqual(
      pushes.map((e) => [(e.data as J).ref, (e.data as J).kind, (e.data as J).commits]),
      [
        ['refs/heads/main', 'create', undefined],
        ['refs/heads/main', 'fast-forward', 3],
        ['refs/heads/main', 'rewrite', 0],
        ['refs/heads/topic', 'create', undefined],
        ['refs/heads/topic', 'delete', undefined],
      ],
    );
    const ff = pushes[1] as J;
    assert.equal(ff.id, derivedId('git.push', `${bare}:refs/heads/main:${base}:${plain}`));
    assert.deepEqual((ff.data as J).remote, 'origin');

    const receives = (await search('action:git.receive'))
      .filter((h) => (h.event.data as J).repo === 'acme/app')
      .map((h) => h.event);
    assert.equal(receives.length, 5);
    const [created, forward, forced, topic, deleted] = receives as [J, J, J, J, J];
    assert.deepEqual((created.data as J).pusher, { id: 'alice', from: 'GL_USERNAME' });
    assert.equal((created.data as J).commits_total, 1);
    assert.deepEqual(forward.actor, { id: 'alice', type: 'human', verified: false });
    const fd = forward.data as J;
    assert.equal(fd.kind, 'fast-forward');
    assert.equal(fd.commits_total, 3);
    const commits = fd.commits as J[];
    assert.deepEqual(
      commits.map((c) => [c.sha, c.summary, c.signed, (c.signature as J | undefined)?.status]),
      [
        [plain, 'not signed', false, undefined],
        [unknown, 'signed by an unknown key', true, 'good_untrusted'],
        [signed, 'signed by alice', true, 'good'],
      ],
    );
    const good = (commits[2] as J).signature as J;
    assert.equal(good.signer, 'alice@example.com');
    assert.match(good.key as string, /^SHA256:/);
    const fo = forced.data as J;
    assert.deepEqual(
      [fo.kind, fo.removed_count, fo.removed, fo.pusher],
      ['rewrite', 2, [plain, unknown], { id: 'alice@corp', from: 'STELE_PUSHER' }],
    );
    assert.deepEqual([(topic.data as J).kind, (topic.data as J).commits_total], ['create', 0]);
    assert.deepEqual([(deleted.data as J).kind, (deleted.data as J).removed_count], ['delete', 0]);
    assert.equal((deleted.source as J).agent, 'stele-hooks');

    // The client recorded the signed commit as signed (a header check, not a verification).
    const c = (await search(`id:${commitEventId(signed)}`))[0]?.event as J;
    assert.equal((c.data as J).signed, true);
  });

  test('--require-log: pushes are refused while the log is unreachable, accepted once it is back', async () => {
    const bare = newRepo('guarded.git', true);
    await install(bare, '--server', '--require-log', '--timeout', '2');
    git(bare, ['config', 'stele.url', `http://127.0.0.1:${await deadPort()}`]);
    const repo = newRepo('guarded-client');
    git(repo, ['remote', 'add', 'origin', bare]);
    commit(repo, 'f', '1\n', 'one');
    const refused = spawnSync('git', ['push', 'origin', 'main'], { cwd: repo, env: gitEnv(), encoding: 'utf8' });
    assert.notEqual(refused.status, 0);
    assert.match(
      refused.stderr,
      /stele: the audit log at http:\/\/127\.0\.0\.1:\d+ is unreachable; pushes are refused until it is back/,
    );
    assert.match(refused.stderr, /pre-receive hook declined/);
    assert.equal(git(bare, ['for-each-ref']), '', 'nothing was pushed');

    git(bare, ['config', 'stele.url', server.url]);
    const ok = spawnSync('git', ['push', 'origin', 'main'], { cwd: repo, env: gitEnv(), encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    await drain(bare);
    assert.equal(inRepo(await search('action:git.receive'), bare).length, 1);
    // Reinstalling without --require-log removes the guard and puts nothing else back.
    const again = JSON.parse(await install(bare, '--server')) as J;
    assert.deepEqual(again.removed, ['pre-receive']);
    assert.equal(existsSync(join(bare, 'hooks', 'pre-receive')), false);
  });
});

describe('the background sender', () => {
  test('one sender per burst: 15 commits start Node once, and each commit is sent once', async () => {
    const repo = newRepo('burst');
    await install(repo);
    const shas: string[] = [];
    for (let i = 0; i < 15; i++) shas.push(commit(repo, `f${i}`, `${i}\n`, `burst ${i}`));
    await eventually('the commits', async () => inRepo(await search('action:git.commit'), repo).length === 15);
    await eventually('the sender to stop', () => !existsSync(join(repo, '.git', 'stele', 'sender.pid')));
    assert.equal(senderState(repo).starts, 1);
    assert.equal((await assertStoredOnce(repo)).length, 16, '15 commits and the branch creation');
  });

  test('kill -9 of the sender mid-batch: the batch is sent again by the next one and stored once', async () => {
    // A server that passes the batch on to the log, then never answers: the sender is killed
    // after the log has stored the batch and before it knows.
    let forwarded: (body: string) => void = () => {};
    const got = new Promise<string>((r) => {
      forwarded = r;
    });
    const hanging = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        await fetch(`${server.url}/v1/events`, {
          method: 'POST',
          headers: { authorization: req.headers.authorization ?? '', 'content-type': 'application/x-ndjson' },
          body,
        });
        forwarded(body);
        res.on('close', () => {});
      });
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    try {
      const repo = newRepo('killed');
      await install(repo);
      git(repo, ['config', 'stele.url', `http://127.0.0.1:${(hanging.address() as { port: number }).port}`]);
      const shas = [commit(repo, 'f', '1\n', 'one'), commit(repo, 'f', '2\n', 'two')];
      const batch = await got;
      assert.ok(batch.includes(commitEventId(shas[0] as string)), 'the batch holds the first commit');
      const pid = Number(readFileSync(join(repo, '.git', 'stele', 'sender.pid'), 'utf8'));
      process.kill(pid, 'SIGKILL');
      await eventually('the sender to die', () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      });
      assert.ok(senderState(repo).outbox.length > 0, 'the batch is still in the outbox: not known to be sent');

      // The log is reachable again; a commit made now starts a new sender (the dead one's pid file is stale).
      git(repo, ['config', 'stele.url', server.url]);
      shas.push(commit(repo, 'f', '3\n', 'three'));
      await eventually('the commits', async () => inRepo(await search('action:git.commit'), repo).length === 3);
      await drain(repo);
      const hits = await assertStoredOnce(repo);
      assert.deepEqual(
        hits
          .filter((h) => h.event.action === 'git.commit')
          .map((h) => (h.event.resource as J).id)
          .sort(),
        [...shas].sort(),
      );
      assert.equal(hits.length, 4, 'three commits and the branch creation, each stored once');
      assert.equal(senderState(repo).outbox.length, 0);
    } finally {
      hanging.closeAllConnections();
      hanging.close();
    }
  });
});
