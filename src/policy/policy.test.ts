import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { isDuration, parseDuration } from '../duration.js';
import { SteleError } from '../errors.js';
import {
  DEFAULT_POLICY,
  DEFAULT_POLICY_YAML,
  formatDuration,
  formatKeep,
  loadPolicyFile,
  type Policy,
  type PolicyProblem,
  parsePolicy,
  STARTER_POLICY_YAML,
} from './policy.js';
import { DURATION_PATTERN, KEEP_PATTERN, policySchema } from './schema.js';

const FILE = 'stele.policy.yaml';

const EXAMPLE = `# stele.policy.yaml
version: 1
retention:
  schedule: 1h              # how often the server runs the retention job
  default: compliance       # tier for events no rule matches
  tiers:
    - name: operational
      keep: 90d             # duration, or "forever"
      match:
        actions: ["k8s.*", "emacs.buffer.*"]
        sources: ["kubernetes"]
    - name: compliance
      keep: forever
      encrypt: true
`;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The SteleError parsePolicy throws for `text`. */
function refusal(text: string, file = FILE): SteleError {
  try {
    parsePolicy(text, file);
  } catch (err) {
    assert.ok(err instanceof SteleError, `not a SteleError: ${String(err)}`);
    assert.equal(err.code, 'bad_policy');
    assert.equal(err.status, 400);
    return err;
  }
  assert.fail(`accepted:\n${text}`);
}

/** The problem lines for `text`. */
const problems = (text: string): string[] => refusal(text).message.split('\n');

/** A minimal valid file with `tier` (YAML lines at tier-item indent, first line after "- ") as its only tier. */
function oneTier(tier: string, extra = ''): string {
  return `version: 1\nretention:\n  default: a\n${extra}  tiers:\n    - name: a\n${tier}`;
}

describe('parsePolicy: valid files', () => {
  test('the example compiles to plain JSON', () => {
    const p = parsePolicy(EXAMPLE, FILE);
    assert.deepEqual(p, {
      version: 1,
      source: FILE,
      sha256: sha256(EXAMPLE),
      retention: {
        scheduleMs: 3_600_000,
        defaultTier: 'compliance',
        tiers: [
          {
            name: 'operational',
            keepMs: 90 * 86_400_000,
            encrypt: true,
            actions: ['k8s.*', 'emacs.buffer.*'],
            sources: ['kubernetes'],
          },
          { name: 'compliance', keepMs: null, encrypt: true, actions: [], sources: [] },
        ],
      },
    } satisfies Policy);
    assert.deepEqual(structuredClone(p), p);
    assert.deepEqual(JSON.parse(JSON.stringify(p)), p);
  });

  test('defaults: schedule 1h, encrypt true, any source', () => {
    const p = parsePolicy(oneTier('      keep: 7y\n      match:\n        actions: ["*"]\n'), FILE);
    assert.equal(p.retention.scheduleMs, 3_600_000);
    assert.deepEqual(p.retention.tiers, [
      { name: 'a', keepMs: 7 * 365 * 86_400_000, encrypt: true, actions: ['*'], sources: [] },
    ]);
  });

  test('a tier kept forever may be unencrypted; composite durations; flow style', () => {
    const p = parsePolicy(
      'version: 1\nretention: {schedule: 1h30m, default: clear, tiers: [{name: clear, keep: forever, encrypt: false}]}\n',
      FILE,
    );
    assert.equal(p.retention.scheduleMs, 90 * 60_000);
    assert.deepEqual(p.retention.tiers[0], { name: 'clear', keepMs: null, encrypt: false, actions: [], sources: [] });
  });

  test('without a retention section: one tier "default", forever, encrypted', () => {
    const p = parsePolicy('version: 1\n', FILE);
    assert.deepEqual(p.retention, DEFAULT_POLICY.retention);
  });

  test('anchors and aliases are followed', () => {
    const p = parsePolicy(
      'version: 1\n' +
        'retention:\n  default: b\n  tiers:\n    - name: a\n      keep: 30d\n      match: {actions: &g ["k8s.*"]}\n' +
        '    - name: b\n      keep: forever\n      match: {actions: *g}\n',
      FILE,
    );
    assert.deepEqual(p.retention.tiers[1]?.actions, ['k8s.*']);
  });

  test('sha256 is of the bytes; a BOM and CRLF line ends are fine', () => {
    const text = '\uFEFFversion: 1\r\nretention:\r\n  default: a\r\n  tiers:\r\n    - name: a\r\n      keep: forever\r\n';
    const p = parsePolicy(text, FILE);
    assert.equal(p.sha256, sha256(text));
    assert.equal(p.retention.defaultTier, 'a');
  });
});

describe('parsePolicy: each problem at its line:column', () => {
  const cases: [string, string, string][] = [
    [
      'bad keep',
      oneTier('      keep: 90x\n'),
      `${FILE}:6:13: retention.tiers[0].keep: "90x" is not a duration (90d, 36h, forever)`,
    ],
    ['keep a number', oneTier('      keep: 90\n'), `${FILE}:6:13: retention.tiers[0].keep: must be a string, not the number 90`],
    ['keep empty', oneTier('      keep:\n'), `${FILE}:6:7: retention.tiers[0].keep: must be a string, not empty`],
    [
      'keep too short',
      oneTier('      keep: 12h\n'),
      `${FILE}:6:13: retention.tiers[0].keep: 12h is too short: a tier keeps its events at least 1d`,
    ],
    [
      'keep too long',
      oneTier('      keep: 99999999999y\n'),
      `${FILE}:6:13: retention.tiers[0].keep: "99999999999y" is too long a duration`,
    ],
    [
      'expiring tier unencrypted',
      oneTier('      keep: 90d\n      encrypt: false\n'),
      `${FILE}:7:16: retention.tiers[0].encrypt: a tier that expires (keep: 90d) must be encrypted: events expire by ` +
        'destroying their data keys, and an unencrypted leaf can never be forgotten; remove "encrypt: false" or keep the tier forever',
    ],
    [
      'encrypt not a boolean',
      oneTier('      keep: forever\n      encrypt: yes\n'),
      `${FILE}:7:16: retention.tiers[0].encrypt: must be true or false, not the string "yes"`,
    ],
    [
      'missing keep',
      oneTier('      match: {actions: ["*"]}\n'),
      `${FILE}:5:7: retention.tiers[0].keep: missing: every tier needs keep (a duration such as 90d, or forever)`,
    ],
    [
      'bad tier name',
      'version: 1\nretention:\n  default: a\n  tiers:\n    - name: Ops\n      keep: forever\n',
      `${FILE}:5:13: retention.tiers[0].name: "Ops" is not a tier name: use lower-case letters, digits, _ and -, starting with a letter`,
    ],
    [
      'default names no tier',
      'version: 1\nretention:\n  default: complience\n  tiers:\n    - name: a\n      keep: forever\n    - name: b\n      keep: forever\n',
      `${FILE}:3:12: retention.default: "complience" is not one of the tiers (a, b)`,
    ],
    [
      'schedule too often',
      oneTier('      keep: forever\n', '  schedule: 30s\n'),
      `${FILE}:4:13: retention.schedule: 30s is too often: run the retention job at most every 1m`,
    ],
    [
      'schedule not a duration',
      oneTier('      keep: forever\n', '  schedule: hourly\n'),
      `${FILE}:4:13: retention.schedule: "hourly" is not a duration (30m, 1h, 1d)`,
    ],
    [
      'glob with upper case',
      oneTier('      keep: forever\n      match:\n        actions: [k8s.*, "Git.*"]\n'),
      `${FILE}:8:26: retention.tiers[0].match.actions[1]: "Git.*" is not a pattern: use lower-case letters, digits, ., _, - and * (any run of characters)`,
    ],
    [
      'glob with a regex metacharacter',
      oneTier('      keep: forever\n      match:\n        actions:\n          - "git.(commit|push)"\n'),
      `${FILE}:9:13: retention.tiers[0].match.actions[0]: "git.(commit|push)" is not a pattern: use lower-case letters, digits, ., _, - and * (any run of characters)`,
    ],
    [
      'empty glob',
      oneTier('      keep: forever\n      match:\n        actions: ["git.*"]\n        sources: [""]\n'),
      `${FILE}:9:19: retention.tiers[0].match.sources[0]: empty pattern: use * to match everything`,
    ],
    [
      'empty actions list',
      oneTier('      keep: forever\n      match:\n        actions: []\n'),
      `${FILE}:8:18: retention.tiers[0].match.actions: list at least one pattern`,
    ],
    [
      'match without actions',
      oneTier('      keep: forever\n      match:\n        sources: [git]\n'),
      `${FILE}:8:9: retention.tiers[0].match.actions: missing: match needs actions (globs such as k8s.*; * matches every action)`,
    ],
    ['no tiers', 'version: 1\nretention:\n  default: a\n  tiers: []\n', `${FILE}:4:10: retention.tiers: list at least one tier`],
    [
      'tiers not a list',
      'version: 1\nretention:\n  default: a\n  tiers:\n    a: {keep: forever}\n',
      `${FILE}:5:5: retention.tiers: must be a list, not a mapping`,
    ],
    ['wrong version', 'version: 2\n', `${FILE}:1:10: version: must be 1, not the number 2`],
    ['version as a string', "version: '1'\n", `${FILE}:1:10: version: must be 1, not the string "1"`],
    [
      'missing version',
      '# policy\nretention:\n  default: a\n  tiers: [{name: a, keep: forever}]\n',
      `${FILE}:2:1: version: missing: a policy file starts with "version: 1"`,
    ],
    ['empty file', '# nothing yet\n', `${FILE}:1:1: the file is empty: a policy file starts with "version: 1"`],
    ['not a mapping', '- version: 1\n', `${FILE}:1:1: the policy must be a mapping (version: 1, retention: ...), not a list`],
  ];
  for (const [name, text, expected] of cases) {
    test(name, () => assert.deepEqual(problems(text), [expected]));
  }

  test('unknown keys at every level, at the key, with a hint', () => {
    const text =
      'version: 1\nroles: []\nretention:\n  default: a\n  keepp: 1d\n  tiers:\n    - name: a\n      kepp: 1d\n      keep: forever\n' +
      '      match:\n        actions: ["*"]\n        source: [git]\n';
    assert.deepEqual(problems(text), [
      `${FILE}:2:1: roles: unknown key (allowed here: version, retention)`,
      `${FILE}:5:3: retention.keepp: unknown key (allowed here: schedule, default, tiers)`,
      `${FILE}:8:7: retention.tiers[0].kepp: unknown key (did you mean keep? allowed here: name, keep, encrypt, match)`,
      `${FILE}:12:9: retention.tiers[0].match.source: unknown key (did you mean sources? allowed here: actions, sources)`,
    ]);
  });

  test('duplicate tier names: the second, naming the first', () => {
    const text =
      'version: 1\nretention:\n  default: a\n  tiers:\n    - name: a\n      keep: forever\n    - name: a\n      keep: 30d\n';
    assert.deepEqual(problems(text), [
      `${FILE}:7:13: retention.tiers[1].name: duplicate tier name "a" (also retention.tiers[0].name at line 5)`,
    ]);
  });

  test('a problem inside an alias is reported at the alias', () => {
    const text = 'version: 1\nretention:\n  default: a\n  tiers:\n    - &t\n      name: a\n      keep: forever\n    - *t\n';
    assert.deepEqual(problems(text), [
      `${FILE}:8:7: retention.tiers[1].name: duplicate tier name "a" (also retention.tiers[0].name at line 6)`,
    ]);
  });

  test('every problem together, in file order, with detail.problems', () => {
    const text = `# stele.policy.yaml
version: 1
retention:
  schedule: 10s
  default: compliance
  tiers:
    - name: operational
      keep: 90x
      match:
        actions: ["k8s.*", "Emacs.*"]
    - name: operational
      keep: 30d
      encrypt: false
    - name: archive
      kep: forever
`;
    const err = refusal(text);
    const expected: PolicyProblem[] = [
      { line: 4, column: 13, path: 'retention.schedule', message: '10s is too often: run the retention job at most every 1m' },
      { line: 8, column: 13, path: 'retention.tiers[0].keep', message: '"90x" is not a duration (90d, 36h, forever)' },
      {
        line: 10,
        column: 28,
        path: 'retention.tiers[0].match.actions[1]',
        message: '"Emacs.*" is not a pattern: use lower-case letters, digits, ., _, - and * (any run of characters)',
      },
      {
        line: 11,
        column: 13,
        path: 'retention.tiers[1].name',
        message: 'duplicate tier name "operational" (also retention.tiers[0].name at line 7)',
      },
      {
        line: 13,
        column: 16,
        path: 'retention.tiers[1].encrypt',
        message:
          'a tier that expires (keep: 30d) must be encrypted: events expire by destroying their data keys, and an ' +
          'unencrypted leaf can never be forgotten; remove "encrypt: false" or keep the tier forever',
      },
      {
        line: 14,
        column: 7,
        path: 'retention.tiers[2].keep',
        message: 'missing: every tier needs keep (a duration such as 90d, or forever)',
      },
      {
        line: 15,
        column: 7,
        path: 'retention.tiers[2].kep',
        message: 'unknown key (did you mean keep? allowed here: name, keep, encrypt, match)',
      },
      {
        line: 5,
        column: 12,
        path: 'retention.default',
        message: '"compliance" is not one of the tiers (operational, archive)',
      },
    ]
      .map((p) => ({ file: FILE, ...p }))
      .sort((a, b) => a.line - b.line || a.column - b.column);
    assert.deepEqual(err.detail, { problems: expected });
    assert.deepEqual(
      err.message.split('\n'),
      expected.map((p) => `${p.file}:${p.line}:${p.column}: ${p.path}: ${p.message}`),
    );
  });
});

describe('parsePolicy: YAML syntax', () => {
  const cases: [string, string, string[]][] = [
    ['unclosed quote', 'version: 1\nretention:\n  default: "a\n', [`${FILE}:4:1: YAML: Missing closing "quote`]],
    ['duplicate key', 'version: 1\nversion: 1\n', [`${FILE}:2:1: YAML: duplicate key: keys in a mapping must be unique`]],
    [
      'two documents',
      'version: 1\n---\nversion: 1\n',
      [`${FILE}:2:1: YAML: the file holds more than one YAML document (a second "---"); a policy is one document`],
    ],
    [
      'tab indentation, unterminated flow list',
      'version: 1\nretention:\n\tdefault: a\nx: [1,\n',
      [
        `${FILE}:3:1: YAML: Tabs are not allowed as indentation`,
        `${FILE}:5:1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]`,
      ],
    ],
  ];
  for (const [name, text, expected] of cases) {
    test(name, () => {
      const err = refusal(text);
      assert.deepEqual(err.message.split('\n'), expected);
      const detail = (err.detail ?? {}) as { problems: PolicyProblem[] };
      assert.equal(detail.problems.length, expected.length);
      assert.equal(detail.problems[0]?.path, '');
    });
  }

  test('an unknown tag is a problem too', () => {
    assert.deepEqual(problems('version: !int 1\n'), [
      `${FILE}:1:10: YAML: Unresolved tag: !int`,
      `${FILE}:1:15: version: must be 1, not the string "1"`,
    ]);
  });

  test('alias bombs are refused', () => {
    let text = 'version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i < 12; i++) text += `a${i}: &a${i} [*a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}]\n`;
    const err = refusal(text);
    assert.match(err.message, /^stele\.policy\.yaml:1:1: YAML: .*alias/i);
  });
});

describe('loadPolicyFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stele-policy-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('reads a file: source is the path, sha256 of its bytes', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, EXAMPLE);
    const p = loadPolicyFile(file);
    assert.equal(p.source, file);
    assert.equal(p.sha256, createHash('sha256').update(EXAMPLE).digest('hex'));
    assert.deepEqual(p.retention, parsePolicy(EXAMPLE, FILE).retention);
  });

  test('problems name the path', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, oneTier('      keep: 90x\n'));
    assert.throws(
      () => loadPolicyFile(file),
      (err: SteleError) =>
        err.code === 'bad_policy' &&
        err.message === `${file}:6:13: retention.tiers[0].keep: "90x" is not a duration (90d, 36h, forever)`,
    );
  });

  test('a missing file is policy_missing (404)', () => {
    const file = join(dir, 'nope.yaml');
    assert.throws(
      () => loadPolicyFile(file),
      (err: SteleError) => err.code === 'policy_missing' && err.status === 404 && err.message === `${file}: no such policy file`,
    );
  });

  test('a directory, or bytes that are not UTF-8, are bad_policy', () => {
    const sub = join(dir, 'sub.yaml');
    mkdirSync(sub);
    assert.throws(() => loadPolicyFile(sub), { code: 'bad_policy', message: `${sub}:1:1: cannot read the policy file (EISDIR)` });
    const bin = join(dir, 'bin.yaml');
    writeFileSync(bin, Buffer.from([0x76, 0x3a, 0x20, 0xff, 0x0a]));
    assert.throws(() => loadPolicyFile(bin), { code: 'bad_policy', message: `${bin}:1:1: not UTF-8 text` });
  });
});

describe('built-in policies', () => {
  test('DEFAULT_POLICY: one tier "default", forever, encrypted; frozen', () => {
    assert.deepEqual(DEFAULT_POLICY, {
      version: 1,
      source: 'built-in',
      sha256: sha256(DEFAULT_POLICY_YAML),
      retention: {
        scheduleMs: 3_600_000,
        defaultTier: 'default',
        tiers: [{ name: 'default', keepMs: null, encrypt: true, actions: [], sources: [] }],
      },
    });
    assert.ok(Object.isFrozen(DEFAULT_POLICY.retention.tiers[0]));
    assert.deepEqual(structuredClone(DEFAULT_POLICY), DEFAULT_POLICY);
  });

  test('STARTER_POLICY_YAML is a valid policy: operational 90d, compliance forever by default', () => {
    const p = parsePolicy(STARTER_POLICY_YAML, FILE);
    assert.deepEqual(p.retention, {
      scheduleMs: 3_600_000,
      defaultTier: 'compliance',
      tiers: [
        { name: 'operational', keepMs: 90 * 86_400_000, encrypt: true, actions: ['k8s.*', 'emacs.buffer.*'], sources: [] },
        { name: 'compliance', keepMs: null, encrypt: true, actions: [], sources: [] },
      ],
    });
    assert.match(STARTER_POLICY_YAML, /^# /);
  });
});

describe('schema', () => {
  test('compiles under strict ajv', () => {
    const ajv = new Ajv2020({ strict: true });
    assert.equal(typeof ajv.compile(policySchema), 'function');
  });

  test('every property has a description; every object refuses unknown keys', () => {
    const walk = (s: Record<string, unknown>, at: string) => {
      if (s.type === 'object') assert.equal(s.additionalProperties, false, `${at} allows unknown keys`);
      for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        assert.ok(typeof v.description === 'string' || typeof v.$ref === 'string', `${at}.${k} has no description`);
        walk(v, `${at}.${k}`);
      }
      for (const [k, v] of Object.entries((s.$defs ?? {}) as Record<string, Record<string, unknown>>)) {
        assert.ok(typeof v.description === 'string', `$defs.${k} has no description`);
        walk(v, `$defs.${k}`);
      }
    };
    walk(policySchema as unknown as Record<string, unknown>, '');
  });

  test('the duration patterns agree with src/duration.ts', () => {
    const re = new RegExp(DURATION_PATTERN);
    const keep = new RegExp(KEEP_PATTERN);
    for (const s of [
      '90d',
      '36h',
      '1h30m',
      '500ms',
      '7y',
      '2w',
      '1d1ms',
      '0s',
      '90',
      'd',
      '90x',
      '1.5h',
      ' 1h',
      '1H',
      'forever',
      '',
    ]) {
      assert.equal(re.test(s), isDuration(s), s);
      assert.equal(keep.test(s), s === 'forever' || isDuration(s), s);
    }
  });
});

describe('formatKeep / formatDuration', () => {
  test('largest exact unit, read back by parseDuration', () => {
    assert.equal(formatKeep(null), 'forever');
    const cases: [string, string][] = [
      ['90d', '90d'],
      ['36h', '36h'],
      ['1d12h', '36h'],
      ['1y', '1y'],
      ['2w', '14d'],
      ['1h30m', '90m'],
      ['1500ms', '1500ms'],
      ['3s', '3s'],
    ];
    for (const [text, shown] of cases) {
      assert.equal(formatKeep(parseDuration(text)), shown);
      assert.equal(parseDuration(formatDuration(parseDuration(text))), parseDuration(text));
    }
  });
});
