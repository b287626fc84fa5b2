/**
 * The self-validation's policy check: a data key whose tier's retention has passed must have been
 * destroyed (unless held); the run that finds one fails, naming the tier and day, and passes again
 * once retention has run. (The log checks are tested end to end: test/validation.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { initDataDir } from './datadir.js';
import { runRetention } from './forget.js';
import { SERVER } from './self-event.js';
import { openStele } from './stele.js';
import { Validator } from './validation.js';

const dir = mkdtempSync(join(tmpdir(), 'stele-validation-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const DAY = 86_400_000;

/** A log whose `x.*` events go to a tier kept one day (the log's own, to one kept forever), with one such event. */
async function shortTierLog(name: string) {
  const data = join(dir, name);
  await initDataDir(data, `${name}.test/log`);
  const policy = join(dir, `${name}.yaml`);
  writeFileSync(
    policy,
    'version: 1\nretention:\n  default: kept\n  tiers:\n    - name: short\n      keep: 1d\n      match:\n        actions: ["x.*"]\n    - name: kept\n      keep: forever\n',
  );
  const stele = await openStele(data, { checkpointIntervalMs: 10, policyFile: policy });
  await stele.append(
    [
      {
        id: crypto.randomUUID(),
        actor: { id: 'a@example.com', type: 'human' },
        action: 'x.y',
        source: { kind: 't' },
        outcome: 'success',
      },
    ],
    SERVER,
  );
  return stele;
}

test('a key past its retention and still active fails the run; after retention runs, it passes', async () => {
  const stele = await shortTierLog('data');
  try {
    const v = new Validator(stele, SERVER, DAY);
    const now = await v.run({ full: true });
    assert.equal(now.ok, true, now.problems.join('; '));
    assert.equal(now.kind, 'full');
    const later = Date.now() + 10 * DAY;
    const overdue = await v.run({ nowMs: later });
    assert.equal(overdue.ok, false);
    assert.match(
      overdue.problems.join('\n'),
      /retention: \d+ data key\(s\) past their tier's keep are still active and not held \(short\/\d{4}-\d\d-\d\d/,
    );
    await stele.exclusive(() => runRetention(stele.forget, SERVER, later));
    const fixed = await v.run({ nowMs: later });
    assert.equal(fixed.ok, true, fixed.problems.join('; '));
    assert.equal(fixed.kind, 'incremental');
  } finally {
    await stele.close();
  }
});

test('a key destroyed while a hold covered it fails the run, naming the hold', async () => {
  const stele = await shortTierLog('data-held');
  try {
    const v = new Validator(stele, SERVER, DAY);
    const hold = await stele.holds.add({ tier: 'short' }, 'case 9', 'tester');
    assert.equal((await v.run()).ok, true);
    // What retention must never do: destroy a held key (done here behind the hold's back).
    const [key] = await stele.keys.select({ tier: 'short', state: 'active' });
    await stele.keys.destroy([key?.id as string], 'expired', 'a bug');
    const run = await v.run();
    assert.equal(run.ok, false);
    assert.match(
      run.problems.join('\n'),
      new RegExp(
        `holds: 1 data key\\(s\\) destroyed while a hold covered them \\(short/\\d{4}-\\d\\d-\\d\\d under ${hold.id}\\)`,
      ),
    );
  } finally {
    await stele.close();
  }
});

test('an entry naming a data key the key store does not have fails the run', async () => {
  const data = join(dir, 'data-keys');
  await initDataDir(data, 'validation-keys.test/log');
  let stele = await openStele(data, { checkpointIntervalMs: 10 });
  const [e] = await stele.append(
    [
      {
        id: crypto.randomUUID(),
        actor: { id: 'a@example.com', type: 'human' },
        action: 'x.y',
        source: { kind: 't' },
        outcome: 'success',
      },
    ],
    SERVER,
  );
  await stele.close();
  // The key store loses a key behind the log's back (a restore of an older backup, say).
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(data, 'keys', 'keystore.db'));
  const gone = db.prepare('SELECT id FROM keys ORDER BY created DESC LIMIT 1').get() as { id: string };
  db.prepare('DELETE FROM keys WHERE id = ?').run(gone.id);
  db.close();
  stele = await openStele(data, { checkpointIntervalMs: 10 });
  try {
    const run = await new Validator(stele, SERVER, DAY).run({ full: true });
    assert.equal(run.ok, false);
    assert.ok(run.checks.includes('keys: the key store knows every data key the verified entries name'));
    assert.match(
      run.problems.join('\n'),
      new RegExp(`keys: 1 data key\\(s\\) named by entries are not in the key store \\(${gone.id} in entry \\d+\\)`),
    );
    assert.ok(e !== undefined);
  } finally {
    await stele.close();
  }
});
