/**
 * The pieces of the git hooks' sender that need no git: reading a reflog from a cursor (appended
 * to, half-written, rewritten by `git reflog expire`), which HEAD entries make a commit, and the
 * event details that must match git's own formatting (%cI, %s).
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isoWithOffset, makesCommit, parseCommit, truncate } from '../src/sources/git-events.js';
import { cursorAtEnd, readNew } from '../src/sources/git-reflog.js';

const dir = mkdtempSync(join(tmpdir(), 'stele-reflog-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);
const line = (old: string, nu: string, epoch: number, msg: string) =>
  `${old} ${nu} Alice Example <alice@example.com> ${epoch} +0100\t${msg}\n`;

describe('reading a reflog from a cursor', () => {
  test('appended lines once each; a line still being written waits for its newline', () => {
    const f = join(dir, 'appended');
    writeFileSync(f, line(A, B, 100, 'commit: one'));
    let r = readNew(f, { at: 0, last: '' });
    assert.deepEqual(
      r.entries.map((e) => [e.old, e.new, e.email, e.epoch, e.message]),
      [[A, B, 'alice@example.com', 100, 'commit: one']],
    );
    appendFileSync(f, line(B, C, 101, 'commit: two').slice(0, 50));
    r = readNew(f, r.cursor);
    assert.deepEqual(r.entries, [], 'half a line is not read');
    appendFileSync(f, line(B, C, 101, 'commit: two').slice(50));
    r = readNew(f, r.cursor);
    assert.deepEqual(
      r.entries.map((e) => e.message),
      ['commit: two'],
    );
    assert.deepEqual(readNew(f, r.cursor).entries, []);
    assert.deepEqual(readNew(f, cursorAtEnd(f)).entries, [], 'installing starts at the end');
  });

  test('rewritten (reflog expire): the last line read is found again; gone, what is newer is taken', () => {
    const f = join(dir, 'rewritten');
    writeFileSync(f, line(A, B, 100, 'old') + line(B, C, 200, 'read'));
    const cur = readNew(f, { at: 0, last: '' }).cursor;
    writeFileSync(f, line(B, C, 200, 'read') + line(C, A, 300, 'new'));
    assert.deepEqual(
      readNew(f, cur).entries.map((e) => e.message),
      ['new'],
    );
    writeFileSync(f, line(C, A, 300, 'new') + line(A, B, 400, 'newer'));
    assert.deepEqual(
      readNew(f, cur).entries.map((e) => e.message),
      ['new', 'newer'],
    );
  });
});

test('which HEAD entries make a commit', () => {
  for (const m of [
    'commit (initial): first',
    'commit: work',
    'commit (amend): work',
    'commit (merge): Merge branch x',
    'rebase (pick): work',
    'rebase (reword): work',
    'pull --rebase (pick): work',
    'cherry-pick: work',
    'revert: Revert "work"',
    'am: a patch',
    "merge topic: Merge made by the 'ort' strategy.",
  ])
    assert.equal(makesCommit(m), true, m);
  for (const m of [
    'checkout: moving from main to x',
    'reset: moving to HEAD~1',
    'rebase (start): checkout main',
    'rebase (finish): returning to refs/heads/x',
    'merge topic: Fast-forward',
    'pull: Fast-forward',
    'branch: Created from HEAD',
  ])
    assert.equal(makesCommit(m), false, m);
});

test("a commit's time and subject as git prints them (%cI, %s)", () => {
  assert.equal(isoWithOffset(1_700_000_000, '+0530'), '2023-11-15T03:43:20+05:30');
  assert.equal(isoWithOffset(1_700_000_000, '-0800'), '2023-11-14T14:13:20-08:00');
  const c = parseCommit(
    A,
    `tree ${B}\nparent ${B}\nparent ${C}\nauthor Ann <ann@x> 1700000000 +0000\ncommitter Bob B <bob@x> 1700000001 -0100\n` +
      `gpgsig -----BEGIN SSH SIGNATURE-----\n xyz\n -----END SSH SIGNATURE-----\n\nfirst line  \nsecond line\n\nbody\n`,
  );
  assert.deepEqual(
    [c.parents, c.author.email, c.committer.name, c.committer.tz, c.signed, c.subject],
    [[B, C], 'ann@x', 'Bob B', '-0100', true, 'first line second line'],
  );
  assert.equal(truncate('ab日本', 4), 'ab...', 'never half a character');
});
