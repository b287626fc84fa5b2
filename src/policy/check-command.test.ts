/** `stele policy check` (src/cli/commands/policy.ts), called directly with console output captured. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, type TestContext, test } from 'node:test';
import { defaultPolicyFile, policyCheckCommand } from '../cli/commands/policy.js';
import { SteleError } from '../core/errors.js';
import { STARTER_POLICY_YAML } from './policy.js';

const dir = mkdtempSync(join(tmpdir(), 'stele-policy-check-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const hash = (text: string) => createHash('sha256').update(text).digest('hex');

/** Runs the command and returns what it printed with console.log, and what it threw. */
async function run(t: TestContext, file: string | undefined, opts: { json?: boolean; showCedar?: boolean } = {}) {
  const lines: string[] = [];
  t.mock.method(console, 'log', (...args: unknown[]) => lines.push(args.map(String).join(' ')));
  let error: unknown;
  try {
    await policyCheckCommand(file, opts);
  } catch (err) {
    error = err;
  }
  t.mock.restoreAll();
  return { lines, error };
}

const BAD = `version: 1
retention:
  default: operational
  tiers:
    - name: operational
      keep: 90x
      encrypt: false
    - name: operational
      keep: forever
`;

describe('stele policy check', () => {
  test('a valid file: one summary line', async (t) => {
    const file = write('starter.yaml', STARTER_POLICY_YAML);
    const { lines, error } = await run(t, file);
    assert.equal(error, undefined);
    assert.deepEqual(lines, [
      `ok: ${file} (sha256 ${hash(STARTER_POLICY_YAML)}): 2 tiers: operational 90d, compliance forever (default); ` +
        '2 roles: admin, writer',
    ]);
  });

  test('one tier, unencrypted', async (t) => {
    const text =
      'version: 1\nretention:\n  default: clear\n  tiers:\n    - name: clear\n      keep: forever\n      encrypt: false\n';
    const file = write('clear.yaml', text);
    const { lines } = await run(t, file);
    assert.deepEqual(lines, [
      `ok: ${file} (sha256 ${hash(text)}): 1 tier: clear forever unencrypted (default); 2 roles: admin, writer`,
    ]);
  });

  test('an unencrypted tier with a role restricting tiers: refused, naming the role and the tier', async (t) => {
    // The public tier's leaves are served to anyone under /log/ and /v1/entries: the auditor's
    // tiers would promise a restriction the server cannot keep.
    const text = `version: 1
retention:
  default: compliance
  tiers:
    - name: public
      keep: forever
      encrypt: false
      match: { actions: ["ci.*"] }
    - name: compliance
      keep: forever
roles:
  auditor:
    members: [group:audit]
    actions: [read, search, export]
    tiers: [compliance]
`;
    const file = write('public-and-auditor.yaml', text);
    const { lines, error } = await run(t, file);
    assert.deepEqual(lines, []);
    assert.ok(error instanceof SteleError);
    assert.equal(error.code, 'bad_policy');
    const message = error.message.split('\n');
    assert.equal(message.length, 1, error.message);
    assert.match(
      message[0] as string,
      new RegExp(
        `^${file}:15:5: roles\\.auditor\\.tiers: role "auditor" restricts the tiers it reads, but tier "public" is unencrypted`,
      ),
    );
    assert.match(error.message, /anyone without credentials under \/log\/ and \/v1\/entries/);
    // Listing the public tier does not help: anyone still reads it.
    const listed = write('public-listed.yaml', text.replace('tiers: [compliance]', 'tiers: [compliance, public]'));
    const again = await run(t, listed);
    assert.ok(again.error instanceof SteleError && /tier "public" is unencrypted/.test(again.error.message));
    // Encrypted, or no role restricting tiers: accepted.
    assert.equal((await run(t, write('public-enc.yaml', text.replace('      encrypt: false\n', '')))).error, undefined);
    assert.equal((await run(t, write('public-open.yaml', text.replace('    tiers: [compliance]\n', '')))).error, undefined);
  });

  test('--json', async (t) => {
    const file = write('starter.yaml', STARTER_POLICY_YAML);
    const { lines, error } = await run(t, file, { json: true });
    assert.equal(error, undefined);
    assert.equal(lines.length, 1);
    assert.deepEqual(JSON.parse(lines[0] as string), {
      ok: true,
      file,
      sha256: hash(STARTER_POLICY_YAML),
      retention: {
        schedule: '1h',
        default: 'compliance',
        tiers: [
          {
            name: 'operational',
            keep: '90d',
            keep_ms: 7_776_000_000,
            encrypt: true,
            actions: ['k8s.*', 'emacs.buffer.*'],
            sources: [],
          },
          { name: 'compliance', keep: 'forever', keep_ms: null, encrypt: true, actions: [], sources: [] },
        ],
      },
      identity: { issuers: [] },
      roles: [
        {
          name: 'admin',
          members: [],
          actions: ['append', 'read', 'search', 'export', 'erase', 'hold', 'admin', 'metrics'],
          tiers: [],
          vouch: ['*'],
        },
        { name: 'writer', members: [], actions: ['append'], tiers: [], vouch: ['*'] },
      ],
      cedar: null,
    });
  });

  test('a bad file: throws bad_policy with every problem, one per line, printing nothing', async (t) => {
    const file = write('bad.yaml', BAD);
    const { lines, error } = await run(t, file);
    assert.deepEqual(lines, []);
    assert.ok(error instanceof SteleError);
    assert.equal(error.code, 'bad_policy');
    assert.deepEqual(error.message.split('\n'), [
      `${file}:6:13: retention.tiers[0].keep: "90x" is not a duration (90d, 36h, forever)`,
      `${file}:8:13: retention.tiers[1].name: duplicate tier name "operational" (also retention.tiers[0].name at line 5)`,
    ]);
  });

  test('a bad file with --json: prints the problems, then throws', async (t) => {
    const file = write('bad.yaml', BAD);
    const { lines, error } = await run(t, file, { json: true });
    assert.ok(error instanceof SteleError);
    const out = JSON.parse(lines[0] as string);
    assert.equal(out.ok, false);
    assert.equal(out.file, file);
    assert.equal(out.error.code, 'bad_policy');
    assert.deepEqual(
      out.problems.map((p: { line: number; column: number; path: string }) => [p.line, p.column, p.path]),
      [
        [6, 13, 'retention.tiers[0].keep'],
        [8, 13, 'retention.tiers[1].name'],
      ],
    );
  });

  test('with a stele.cedar beside it: the Cedar file is checked too, and shown with --show-cedar', async (t) => {
    const sub = join(dir, 'with-cedar');
    mkdirSync(sub);
    const yaml = join(sub, 'stele.policy.yaml');
    writeFileSync(yaml, STARTER_POLICY_YAML);
    const cedarFile = join(sub, 'stele.cedar');
    const cedar = '@id("no-hold")\nforbid(principal, action == Stele::Action::"hold", resource);\n';
    writeFileSync(cedarFile, cedar);
    const { lines, error } = await run(t, yaml, { showCedar: true });
    assert.equal(error, undefined);
    assert.equal(
      lines[0],
      `ok: ${yaml} (sha256 ${hash(STARTER_POLICY_YAML)}): 2 tiers: operational 90d, compliance forever (default); ` +
        `2 roles: admin, writer; Cedar ${cedarFile} (sha256 ${hash(cedar)})`,
    );
    const shown = lines.slice(1).join('\n');
    assert.match(shown, /namespace Stele \{/);
    assert.match(
      shown,
      /@id\("role:admin:erase"\)\npermit\(principal in Stele::Role::"admin", action == Stele::Action::"erase", resource\);/,
    );
    assert.match(shown, /@id\("no-hold"\)\nforbid/);

    writeFileSync(cedarFile, 'forbid(principal, action == Stele::Action::"hold", resource)\nwhen { resource.tier == "x" };\n');
    const bad = await run(t, yaml, { json: true });
    assert.ok(bad.error instanceof SteleError);
    assert.equal(bad.error.message, `${cedarFile}:2:8: attribute \`tier\` on entity type \`Stele::Log\` not found`);
    assert.deepEqual(JSON.parse(bad.lines[0] as string).problems, [
      { file: cedarFile, line: 2, column: 8, path: '', message: 'attribute `tier` on entity type `Stele::Log` not found' },
    ]);
  });

  test('a missing file', async (t) => {
    const file = join(dir, 'missing.yaml');
    const { lines, error } = await run(t, file);
    assert.deepEqual(lines, []);
    assert.ok(error instanceof SteleError);
    assert.equal(error.code, 'policy_missing');
    assert.equal(error.message, `${file}: no such policy file`);
    const json = await run(t, file, { json: true });
    assert.deepEqual(JSON.parse(json.lines[0] as string), {
      ok: false,
      file,
      error: { code: 'policy_missing', message: `${file}: no such policy file` },
      problems: [],
    });
  });

  test('the default file: $STELE_POLICY, else $STELE_DIR/stele.policy.yaml, else stele.policy.yaml', async (t) => {
    const saved = { policy: process.env.STELE_POLICY, dir: process.env.STELE_DIR };
    t.after(() => {
      if (saved.policy === undefined) delete process.env.STELE_POLICY;
      else process.env.STELE_POLICY = saved.policy;
      if (saved.dir === undefined) delete process.env.STELE_DIR;
      else process.env.STELE_DIR = saved.dir;
    });
    delete process.env.STELE_POLICY;
    delete process.env.STELE_DIR;
    assert.equal(defaultPolicyFile(), 'stele.policy.yaml');
    assert.equal(defaultPolicyFile({ STELE_POLICY: '', STELE_DIR: '' }), 'stele.policy.yaml', 'empty variables count as unset');
    assert.equal(defaultPolicyFile({ STELE_DIR: 'd' }), join(resolve('d'), 'stele.policy.yaml'));
    // The data directory's own file, as `stele serve` resolves it: checked, not ./stele.policy.yaml.
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'stele.policy.yaml'), BAD);
    process.env.STELE_DIR = dataDir;
    assert.equal(defaultPolicyFile(), join(dataDir, 'stele.policy.yaml'));
    const bad = await run(t, undefined);
    assert.ok(bad.error instanceof SteleError);
    assert.match(bad.error.message, new RegExp(`^${join(dataDir, 'stele.policy.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:`));
    // $STELE_POLICY still comes first.
    const file = write('env.yaml', STARTER_POLICY_YAML);
    process.env.STELE_POLICY = file;
    assert.equal(defaultPolicyFile(), file);
    const { lines } = await run(t, undefined);
    assert.match(lines[0] as string, new RegExp(`^ok: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(sha256 [0-9a-f]{64}\\)`));
  });
});
