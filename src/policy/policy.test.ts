import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { isDuration, parseDuration } from '../core/duration.js';
import { SteleError } from '../core/errors.js';
import {
  DEFAULT_POLICY,
  DEFAULT_POLICY_YAML,
  defaultRoles,
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
      identity: { issuers: [] },
      roles: defaultRoles(),
      cedar: null,
      alerts: { rules: [], notifiers: [] },
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
      'unencrypted tier beside a role restricting tiers',
      oneTier('      keep: forever\n      encrypt: false\n') + 'roles:\n  auditor:\n    actions: [read]\n    tiers: [a]\n',
      `${FILE}:11:5: roles.auditor.tiers: role "auditor" restricts the tiers it reads, but tier "a" is unencrypted ` +
        '(encrypt: false): its events are public, readable by anyone without credentials under /log/ and /v1/entries, ' +
        'so no role can restrict them; encrypt tier "a" (remove "encrypt: false") while any role restricts tiers',
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
      'version: 1\nwebhooks: []\nretention:\n  default: a\n  keepp: 1d\n  tiers:\n    - name: a\n      kepp: 1d\n      keep: forever\n' +
      '      match:\n        actions: ["*"]\n        source: [git]\n';
    assert.deepEqual(problems(text), [
      `${FILE}:2:1: webhooks: unknown key (allowed here: version, retention, identity, roles, alerts)`,
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
      alerts: { rules: [], notifiers: [] },
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
    // Union types: an issuer's audience is a string or a list.
    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
    assert.equal(typeof ajv.compile(policySchema), 'function');
  });

  test('every property has a description; every object refuses unknown keys or constrains them', () => {
    const walk = (s: Record<string, unknown>, at: string) => {
      if (s.type === 'object') {
        // A record (roles by name, required claims) constrains its keys with propertyNames instead.
        const isMap = typeof s.additionalProperties === 'object' && typeof s.propertyNames === 'object';
        assert.ok(s.additionalProperties === false || isMap, `${at} allows unknown keys`);
      }
      if (typeof s.additionalProperties === 'object') walk(s.additionalProperties as Record<string, unknown>, `${at}.*`);
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

  test('the duration patterns agree with src/core/duration.ts', () => {
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

// ---------------------------------------------------------------------------------------------
// identity and roles

const IDENTITY = `version: 1
retention:
  default: compliance
  tiers:
    - name: operational
      keep: 90d
      match: { actions: ["k8s.*"] }
    - name: compliance
      keep: forever
identity:
  issuers:
    - issuer: https://keycloak.example.com/realms/acme
      audience: stele
    - issuer: https://login.microsoftonline.com/9188040d/v2.0
      audience: [api://stele, stele-prod]
      actor_claim: preferred_username
      groups_claim: roles
      service_claim: azp
      algorithms: [RS256]
      clock_skew: 2m
      require: { tid: 9188040d }
      jwks_uri: https://login.microsoftonline.com/9188040d/discovery/v2.0/keys
    - issuer: http://127.0.0.1:8080/realms/test
      audience: stele
roles:
  admin:   { members: [group:sre, user:root@acme.com], actions: [append, read, search, export, erase, hold, admin] }
  auditor: { members: [group:audit], actions: [read, search, export], tiers: [compliance] }
  writer:  { actions: [append] }
  k8s:     { members: [key:k8s-webhook, cert:kube-apiserver, service:argo], actions: [append], vouch: [k8s.*] }
  everyone: { members: ["*"], actions: [search] }
`;

describe('parsePolicy: identity and roles', () => {
  test('compile to IssuerConfig and Role, with defaults', () => {
    const p = parsePolicy(IDENTITY, FILE);
    assert.deepEqual(p.identity.issuers, [
      {
        issuer: 'https://keycloak.example.com/realms/acme',
        audience: ['stele'],
        actorClaim: 'email',
        groupsClaim: 'groups',
        serviceClaim: 'client_id',
        algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        clockSkewS: 30,
        require: {},
      },
      {
        issuer: 'https://login.microsoftonline.com/9188040d/v2.0',
        audience: ['api://stele', 'stele-prod'],
        actorClaim: 'preferred_username',
        groupsClaim: 'roles',
        serviceClaim: 'azp',
        algorithms: ['RS256'],
        clockSkewS: 120,
        require: { tid: '9188040d' },
        jwksUri: 'https://login.microsoftonline.com/9188040d/discovery/v2.0/keys',
      },
      {
        issuer: 'http://127.0.0.1:8080/realms/test',
        audience: ['stele'],
        actorClaim: 'email',
        groupsClaim: 'groups',
        serviceClaim: 'client_id',
        algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        clockSkewS: 30,
        require: {},
      },
    ]);
    assert.deepEqual(p.roles, [
      {
        name: 'admin',
        members: ['group:sre', 'user:root@acme.com'],
        actions: ['append', 'read', 'search', 'export', 'erase', 'hold', 'admin'],
        tiers: [],
        vouch: [],
      },
      { name: 'auditor', members: ['group:audit'], actions: ['read', 'search', 'export'], tiers: ['compliance'], vouch: [] },
      { name: 'writer', members: [], actions: ['append'], tiers: [], vouch: [] },
      {
        name: 'k8s',
        members: ['key:k8s-webhook', 'cert:kube-apiserver', 'service:argo'],
        actions: ['append'],
        tiers: [],
        vouch: ['k8s.*'],
      },
      { name: 'everyone', members: ['*'], actions: ['search'], tiers: [], vouch: [] },
    ]);
    assert.equal(p.cedar, null);
    assert.deepEqual(structuredClone(p), p);
  });

  test('without roles: admin and writer, no members; without identity: no issuers', () => {
    const p = parsePolicy('version: 1\n', FILE);
    assert.deepEqual(p.roles, defaultRoles());
    assert.deepEqual(p.identity, { issuers: [] });
    assert.deepEqual(parsePolicy('version: 1\nidentity: {}\nroles: {}\n', FILE).roles, []);
  });

  test('a role may only vouch; tiers of the built-in retention', () => {
    const p = parsePolicy('version: 1\nroles:\n  k8s: { vouch: ["k8s.*"] }\n  r: { actions: [read], tiers: [default] }\n', FILE);
    assert.deepEqual(p.roles[0], { name: 'k8s', members: [], actions: [], tiers: [], vouch: ['k8s.*'] });
    assert.deepEqual(p.roles[1]?.tiers, ['default']);
  });

  test('loopback issuers may use plain http', () => {
    for (const url of ['http://localhost:8080/realms/x', 'http://127.0.0.1/', 'http://[::1]:9000/o']) {
      const p = parsePolicy(`version: 1\nidentity:\n  issuers:\n    - issuer: ${url}\n      audience: stele\n`, FILE);
      assert.equal(p.identity.issuers[0]?.issuer, url);
    }
  });

  /** A file with one issuer: `lines` at its item indent (6 spaces), after "- issuer: ...". */
  const issuer = (lines: string, url = 'https://idp.example.com') =>
    `version: 1\nidentity:\n  issuers:\n    - issuer: ${url}\n${lines}`;
  /** A file with roles (`lines` at 2 spaces) and tiers a, b. */
  const roles = (lines: string) =>
    `version: 1\nretention:\n  default: a\n  tiers:\n    - name: a\n      keep: forever\n    - name: b\n      keep: forever\nroles:\n${lines}`;

  const cases: [string, string, string][] = [
    [
      'issuer on plain http',
      issuer('      audience: stele\n', 'http://idp.example.com/realms/acme'),
      `${FILE}:4:15: identity.issuers[0].issuer: "http://idp.example.com/realms/acme" must use https (plain http only for 127.0.0.1, localhost or [::1])`,
    ],
    [
      'issuer not a URL',
      issuer('      audience: stele\n', 'keycloak'),
      `${FILE}:4:15: identity.issuers[0].issuer: "keycloak" is not a URL`,
    ],
    [
      'issuer with a query',
      issuer('      audience: stele\n', 'https://idp.example.com/?tenant=1'),
      `${FILE}:4:15: identity.issuers[0].issuer: "https://idp.example.com/?tenant=1": an issuer has no query or fragment`,
    ],
    [
      'missing audience',
      issuer('      actor_claim: email\n'),
      `${FILE}:4:7: identity.issuers[0].audience: missing: the aud value (or a list of them) its tokens carry for this server`,
    ],
    [
      'audience a number',
      issuer('      audience: 3\n'),
      `${FILE}:5:17: identity.issuers[0].audience: must be a string or a list, not the number 3`,
    ],
    [
      'empty audience list',
      issuer('      audience: []\n'),
      `${FILE}:5:17: identity.issuers[0].audience: list at least one audience`,
    ],
    [
      'algorithm none',
      issuer('      audience: stele\n      algorithms: [RS256, none]\n'),
      `${FILE}:6:27: identity.issuers[0].algorithms[1]: "none" is refused: tokens must be signed with the issuer's private key, ` +
        'so neither "none" nor the shared-secret HMAC algorithms (HS*) are accepted; use RS256, RS384, RS512, PS256, PS384, ' +
        'PS512, ES256, ES384, ES512, EdDSA, Ed25519',
    ],
    [
      'algorithm HS256',
      issuer('      audience: stele\n      algorithms:\n        - HS256\n'),
      `${FILE}:7:11: identity.issuers[0].algorithms[0]: "HS256" is refused: tokens must be signed with the issuer's private key, ` +
        'so neither "none" nor the shared-secret HMAC algorithms (HS*) are accepted; use RS256, RS384, RS512, PS256, PS384, ' +
        'PS512, ES256, ES384, ES512, EdDSA, Ed25519',
    ],
    [
      'unknown algorithm',
      issuer('      audience: stele\n      algorithms: [rs256]\n'),
      `${FILE}:6:20: identity.issuers[0].algorithms[0]: "rs256" is not a supported JWS algorithm (did you mean RS256? ` +
        'supported: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519)',
    ],
    [
      'clock skew too long',
      issuer('      audience: stele\n      clock_skew: 10m\n'),
      `${FILE}:6:19: identity.issuers[0].clock_skew: 10m is too long: tolerate at most 5m of clock skew`,
    ],
    [
      'clock skew not a duration',
      issuer('      audience: stele\n      clock_skew: 30\n'),
      `${FILE}:6:19: identity.issuers[0].clock_skew: must be a string, not the number 30`,
    ],
    [
      'required claim not a string',
      issuer('      audience: stele\n      require: { tid: 42 }\n'),
      `${FILE}:6:23: identity.issuers[0].require.tid: must be a string, not the number 42`,
    ],
    [
      'jwks_uri on plain http',
      issuer('      audience: stele\n      jwks_uri: http://idp.example.com/keys\n'),
      `${FILE}:6:17: identity.issuers[0].jwks_uri: "http://idp.example.com/keys" must use https (plain http only for 127.0.0.1, localhost or [::1])`,
    ],
    [
      'a console entry without its client',
      issuer('      audience: stele\n      console: { label: SSO }\n'),
      `${FILE}:6:16: identity.issuers[0].console.client_id: missing (required)`,
    ],
    [
      'empty claim name',
      issuer('      audience: stele\n      groups_claim: ""\n'),
      `${FILE}:6:21: identity.issuers[0].groups_claim: must not be empty`,
    ],
    [
      'unknown issuer key',
      issuer('      audiance: stele\n      audience: stele\n'),
      `${FILE}:5:7: identity.issuers[0].audiance: unknown key (did you mean audience? allowed here: issuer, audience, actor_claim, require_email_verified, require_at_jwt, service_clients, ` +
        'groups_claim, service_claim, algorithms, clock_skew, require, jwks_uri, console)',
    ],
    [
      'issuers not a list',
      'version: 1\nidentity:\n  issuers: https://idp.example.com\n',
      `${FILE}:3:12: identity.issuers: must be a list, not the string "https://idp.example.com"`,
    ],
    [
      'bad role name',
      roles('  Auditors: { actions: [read] }\n'),
      `${FILE}:10:3: roles.Auditors: "Auditors" is not a role name: use lower-case letters, digits, _ and -, starting with a letter`,
    ],
    [
      'bad member',
      roles('  admin: { members: [group:sre, alice], actions: [admin] }\n'),
      `${FILE}:10:33: roles.admin.members[1]: "alice" is not a member: use user:<id>, group:<name>, key:<API key name>, ` +
        'cert:<CN>, service:<client id>, sub:<issuer>#<sub>, or * for every authenticated principal',
    ],
    [
      'member listed twice',
      roles('  admin: { members: [group:sre, group:sre], actions: [admin] }\n'),
      `${FILE}:10:33: roles.admin.members[1]: "group:sre" is listed twice (also item 1)`,
    ],
    [
      'unknown action',
      roles('  admin: { actions: [read, serach] }\n'),
      `${FILE}:10:28: roles.admin.actions[1]: "serach" is not an action (did you mean search? allowed: append, read, search, ` +
        'export, erase, hold, admin, metrics; vouching is given by vouch)',
    ],
    [
      'vouch as an action',
      roles('  k8s: { actions: [append, vouch] }\n'),
      `${FILE}:10:28: roles.k8s.actions[1]: "vouch" is not an action (allowed: append, read, search, export, erase, hold, admin, metrics; ` +
        'vouching is given by vouch)',
    ],
    [
      'a tier that does not exist',
      roles('  auditor: { actions: [read], tiers: [a, c] }\n'),
      `${FILE}:10:42: roles.auditor.tiers[1]: "c" is not one of the tiers (a, b)`,
    ],
    [
      'tiers on a role that does not read',
      roles('  writer: { actions: [append], tiers: [a] }\n'),
      `${FILE}:10:32: roles.writer.tiers: tiers restricts read, search and export, which this role does not allow`,
    ],
    [
      'tiers on a role that only vouches',
      roles('  k8s: { vouch: ["k8s.*"], tiers: [a] }\n'),
      `${FILE}:10:28: roles.k8s.tiers: tiers restricts read, search and export, which this role does not allow`,
    ],
    [
      'a role that grants nothing',
      roles('  idle: { members: [group:x] }\n'),
      `${FILE}:10:3: roles.idle: the role grants nothing: list its actions (append, read, search, export, erase, hold, admin, metrics) ` +
        'or the events it may vouch for',
    ],
    [
      'a vouch glob with upper case',
      roles('  k8s: { actions: [append], vouch: ["K8s.*"] }\n'),
      `${FILE}:10:37: roles.k8s.vouch[0]: "K8s.*" is not a pattern: use lower-case letters, digits, ., _, - and * (any run of characters)`,
    ],
    [
      'unknown role key',
      roles('  admin: { member: [group:sre], actions: [admin] }\n'),
      `${FILE}:10:12: roles.admin.member: unknown key (did you mean members? allowed here: members, actions, tiers, vouch)`,
    ],
    ['roles a list', 'version: 1\nroles: [admin]\n', `${FILE}:2:8: roles: must be a mapping, not a list`],
  ];
  for (const [name, text, expected] of cases) {
    test(name, () => assert.deepEqual(problems(text), [expected]));
  }

  test('an issuer listed twice: the second, naming the first', () => {
    const text =
      'version: 1\nidentity:\n  issuers:\n    - { issuer: "https://a.example", audience: x }\n    - { issuer: "https://a.example", audience: y }\n';
    assert.deepEqual(problems(text), [
      `${FILE}:5:17: identity.issuers[1].issuer: issuer https://a.example is listed twice (also identity.issuers[0].issuer at line 4)`,
    ]);
  });

  test('the starter file: its commented examples are valid too', () => {
    let inIdentity = false;
    const uncommented = STARTER_POLICY_YAML.split('\n')
      .map((line) => {
        if (line === '# identity:') inIdentity = true;
        if (line === '') inIdentity = false;
        if (inIdentity) return line.replace(/^# /, '');
        if (/^ {2}# (monitoring|auditor|k8s):|^ {2}# {3}\S|^ {4}# members:/.test(line)) return line.replace('# ', '');
        return line;
      })
      .join('\n');
    assert.notEqual(uncommented, STARTER_POLICY_YAML);
    const p = parsePolicy(uncommented, FILE);
    assert.deepEqual(
      p.roles.map((r) => [r.name, r.members]),
      [
        ['admin', ['group:sre', 'user:root@example.com']],
        ['writer', []],
        ['monitoring', []],
        ['auditor', ['group:audit']],
        ['k8s', ['key:k8s-webhook']],
      ],
    );
    assert.equal(p.identity.issuers[0]?.issuer, 'https://keycloak.example.com/realms/acme');
    assert.deepEqual(parsePolicy(STARTER_POLICY_YAML, FILE).roles, defaultRoles());
  });
});

// ---------------------------------------------------------------------------------------------
// The companion Cedar file

const GOOD_CEDAR = `// Exports only of compliance entries.
@id("export-compliance-only")
forbid(principal, action == Stele::Action::"export", resource is Stele::Entry)
unless { resource in Stele::Tier::"compliance" };
`;

describe('the companion Cedar file', () => {
  const cedarProblems = (yaml: string, text: string, source = 'stele.cedar'): string[] => {
    try {
      parsePolicy(yaml, FILE, { cedar: { text, source } });
    } catch (err) {
      assert.ok(err instanceof SteleError);
      assert.equal(err.code, 'bad_policy');
      return err.message.split('\n');
    }
    assert.fail('accepted');
  };

  test('recorded in the policy with its hash and text', () => {
    const p = parsePolicy(IDENTITY, FILE, { cedar: { text: GOOD_CEDAR, source: 'conf/stele.cedar' } });
    assert.deepEqual(p.cedar, { source: 'conf/stele.cedar', sha256: sha256(GOOD_CEDAR), text: GOOD_CEDAR });
    assert.equal(p.sha256, sha256(IDENTITY));
  });

  const cases: [string, string, string[]][] = [
    [
      'a syntax error',
      'permit(principal, action, resource) when { 1 + };\n',
      [
        'stele.cedar:1:48: unexpected token `}`: expected `!`, `(`, `-`, `[`, `{`, `false`, identifier, `if`, number, ' +
          '`?principal`, `?resource`, string literal, or `true`',
      ],
    ],
    [
      'a missing semicolon, after a line of non-ASCII text',
      '// Überwachung — audit\npermit(principal, action, resource)\npermit(principal, action, resource);\n',
      ['stele.cedar:3:7: unexpected token `(`: expected `{`'],
    ],
    [
      'an unknown attribute',
      GOOD_CEDAR +
        '\nforbid(principal is Stele::User, action == Stele::Action::"read", resource is Stele::Entry)\n' +
        'when { resource.subjet_hash == principal.subject_hash };\n',
      ['stele.cedar:7:8: attribute `subjet_hash` on entity type `Stele::Entry` not found; did you mean `subject_hash`?'],
    ],
    [
      'a tier that does not exist',
      'forbid(principal, action == Stele::Action::"read", resource in Stele::Tier::"complience");\n',
      [
        'stele.cedar:1:64: entity `Stele::Tier::"complience"` is of an enumerated entity type, but `"complience"` is not ' +
          'declared as a valid eid; valid entity eids: "operational", "compliance"',
      ],
    ],
    [
      'a role that does not exist',
      'permit(principal in Stele::Role::"auditors", action == Stele::Action::"read", resource);\n',
      [
        'stele.cedar:1:21: entity `Stele::Role::"auditors"` is of an enumerated entity type, but `"auditors"` is not ' +
          'declared as a valid eid; valid entity eids: "admin", "auditor", "writer", "k8s", "everyone"',
      ],
    ],
    [
      'an unknown action',
      'permit(principal, action == Stele::Action::"delete", resource);\n',
      ['stele.cedar:1:29: unrecognized action `Stele::Action::"delete"`; did you mean `Stele::Action::"read"`?'],
    ],
    [
      'an action on a resource it does not apply to',
      'permit(principal, action == Stele::Action::"erase", resource is Stele::Entry);\n',
      ['stele.cedar:1:1: unable to find an applicable action given the policy scope constraints'],
    ],
    [
      'a reserved id, and an id used twice',
      '@id("role:admin:read")\nforbid(principal, action, resource);\n@id("x")\nforbid(principal, action, resource);\n@id("x")\nforbid(principal, action, resource);\n',
      [
        'stele.cedar:1:1: @id("role:admin:read"): ids starting "role:" are reserved for the policies compiled from roles',
        'stele.cedar:5:1: @id("x") is used twice (also line 3)',
      ],
    ],
    [
      'a template',
      'permit(principal == ?principal, action, resource);\n',
      ['stele.cedar:1:1: templates (policies with ?principal or ?resource slots) are not supported: write static policies'],
    ],
  ];
  for (const [name, text, expected] of cases) {
    test(name, () => assert.deepEqual(cedarProblems(IDENTITY, text), expected));
  }

  test('with an invalid policy file, its problems and the Cedar syntax errors, together', () => {
    assert.deepEqual(cedarProblems('version: 2\n', 'forbid(principal, action, resource)\n', 'x/stele.cedar'), [
      `${FILE}:1:10: version: must be 1, not the number 2`,
      'x/stele.cedar:1:36: unexpected end of input: expected `;` or identifier',
    ]);
  });

  describe('loadPolicyFile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stele-cedar-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('reads stele.cedar beside the policy file', () => {
      const sub = join(dir, 'beside');
      mkdirSync(sub);
      writeFileSync(join(sub, 'policy.yaml'), IDENTITY);
      assert.equal(loadPolicyFile(join(sub, 'policy.yaml')).cedar, null);
      writeFileSync(join(sub, 'stele.cedar'), GOOD_CEDAR);
      const p = loadPolicyFile(join(sub, 'policy.yaml'));
      assert.deepEqual(p.cedar, { source: join(sub, 'stele.cedar'), sha256: sha256(GOOD_CEDAR), text: GOOD_CEDAR });
      writeFileSync(join(sub, 'stele.cedar'), 'forbid(principal, action, resource) when { resource.nope };\n');
      // One line per resource type the attribute is missing on, in the order Cedar's validator finds them.
      assert.throws(
        () => loadPolicyFile(join(sub, 'policy.yaml')),
        (err: { code: string; message: string }) => {
          assert.equal(err.code, 'bad_policy');
          assert.deepEqual(
            err.message.split('\n').sort(),
            [
              `${join(sub, 'stele.cedar')}:1:44: attribute \`nope\` on entity type \`Stele::Entry\` not found; did you mean \`source\`?`,
              `${join(sub, 'stele.cedar')}:1:44: attribute \`nope\` on entity type \`Stele::Event\` not found; did you mean \`source\`?`,
              `${join(sub, 'stele.cedar')}:1:44: attribute \`nope\` on entity type \`Stele::Log\` not found`,
            ].sort(),
          );
          return true;
        },
      );
    });

    test('or the file named by the cedar option, which must exist', () => {
      const yaml = join(dir, 'named.yaml');
      writeFileSync(yaml, IDENTITY);
      const cedar = join(dir, 'access.cedar');
      writeFileSync(cedar, GOOD_CEDAR);
      assert.equal(loadPolicyFile(yaml, { cedar }).cedar?.source, cedar);
      const missing = join(dir, 'missing.cedar');
      assert.throws(() => loadPolicyFile(yaml, { cedar: missing }), {
        code: 'bad_policy',
        message: `${missing}:1:1: no such Cedar file`,
      });
    });

    test('a Cedar file that is not UTF-8', () => {
      const sub = join(dir, 'binary');
      mkdirSync(sub);
      writeFileSync(join(sub, 'stele.policy.yaml'), 'version: 1\n');
      writeFileSync(join(sub, 'stele.cedar'), Buffer.from([0x70, 0xff, 0x0a]));
      assert.throws(() => loadPolicyFile(join(sub, 'stele.policy.yaml')), {
        code: 'bad_policy',
        message: `${join(sub, 'stele.cedar')}:1:1: not UTF-8 text`,
      });
    });
  });
});
