/** The authoriser (./access.ts): the policy matrix, the custom stele.cedar policies, the memo, readableTiers. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { subjectHash } from '../keys/subject.js';
import {
  ACCESS_ACTIONS,
  type AccessAction,
  type AccessResource,
  Authorizer,
  DECISION_CACHE_LIMIT,
  type EntryResource,
} from './access.js';
import { DEFAULT_POLICY, type Policy, parsePolicy } from './policy.js';

const YAML = `version: 1
retention:
  default: compliance
  tiers:
    - name: operational
      keep: 90d
      match:
        actions: ["k8s.*", "emacs.buffer.*"]
    - name: compliance
      keep: forever
identity:
  issuers:
    - issuer: https://keycloak.example.com/realms/acme
      audience: stele
roles:
  admin:   { members: [group:sre, user:root@acme.com], actions: [append, read, search, export, erase, hold, admin] }
  auditor: { members: [group:audit, user:carol@acme.com], actions: [read, search, export], tiers: [compliance] }
  writer:  { actions: [append] }
  k8s:     { members: [key:k8s-webhook, cert:kube-apiserver], actions: [append], vouch: ["k8s.*"] }
  monitoring: { members: [key:prometheus], actions: [metrics] }
`;

const CEDAR = `// Exports only of compliance entries, whoever asks.
@id("export-compliance-only")
forbid(principal, action == Stele::Action::"export", resource is Stele::Entry)
unless { resource in Stele::Tier::"compliance" };

// No one reads the records of their own erasure.
@id("no-own-erasure")
forbid(principal is Stele::User, action == Stele::Action::"read", resource is Stele::Entry)
when { resource.action == "stele.erasure" && resource.subject_hash == principal.subject_hash };
`;

const PEPPER = Buffer.alloc(32, 7);
const policy = parsePolicy(YAML, 'stele.policy.yaml', { cedar: { text: CEDAR, source: 'stele.cedar' } });
const authz = Authorizer.create(policy, { pepper: PEPPER });

const ISSUER = 'https://keycloak.example.com/realms/acme';
const user = (id: string, groups: string[] = []): Principal => ({
  kind: 'user',
  id,
  method: 'oidc',
  issuer: ISSUER,
  groups,
  roles: [],
});
const apikey = (id: string, roles: string[] = []): Principal => ({ kind: 'apikey', id, method: 'apikey', groups: [], roles });
const cert = (id: string): Principal => ({ kind: 'cert', id, method: 'mtls', issuer: 'CN=Client CA', groups: [], roles: [] });
const service = (id: string): Principal => ({ kind: 'service', id, method: 'oidc', issuer: ISSUER, groups: [], roles: [] });

function entry(tier: string, fields: Partial<EntryResource> = {}): EntryResource {
  return {
    type: 'Entry',
    tier,
    action: tier === 'operational' ? 'k8s.pods.delete' : 'git.push',
    source: 'git',
    actor: 'bob@acme.com',
    actor_type: 'human',
    outcome: 'success',
    principal: 'ci',
    subject_hash: '',
    ...fields,
  };
}

const event = (action: string, actor = 'someone-else@acme.com'): AccessResource => ({
  type: 'Event',
  action,
  source: action.split('.')[0] as string,
  actor,
});

/** Every (action, resource) the matrix asks, by label. */
const CASES: Record<string, [AccessAction, AccessResource]> = {
  append: ['append', event('git.commit')],
  'vouch k8s': ['vouch', event('k8s.pods.delete')],
  'vouch git': ['vouch', event('git.push')],
  'read log': ['read', { type: 'Log' }],
  'read compliance': ['read', entry('compliance')],
  'read operational': ['read', entry('operational')],
  'search log': ['search', { type: 'Log' }],
  'search compliance': ['search', entry('compliance')],
  'search operational': ['search', entry('operational')],
  'export log': ['export', { type: 'Log' }],
  'export compliance': ['export', entry('compliance')],
  'export operational': ['export', entry('operational')],
  erase: ['erase', { type: 'Log' }],
  hold: ['hold', { type: 'Log' }],
  admin: ['admin', { type: 'Log' }],
  metrics: ['metrics', { type: 'Log' }],
};

const ADMIN = [
  'append',
  'read log',
  'read compliance',
  'read operational',
  'search log',
  'search compliance',
  'search operational',
  'export log',
  'export compliance',
  // not 'export operational': stele.cedar forbids it to everyone
  'erase',
  'hold',
  'admin',
];
const AUDITOR = ['read log', 'read compliance', 'search log', 'search compliance', 'export log', 'export compliance'];
const WRITER = ['append'];
const K8S = ['append', 'vouch k8s'];

const PRINCIPALS: [string, Principal, string[]][] = [
  ['admin through group:sre', user('alice@acme.com', ['sre', 'staff']), ADMIN],
  ['admin through user:root@acme.com', user('root@acme.com'), ADMIN],
  ['auditor through group:audit', user('dave@acme.com', ['audit']), AUDITOR],
  ['auditor through user:carol@acme.com', user('carol@acme.com'), AUDITOR],
  ['writer through the API key role', apikey('ci', ['writer']), WRITER],
  ['admin through the API key role', apikey('ops', ['admin']), ADMIN],
  ['k8s through key:k8s-webhook', apikey('k8s-webhook'), K8S],
  ['monitoring through key:prometheus: metrics and nothing else', apikey('prometheus'), ['metrics']],
  ['k8s through cert:kube-apiserver', cert('kube-apiserver'), K8S],
  ['writer and k8s (credential role and membership)', apikey('k8s-webhook', ['writer']), K8S],
  ['auditor and writer: the union', { ...user('dave@acme.com', ['audit']), roles: ['writer'] }, ['append', ...AUDITOR]],
  ['a user in no role', user('eve@acme.com', ['marketing']), []],
  ['a user whose id is a group name', user('sre'), []],
  ['a service in no role', service('backup'), []],
  ['an API key with no role', apikey('stray'), []],
  ['an API key with a role the policy lacks', apikey('old', ['reader']), []],
  ['a key named like a member of another kind', apikey('kube-apiserver'), []],
];

describe('the policy matrix', () => {
  for (const [name, p, allowed] of PRINCIPALS) {
    test(name, () => {
      const got = Object.entries(CASES)
        .filter(([, [action, resource]]) => authz.allowed(p, action, resource))
        .map(([label]) => label);
      assert.deepEqual(got, allowed);
    });
  }

  test('every action is covered', () => {
    assert.deepEqual(new Set(Object.values(CASES).map(([a]) => a)), new Set(ACCESS_ACTIONS));
  });

  test('decisions name the policies that determined them', () => {
    const alice = user('alice@acme.com', ['sre']);
    assert.deepEqual(authz.decide(alice, 'read', entry('operational')), {
      allowed: true,
      policies: ['role:admin:read'],
      errors: [],
    });
    assert.deepEqual(authz.decide(alice, 'export', entry('operational')), {
      allowed: false,
      policies: ['export-compliance-only'],
      errors: [],
    });
    assert.deepEqual(authz.decide(apikey('k8s-webhook'), 'vouch', event('k8s.pods.delete')).policies, ['role:k8s:vouch']);
    assert.deepEqual(authz.decide(user('eve@acme.com'), 'admin', { type: 'Log' }), { allowed: false, policies: [], errors: [] });
  });

  test('local principals (the data directory itself) are always allowed', () => {
    const local: Principal = { kind: 'local', id: 'root', method: 'local', groups: [], roles: [] };
    for (const [action, resource] of Object.values(CASES)) {
      assert.deepEqual(authz.decide(local, action, resource), { allowed: true, policies: ['local'], errors: [] });
    }
    assert.deepEqual(authz.readableTiers(local, 'export'), ['operational', 'compliance']);
  });

  test('`*` makes every authenticated principal a member', () => {
    const p = parsePolicy(
      'version: 1\nroles:\n  everyone: { members: ["*"], actions: [search] }\n  admin: { actions: [admin] }\n',
      'p.yaml',
    );
    const a = Authorizer.create(p);
    for (const who of [user('x@y.z'), apikey('k'), cert('c'), service('s')]) {
      assert.equal(a.allowed(who, 'search', { type: 'Log' }), true);
      assert.equal(a.allowed(who, 'admin', { type: 'Log' }), false);
    }
  });

  test('the built-in policy: admin and writer held through API keys only', () => {
    const a = Authorizer.create(DEFAULT_POLICY);
    assert.equal(a.allowed(apikey('admin', ['admin']), 'erase', { type: 'Log' }), true);
    assert.equal(a.allowed(apikey('ci', ['writer']), 'append', event('git.push')), true);
    // Keys write what people did, as before roles existed.
    assert.equal(a.allowed(apikey('ci', ['writer']), 'vouch', event('git.push')), true);
    assert.equal(a.allowed(apikey('stray'), 'vouch', event('git.push')), false);
    assert.equal(a.allowed(apikey('ci', ['writer']), 'search', { type: 'Log' }), false);
    assert.equal(a.allowed(user('alice@acme.com', ['sre']), 'read', entry('default')), false);
  });

  test('a policy with no roles refuses everyone but local', () => {
    const a = Authorizer.create(parsePolicy('version: 1\nroles: {}\n', 'p.yaml'));
    assert.equal(a.allowed(apikey('admin', ['admin']), 'admin', { type: 'Log' }), false);
    assert.match(a.describe().schema, /entity Role;/);
  });
});

describe('custom stele.cedar policies', () => {
  const root = user('root@acme.com');
  const erasure = (subject: string) =>
    entry('compliance', { action: 'stele.erasure', subject_hash: subjectHash(PEPPER, subject) });

  test('no one reads the erasure records about themselves', () => {
    assert.deepEqual(authz.decide(root, 'read', erasure('root@acme.com')), {
      allowed: false,
      policies: ['no-own-erasure'],
      errors: [],
    });
    assert.equal(authz.allowed(root, 'read', erasure('frank@acme.com')), true);
    // Searching and exporting them is not what the forbid covers.
    assert.equal(authz.allowed(root, 'search', erasure('root@acme.com')), true);
    // A key has no subject hash: the forbid is for users.
    assert.equal(authz.allowed(apikey('ops', ['admin']), 'read', erasure('ops')), true);
  });

  test("a user's subject_hash is the key store's hash of their id; without a pepper it matches no entry", () => {
    const noPepper = Authorizer.create(policy);
    assert.equal(noPepper.allowed(root, 'read', erasure('root@acme.com')), true);
    assert.equal(noPepper.allowed(root, 'read', entry('compliance', { action: 'stele.erasure' })), true);
  });

  test('permits can be added', () => {
    const extra = `${CEDAR}
@id("eve-reads-her-own")
permit(principal is Stele::User, action in [Stele::Action::"read", Stele::Action::"search"], resource)
when { resource is Stele::Log || (resource is Stele::Entry && resource.actor == principal.id) };
`;
    const a = Authorizer.create(parsePolicy(YAML, 'p.yaml', { cedar: { text: extra, source: 'stele.cedar' } }));
    const eve = user('eve@acme.com');
    assert.deepEqual(a.decide(eve, 'read', entry('operational', { actor: 'eve@acme.com' })).policies, ['eve-reads-her-own']);
    assert.equal(a.allowed(eve, 'read', entry('operational', { actor: 'bob@acme.com' })), false);
    assert.deepEqual(a.readableTiers(eve, 'read'), ['operational', 'compliance']);
    assert.equal(a.allowed(eve, 'export', { type: 'Log' }), false);
  });

  test('policies may name groups and roles; ids default to file:line', () => {
    const text = 'forbid(principal in Stele::Group::"contractors", action, resource);\n';
    const p = parsePolicy(YAML, 'p.yaml', { cedar: { text, source: 'conf/stele.cedar' } });
    const a = Authorizer.create(p);
    const contractor = user('alice@acme.com', ['sre', 'contractors']);
    assert.deepEqual(a.decide(contractor, 'hold', { type: 'Log' }), { allowed: false, policies: ['stele.cedar:1'], errors: [] });
    assert.equal(a.allowed(user('alice@acme.com', ['sre']), 'hold', { type: 'Log' }), true);
    assert.match(a.describe().policies, /@id\("stele\.cedar:1"\)\nforbid\(principal in Stele::Group::"contractors"/);
  });

  test('a policy edited by hand after loading is checked again', () => {
    const broken: Policy = {
      ...policy,
      cedar: { source: 'x.cedar', sha256: '', text: 'permit(principal, action, resource) when { resource.nope };' },
    };
    assert.throws(
      () => Authorizer.create(broken),
      (err: SteleError) => err.code === 'bad_policy' && /^x\.cedar:1:44: attribute `nope`/.test(err.message),
    );
  });
});

describe('readableTiers', () => {
  test('the tiers where an entry-level permit may apply', () => {
    assert.deepEqual(authz.readableTiers(user('alice@acme.com', ['sre']), 'read'), ['operational', 'compliance']);
    assert.deepEqual(authz.readableTiers(user('carol@acme.com'), 'search'), ['compliance']);
    // The export forbid leaves only compliance, even for admins.
    assert.deepEqual(authz.readableTiers(user('root@acme.com'), 'export'), ['compliance']);
    assert.deepEqual(authz.readableTiers(apikey('ci', ['writer']), 'read'), []);
    assert.deepEqual(authz.readableTiers(user('eve@acme.com'), 'read'), []);
  });

  test('only for actions on entries', () => {
    assert.throws(() => authz.readableTiers(user('root@acme.com'), 'erase'), TypeError);
  });
});

describe('the memo', () => {
  test('a million-entry export with few attribute tuples asks Cedar a few times', () => {
    const a = Authorizer.create(policy, { pepper: PEPPER });
    const alice = user('alice@acme.com', ['sre', 'staff']);
    for (let i = 0; i < 20_000; i++) {
      // actor, source, outcome and principal vary, but no policy reads them.
      const e = entry(i % 2 ? 'compliance' : 'operational', { actor: `u${i}@acme.com`, source: `s${i % 7}`, principal: `k${i}` });
      assert.equal(a.allowed(alice, 'export', e), i % 2 === 1);
    }
    assert.equal(a.evaluations, 2);
    // An equal principal in another object shares the memo.
    a.allowed(user('alice@acme.com', ['staff', 'sre']), 'export', entry('compliance'));
    assert.equal(a.evaluations, 2);
  });

  test('attributes a policy reads are part of the key', () => {
    const a = Authorizer.create(policy, { pepper: PEPPER });
    const root = user('root@acme.com');
    const own = subjectHash(PEPPER, 'root@acme.com');
    assert.equal(a.allowed(root, 'read', entry('compliance', { action: 'stele.erasure', subject_hash: 'aa' })), true);
    assert.equal(a.allowed(root, 'read', entry('compliance', { action: 'stele.erasure', subject_hash: own })), false);
    assert.equal(a.evaluations, 2);
  });

  test('it is bounded, and keeps answering right when it starts over', () => {
    // Also a regression test: this many distinct decisions in a row used to abort Node 20 (see cedar()).
    const a = Authorizer.create(policy, { pepper: PEPPER });
    const alice = user('alice@acme.com', ['sre', 'staff']);
    for (let i = 0; i < 2000; i++) a.allowed(alice, 'read', entry('compliance', { action: `git.push.${-i}` }));
    const n = 2 * DECISION_CACHE_LIMIT;
    for (let i = 0; i < n; i++) assert.equal(a.allowed(alice, 'read', entry('compliance', { action: `git.push.${i}` })), true);
    assert.equal(a.evaluations, 1999 + n);
    assert.equal(a.allowed(alice, 'read', entry('compliance', { action: 'git.push.1' })), true);
    assert.equal(a.evaluations, 1999 + n + 1);
  });

  test('differing principals do not share decisions', () => {
    const a = Authorizer.create(policy);
    const e = entry('operational');
    assert.equal(a.allowed(user('dave@acme.com', ['audit']), 'read', e), false);
    assert.equal(a.allowed(user('dave@acme.com', ['audit', 'sre']), 'read', e), true);
    assert.equal(a.allowed(apikey('dave@acme.com', ['auditor']), 'read', e), false);
    assert.equal(a.allowed(apikey('dave@acme.com', ['admin']), 'read', e), true);
  });
});

describe('malformed requests are refused, with the reason', () => {
  test('an action on a resource it does not apply to', () => {
    const root = user('root@acme.com');
    assert.deepEqual(authz.decide(root, 'erase', entry('compliance')), {
      allowed: false,
      policies: [],
      errors: ['erase does not apply to Entry'],
    });
    assert.equal(authz.allowed(root, 'append', { type: 'Log' }), false);
  });

  test('an entry without an attribute (it could dodge a forbid)', () => {
    const e = { ...entry('compliance', { action: 'stele.erasure' }) } as Partial<EntryResource>;
    delete e.subject_hash;
    const d = authz.decide(user('root@acme.com'), 'read', e as EntryResource);
    assert.deepEqual(d, { allowed: false, policies: [], errors: ['Entry.subject_hash must be a string, not missing'] });
  });
});

describe('the compiled Cedar', () => {
  test('roles become permits with stable ids, then stele.cedar follows', () => {
    const { schema, policies } = authz.describe();
    assert.match(schema, /^namespace Stele \{/);
    assert.match(schema, /entity Role enum \["admin", "auditor", "writer", "k8s", "monitoring"\];/);
    assert.match(schema, /entity Tier enum \["operational", "compliance"\];/);
    assert.ok(
      policies.includes(
        '@id("role:auditor:search")\npermit(principal in Stele::Role::"auditor", action == Stele::Action::"search", resource)\n' +
          'when { resource is Stele::Log || resource in [Stele::Tier::"compliance"] };',
      ),
    );
    assert.ok(
      policies.includes(
        '@id("role:writer:append")\npermit(principal in Stele::Role::"writer", action == Stele::Action::"append", resource);',
      ),
    );
    assert.ok(
      policies.includes(
        '@id("role:k8s:vouch")\npermit(principal in Stele::Role::"k8s", action == Stele::Action::"vouch", resource is Stele::Event)\n' +
          'when { resource.action like "k8s.*" };',
      ),
    );
    assert.ok(policies.indexOf('@id("no-own-erasure")') > policies.indexOf('@id("role:k8s:vouch")'));
  });

  test('a structured clone of the policy (as posted to a worker) builds the same authoriser', () => {
    const copy = Authorizer.create(structuredClone(policy), { pepper: PEPPER });
    assert.deepEqual(copy.describe(), authz.describe());
    assert.equal(copy.allowed(user('dave@acme.com', ['audit']), 'export', entry('compliance')), true);
  });
});

test('entryDependent: only a policy that can apply to entries and reads more than their tier makes decisions per entry', () => {
  const withCedar = (text: string) =>
    Authorizer.create(parsePolicy(YAML, 'stele.policy.yaml', { cedar: { text, source: 'stele.cedar' } })).entryDependent;
  // Roles (tier restrictions, vouch globs on events) decide an entry by its tier.
  assert.equal(Authorizer.create(parsePolicy(YAML, 'stele.policy.yaml')).entryDependent, false);
  assert.equal(Authorizer.create(DEFAULT_POLICY).entryDependent, false);
  assert.equal(
    withCedar(
      'forbid(principal, action == Stele::Action::"export", resource is Stele::Entry)\nunless { resource in Stele::Tier::"compliance" };',
    ),
    false,
  );
  assert.equal(
    withCedar('forbid(principal, action == Stele::Action::"append", resource) when { resource.action like "hr.*" };'),
    false,
  );
  assert.equal(withCedar('forbid(principal, action, resource is Stele::Entry) when { resource.action like "hr.*" };'), true);
  assert.equal(
    withCedar('forbid(principal, action in [Stele::Action::"read"], resource is Stele::Entry) when { resource.actor == "x" };'),
    true,
  );
});
