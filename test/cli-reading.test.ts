/**
 * The issue 3 commands through the real CLI against a running `stele serve`: search (and its error
 * caret), export and verify-bundle, holds, erasure, retention, policy check; then, with the
 * server stopped, reindex and master-key rotation, after which every event still decrypts.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, initDir, runStele, SteleServer, tempDir } from './helpers/stele.js';

let dir: string;
let srv: SteleServer;
let vkey: string;
const api = () => ['--url', srv.url, '--dir', dir];

async function ok(args: string[]) {
  const r = await runStele(args);
  assert.equal(r.code, 0, `stele ${args.join(' ')}:\n${r.output}`);
  return r;
}

before(async () => {
  const d = await initDir('cli-reading.test/log');
  dir = d.dir;
  vkey = d.vkey;
  srv = await SteleServer.start(dir, { checkpointIntervalMs: 20 });
  const ev = (actor: string, action: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ actor: { id: actor, type: 'human' }, action, source: { kind: 'emacs' }, outcome: 'success', ...extra });
  await ok([
    'append',
    ...api(),
    ev('alice', 'emacs.package.install', { data: { file: 'init.el' } }),
    ev('bob', 'emacs.config.save', { subject: 'frank@example.com', data: { note: 'about frank' } }),
    ev('alice', 'git.commit', { outcome: 'failure' }),
  ]);
});

after(async () => {
  if (srv.running) await srv.stop();
  await cleanup();
});

test('stele search prints hits newest first, and points at a bad token', async () => {
  const r = await ok(['search', ...api(), 'actor:alice']);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  // Entry 0 is the server's stele.policy.load; the three events follow.
  assert.match(lines[0] as string, /^#3 .* alice {2}git\.commit {2}failure/);
  assert.match(lines[1] as string, /^#1 .* alice {2}emacs\.package\.install {2}success/);
  const json = await ok(['search', ...api(), '--json', '"init.el"']);
  assert.equal(JSON.parse(json.stdout.trim()).event.data.file, 'init.el');
  const bad = await runStele(['search', ...api(), 'actor:alice', 'outcome:maybe']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /outcome must be success, failure or denied/);
  assert.match(bad.stderr, /at column 21\n {2}actor:alice outcome:maybe\n {22}\^{5}\n/);
});

test('stele search --summary counts every match by time, actor, action, source, outcome and tier', async () => {
  const r = await ok(['search', ...api(), '--summary', 'source:emacs']);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], '3 matching entries');
  assert.match(r.stdout, /\d+(s|m|h|d) a bar/);
  assert.match(r.stdout, /^actor: +alice 2 · bob 1$/m);
  assert.match(r.stdout, /^outcome: +success 2 · failure 1$/m);
  const json = JSON.parse((await ok(['search', ...api(), '--summary', '--json', 'actor:alice'])).stdout) as { entries: number };
  assert.equal(json.entries, 2);
  const bad = await runStele(['search', ...api(), '--summary', 'outcome:maybe']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.output, /\^/);
});

test('stele search --after reads your own write; an index not appended yet is refused', async () => {
  const ev = JSON.stringify({
    actor: { id: 'carol', type: 'human' },
    action: 'ci.job.run',
    source: { kind: 'ci' },
    outcome: 'success',
  });
  const { index } = JSON.parse((await ok(['append', ...api(), ev])).stdout.trim()) as { index: number };
  const r = await ok(['search', ...api(), '--json', '--after', String(index), 'actor:carol']);
  assert.equal(JSON.parse(r.stdout.trim()).index, index);
  const ahead = await runStele(['search', ...api(), '--after', String(index + 1000), 'actor:carol']);
  assert.equal(ahead.code, 1);
  assert.match(ahead.stderr, /has not been appended/);
});

test('stele export writes a bundle that stele verify-bundle checks offline, and rejects when altered', async () => {
  const file = join(tempDir(), 'alice.stele-bundle.jsonl');
  await ok(['export', ...api(), '--format', 'bundle', '--output', file, 'actor:alice']);
  const v = await ok(['verify-bundle', file, '--vkey', vkey]);
  assert.match(v.stdout, /^ok: 2 entries/);
  writeFileSync(file, readFileSync(file, 'utf8').replace('init.el', 'evil.el'));
  const bad = await runStele(['verify-bundle', file, '--vkey', vkey]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /does not match/);
  const csv = await ok(['export', ...api(), '--format', 'csv', 'actor:bob']);
  assert.equal(csv.stdout.trim().split('\r\n').length, 2);
});

test('holds, erasure and retention from the command line', async () => {
  const hold = JSON.parse(
    (await ok(['hold', 'add', ...api(), '--json', '--subject', 'frank@example.com', '--reason', 'case 9'])).stdout,
  );
  assert.match((await ok(['hold', 'list', ...api()])).stdout, /subject=frank@example.com {2}"case 9"/);
  const refused = await runStele(['erase', ...api(), '--subject', 'frank@example.com', '--reason', 'art. 17']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /409: a legal hold covers this subject/);
  await ok(['hold', 'release', hold.id, ...api(), '--reason', 'closed']);
  const erased = await ok(['erase', ...api(), '--subject', 'frank@example.com', '--reason', 'art. 17']);
  assert.match(erased.stdout, /erased: 1 indexed entry under 1 data key/);
  assert.equal((await ok(['search', ...api(), 'actor:bob'])).stdout, '');
  assert.match((await ok(['retention', 'run', ...api()])).stdout, /expired 0 data keys/);
});

test('stele policy check reports problems with their line and column', async () => {
  const good = await ok(['policy', 'check', join(dir, 'stele.policy.yaml')]);
  assert.match(good.stdout, /^ok: .*operational 90d, compliance forever \(default\)/);
  const badFile = join(tempDir(), 'bad.policy.yaml');
  writeFileSync(badFile, 'version: 1\nretention:\n  default: compliance\n  tiers:\n    - name: compliance\n      keep: 90x\n');
  const bad = await runStele(['policy', 'check', badFile]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad\.policy\.yaml:6:\d+: retention\.tiers\[0\]\.keep/);
});

test('after reindex and a master-key rotation (server stopped), every event still decrypts', async () => {
  await srv.stop();
  assert.match((await ok(['reindex', '--dir', dir])).stdout, /reindexed \d+ entries .*: \d+ readable/);
  const before = readFileSync(join(dir, 'keys', 'master.key'), 'utf8');
  assert.match((await ok(['master-key', 'rotate', '--dir', dir])).stdout, /re-wrapped \d+ data keys?/);
  assert.notEqual(readFileSync(join(dir, 'keys', 'master.key'), 'utf8'), before);
  srv = await SteleServer.start(dir, { checkpointIntervalMs: 20 });
  assert.equal((await ok(['search', ...api(), 'actor:alice'])).stdout.trim().split('\n').length, 2);
  assert.match((await ok(['verify', '--dir', dir])).stdout, /^OK/);
});
