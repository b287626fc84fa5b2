/**
 * Identity cannot be borrowed (issue 11.3), end to end: a real OpenID provider (oidc-provider) and a
 * real `stele serve` whose policy trusts it with `require_at_jwt: true`. An unverified email does not
 * get the roles of the person it names; tokens that are not access tokens (header typ other than
 * at+jwt, ID-token claims) are refused; a user's token without the person claim does not become
 * its client; `sub:<issuer>#<sub>` members and members written in NFD work.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { type Idp, startIdp } from './helpers/idp.js';
import { cleanup, type DataDir, initDir, SteleServer, sleep } from './helpers/stele.js';

const BOB_SUB = 'bob-7c1e';

function policyYaml(idp: Idp): string {
  return `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audience: ${idp.audience}
      require_at_jwt: true
roles:
  finance:  { members: ["user:cfo@acme.test"], actions: [read, search, export] }
  by-sub:   { members: ["sub:${idp.issuer}#${BOB_SUB}"], actions: [search] }
  unicode:  { members: ["user:jose\u0301@acme.test"], actions: [search] }
  everyone: { members: ["*"], actions: [append] }
  admin:    { actions: [append, read, search, export, erase, hold, admin], vouch: ["*"] }
`;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

let idp: Idp;
let data: DataDir;
let server: SteleServer;

async function call(method: string, path: string, token: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: res.status, body: { text } };
  }
}

const search = (token: string, q = 'action:emacs.*') => call('GET', `/v1/events?q=${encodeURIComponent(q)}`, token);
const append = (token: string, actor: string) =>
  call('POST', '/v1/events', token, {
    id: randomUUID(),
    actor: { id: actor, type: 'human' },
    action: 'emacs.file.save',
    source: { kind: 'emacs', host: 'laptop' },
    resource: { type: 'file', id: `/home/x/${randomUUID()}` },
    outcome: 'success',
  });
const errorOf = (a: Answer) => a.body.error as { code: string; message: string; reason?: string };

/** Asserts a 401 invalid_token with this reason, its message matching. */
function refused(a: Answer, reason: string, message: RegExp): void {
  assert.equal(a.status, 401, JSON.stringify(a.body));
  assert.equal(errorOf(a).code, 'invalid_token');
  assert.equal(errorOf(a).reason, reason, errorOf(a).message);
  assert.match(errorOf(a).message, message);
}

before(async () => {
  idp = await startIdp({
    users: [
      { email: 'cfo@acme.test', groups: [] },
      { email: 'bob@acme.test', sub: BOB_SUB },
    ],
  });
  data = await initDir('identity.test/log');
  writeFileSync(join(data.dir, 'stele.policy.yaml'), policyYaml(idp));
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
});

after(async () => {
  await cleanup();
  await idp?.close();
});

describe('identity cannot be borrowed', () => {
  test('an unverified email does not get the roles of the person it names, and the refusal is recorded', async () => {
    const real = await idp.deviceFlowToken({ email: 'cfo@acme.test' });
    assert.equal((await search(real)).status, 200, 'the verified CFO may search');

    // Another account at the IdP that put the CFO's address in its profile, never verified.
    const borrowed = await idp.deviceFlowToken({ email: 'cfo@acme.test', sub: 'mallory-1', emailVerified: false });
    assert.equal(decodeJwt(borrowed).email_verified, false);
    refused(await search(borrowed), 'unverified_email', /email is not verified \(claim "email_verified" is false\)/);
    const write = await append(borrowed, 'cfo@acme.test');
    refused(write, 'unverified_email', /not verified/);
    assert.ok(!errorOf(write).message.includes('cfo@'), 'the refusal (recorded in the log) does not repeat the address');

    let reasons: unknown[] = [];
    for (let i = 0; i < 50 && !reasons.includes('unverified_email'); i++) {
      await sleep(200);
      const denied = await search(data.token, 'action:stele.access.denied');
      reasons = (denied.body.hits as { event: { data?: { reason?: unknown } } }[]).map((h) => h.event.data?.reason);
    }
    assert.ok(reasons.includes('unverified_email'), `denials recorded: ${JSON.stringify(reasons)}`);
  });

  test('only access tokens: header typ at+jwt (require_at_jwt), no ID-token claims', async () => {
    const user = { email: 'cfo@acme.test', email_verified: true, sub: 'user-cfo' };
    // Signed with the IdP's real key, claims of a good token: only the type is wrong.
    const jwt = await idp.sign(idp.claims(user), { header: { typ: 'JWT' } });
    refused(await search(jwt), 'wrong_token_type', /"JWT" is not an access token: "at\+jwt" \(RFC 9068\) required/);
    const logout = await idp.sign(idp.claims(user), { header: { typ: 'logout+jwt' } });
    refused(await search(logout), 'wrong_token_type', /"logout\+jwt" is not an access token/);
    const untyped = await idp.sign(idp.claims(user), { header: { typ: undefined } });
    refused(await search(untyped), 'wrong_token_type', /no header "typ"/);
    const withNonce = await idp.sign(idp.claims({ ...user, nonce: 'n-0S6_WzA2Mj' }));
    refused(await search(withNonce), 'wrong_token_type', /carries "nonce": it is an ID token/);
    // The same claims as an at+jwt access token are accepted.
    assert.equal((await search(await idp.sign(idp.claims(user)))).status, 200);
  });

  test("a user's token without the person claim does not become a service named after its client", async () => {
    const token = await idp.deviceFlowToken({ email: 'nomail@acme.test', emailInToken: false });
    assert.equal(decodeJwt(token).client_id, idp.clients.device.id);
    refused(await append(token, idp.clients.device.id), 'not_a_service', /is not a service's own token/);
    // A real client-credentials token is still a service (sub = client id).
    const svc = await idp.clientCredentialsToken();
    const ok = await call('POST', '/v1/events', svc, {
      id: randomUUID(),
      actor: { id: idp.clients.service.id, type: 'service' },
      action: 'emacs.file.save',
      source: { kind: 'emacs', host: 'ci' },
      outcome: 'success',
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  test('sub:<issuer>#<sub> members hold their role; members written in NFD match NFC emails', async () => {
    const bob = await idp.deviceFlowToken({ email: 'bob@acme.test', sub: BOB_SUB });
    assert.equal((await search(bob)).status, 200);
    const notBob = await idp.deviceFlowToken({ email: 'bob2@acme.test', sub: 'someone-else' });
    assert.equal((await search(notBob)).status, 403);

    const jose = await idp.deviceFlowToken({ email: 'jos\u00e9@acme.test' });
    assert.equal((await search(jose)).status, 200, 'the NFD member matches the NFC email');
  });
});
