/**
 * Identity in the policy (issue 11.3): `sub:<issuer>#<sub>` members, NFC role members, and the
 * issuer options require_email_verified, require_at_jwt and service_clients.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { Authorizer } from './access.js';
import { normalizeMember, parsePolicy, splitSubMember } from './policy.js';

const ISSUER = 'https://keycloak.example.com/realms/acme';
const OTHER = 'https://login.example.org';

const yaml = (members: string, issuerExtra = '') => `version: 1
identity:
  issuers:
    - issuer: ${ISSUER}
      audience: stele
${issuerExtra}    - issuer: ${OTHER}
      audience: stele
roles:
  reader: { members: ${members}, actions: [read, search] }
`;

function problems(text: string): string[] {
  try {
    parsePolicy(text, 'stele.policy.yaml');
  } catch (err) {
    const found = (err as SteleError).detail?.problems as { message: string }[] | undefined;
    return (found ?? []).map((p) => p.message);
  }
  return [];
}

const oidc = (kind: 'user' | 'service', id: string, sub: string | undefined, issuer = ISSUER): Principal => ({
  kind,
  id,
  method: 'oidc',
  issuer,
  ...(sub === undefined ? {} : { sub }),
  groups: [],
  roles: [],
});

describe('sub: members', () => {
  test('sub:<issuer>#<sub> grants the role to that account of that issuer only', () => {
    const policy = parsePolicy(yaml(`["sub:${ISSUER}#f81d4fae-7dec", "sub:${OTHER}#a#b"]`), 'stele.policy.yaml');
    const authz = Authorizer.create(policy);
    const search = (p: Principal) => authz.allowed(p, 'search', { type: 'Log' });
    assert.equal(search(oidc('user', 'alice@acme.com', 'f81d4fae-7dec')), true);
    // The same email on another account, the same sub at another issuer, no sub at all: no role.
    assert.equal(search(oidc('user', 'alice@acme.com', 'other-sub')), false, 'memo keyed on sub too');
    assert.equal(search(oidc('user', 'alice@acme.com', 'f81d4fae-7dec', OTHER)), false);
    assert.equal(search(oidc('user', 'alice@acme.com', undefined)), false);
    // A service's sub matches too; the subject may contain "#" (split at the first one).
    assert.equal(search(oidc('service', 'ci', 'a#b', OTHER)), true);
    // An API key named like the member is not an OIDC account.
    assert.equal(
      search({ kind: 'apikey', id: 'x', method: 'apikey', sub: 'f81d4fae-7dec', issuer: ISSUER, groups: [], roles: [] }),
      false,
    );
  });

  test('a sub: member must name a configured issuer and a subject', () => {
    assert.deepEqual(problems(yaml('["sub:https://typo.example.com#123"]')), [
      `"sub:https://typo.example.com#123" names issuer https://typo.example.com, which is not one of identity.issuers (${ISSUER}, ${OTHER}): it would never match`,
    ]);
    assert.deepEqual(problems(yaml('["sub:12345"]')), [
      '"sub:12345" is not sub:<issuer>#<sub> (e.g. sub:https://idp.example.com#248289761001)',
    ]);
    assert.deepEqual(problems(yaml(`["sub:${ISSUER}#"]`)).length, 1);
    assert.deepEqual(splitSubMember(`sub:${ISSUER}#x#y`), { issuer: ISSUER, sub: 'x#y' });
  });
});

describe('members are compared in NFC', () => {
  test('OIDC members are normalised; key: and cert: are kept as written', () => {
    assert.equal(normalizeMember('user:jose\u0301@acme.com'), 'user:jos\u00e9@acme.com');
    assert.equal(normalizeMember('group:e\u0301quipe'), 'group:\u00e9quipe');
    assert.equal(normalizeMember('service:cafe\u0301'), 'service:caf\u00e9');
    assert.equal(normalizeMember('key:cafe\u0301'), 'key:cafe\u0301');
    const policy = parsePolicy(yaml('["user:jose\u0301@acme.com", "group:e\u0301quipe"]'), 'stele.policy.yaml');
    assert.deepEqual(policy.roles[0]?.members, ['user:jos\u00e9@acme.com', 'group:\u00e9quipe']);
    // The verifier gives NFC ids: the NFD-written member matches them.
    const authz = Authorizer.create(policy);
    assert.equal(authz.allowed(oidc('user', 'jos\u00e9@acme.com', 's'), 'search', { type: 'Log' }), true);
    const inGroup: Principal = { ...oidc('user', 'x@acme.com', 's2'), groups: ['\u00e9quipe'] };
    assert.equal(authz.allowed(inGroup, 'search', { type: 'Log' }), true);
  });
});

describe('issuer identity options', () => {
  test('compile to the IssuerConfig; absent ones keep the verifier defaults', () => {
    const extra = '      require_email_verified: false\n      require_at_jwt: true\n      service_clients: [ci, "cafe\u0301"]\n';
    const [first, second] = parsePolicy(yaml('["*"]', extra), 'stele.policy.yaml').identity.issuers;
    assert.equal(first?.requireEmailVerified, false);
    assert.equal(first?.requireAtJwt, true);
    assert.deepEqual(first?.serviceClients, ['ci', 'caf\u00e9']);
    assert.equal(second?.requireEmailVerified, undefined);
    assert.equal(second?.requireAtJwt, undefined);
    assert.equal(second?.serviceClients, undefined);
  });

  test('bad values are refused with the key named', () => {
    const bad = problems(yaml('["*"]', '      require_email_verified: "no"\n      service_clients: [""]\n'));
    assert.equal(bad.length, 2, bad.join('\n'));
    assert.match(bad.join('\n'), /true or false/);
  });
});
