/**
 * OIDC bearer-token verification against a real OpenID provider (oidc-provider, test/helpers/idp.ts):
 * client-credentials and device-flow tokens, key rotation, the forged-token matrix, and an IdP
 * that is down. With CI=true a missing test dependency fails the suite instead of skipping it.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type * as IdpModule from '../../test/helpers/idp.js';
import { SteleError } from '../core/errors.js';
import type { IssuerConfig } from '../core/principal.js';
import { AuthError, type AuthFailureReason, issuerProblems, OidcVerifier, type OidcVerifierOptions } from './oidc.js';

const harness: typeof IdpModule | Error = await import('../../test/helpers/idp.js').catch((err: unknown) =>
  err instanceof Error ? err : new Error(String(err)),
);
const CI = process.env.CI === 'true';
const missing = harness instanceof Error ? `oidc-provider test harness unavailable: ${harness.message}` : undefined;
if (missing && CI) throw new Error(`${missing} (CI=true: failing instead of skipping; run npm ci)`);
const skip = missing ?? false;

type Idp = IdpModule.Idp;
const h = () => harness as typeof IdpModule;

function config(idp: Idp, over: Partial<IssuerConfig> = {}): IssuerConfig {
  return {
    issuer: idp.issuer,
    audience: ['stele'],
    actorClaim: 'email',
    groupsClaim: 'groups',
    serviceClaim: 'client_id',
    algorithms: ['RS256', 'ES256'],
    clockSkewS: 30,
    require: {},
    ...over,
  };
}

const iso = (s: number) => new Date(s * 1000).toISOString().replace(/\.000Z$/, 'Z');

/** Asserts `p` rejects with an AuthError of this status/code/reason whose message matches. */
async function refused(
  p: Promise<unknown>,
  reason: AuthFailureReason,
  message: string | RegExp,
  status = 401,
  code = status === 401 ? 'invalid_token' : 'idp_unavailable',
): Promise<AuthError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof AuthError, `expected an AuthError, got ${String(caught)}`);
  assert.ok(caught instanceof SteleError);
  assert.equal(caught.status, status, caught.message);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.detail?.reason, reason, caught.message);
  if (typeof message === 'string') assert.equal(caught.message, message);
  else assert.match(caught.message, message);
  return caught;
}

describe('OidcVerifier against a real OpenID provider', { skip }, () => {
  let idp: Idp;
  let verifier: OidcVerifier;
  const alice = { email: 'alice@example.com', groups: ['auditors', 'sre'] };

  before(async () => {
    idp = await h().startIdp();
    verifier = new OidcVerifier([config(idp)]);
  });
  after(async () => {
    await idp?.close();
  });

  test('a client-credentials token is a service principal', async () => {
    const token = await idp.clientCredentialsToken();
    assert.equal(decodeProtectedHeader(token).alg, 'ES256');
    assert.deepEqual(await verifier.verify(token), {
      kind: 'service',
      id: 'stele-ingest',
      method: 'oidc',
      issuer: idp.issuer,
      sub: 'stele-ingest',
      groups: [],
      roles: [],
    });
  });

  test('a device-flow token is a user principal with groups', async () => {
    const flow = await idp.deviceFlow(alice);
    assert.ok(flow.pendingPolls >= 1, 'the device saw authorization_pending before the user approved');
    assert.equal(flow.slowDowns, 0, 'the device honoured the interval');
    const claims = decodeJwt(flow.accessToken);
    assert.equal(claims.aud, 'stele');
    assert.equal(claims.client_id, 'stele-cli');
    assert.equal(decodeProtectedHeader(flow.accessToken).alg, 'RS256');
    assert.deepEqual(await verifier.verify(flow.accessToken), {
      kind: 'user',
      id: 'alice@example.com',
      method: 'oidc',
      issuer: idp.issuer,
      sub: claims.sub,
      groups: ['auditors', 'sre'],
      roles: [],
    });
  });

  test('a single string in the groups claim is one group; an absent one is none', async () => {
    const one = await verifier.verify(await idp.sign(idp.claims({ groups: 'sre' })));
    assert.deepEqual(one.groups, ['sre']);
    const none = await verifier.verify(await idp.sign(idp.claims({ groups: undefined })));
    assert.deepEqual(none.groups, []);
  });

  test("service id: the configured claim, then client_id, then azp; a service's own token has sub = client id", async () => {
    const v = new OidcVerifier([config(idp, { serviceClaim: 'appid' })]);
    const base = { email: undefined, client_id: undefined, azp: undefined, sub: undefined };
    const id = async (c: Record<string, unknown>) => (await v.verify(await idp.sign(idp.claims({ ...base, ...c })))).id;
    assert.equal(await id({ appid: 'app-1', client_id: 'c', sub: 'app-1' }), 'app-1');
    assert.equal(await id({ client_id: 'c', azp: 'a', sub: 'c' }), 'c');
    assert.equal(await id({ azp: 'a', sub: 'a' }), 'a');
  });

  test('no fetch per request once the keys are cached', async () => {
    const v = new OidcVerifier([config(idp)]);
    idp.resetHits();
    const token = await idp.clientCredentialsToken();
    for (let i = 0; i < 50; i++) await v.verify(token);
    assert.equal(idp.hits('/.well-known/openid-configuration'), 1);
    assert.equal(idp.hits('/jwks'), 1);
  });

  test('clock skew: exp is checked on every call, with the configured tolerance', async () => {
    const token = await idp.clientCredentialsToken();
    const { exp } = decodeJwt(token) as { exp: number };
    let now = (exp + 29) * 1000;
    const v = new OidcVerifier([config(idp)], { now: () => now });
    assert.equal((await v.verify(token)).kind, 'service');
    now = (exp + 30) * 1000;
    await refused(v.verify(token), 'expired', `token expired at ${iso(exp)} (clock skew allowed: 30 s)`);
  });

  test('a jwksUri override skips discovery', async () => {
    const v = new OidcVerifier([config(idp, { jwksUri: `${idp.issuer}/jwks` })]);
    idp.resetHits();
    await v.verify(await idp.clientCredentialsToken());
    assert.equal(idp.hits('/.well-known/openid-configuration'), 0);
    assert.equal(idp.hits('/jwks'), 1);
  });

  describe('forged and broken tokens', () => {
    const strict = () => new OidcVerifier([config(idp, { require: { tid: 'acme' } })]);

    test('alg none', async () => {
      await refused(verifier.verify(await idp.forge.algNone()), 'unsigned', 'unsigned token (alg "none") refused');
    });

    test('HS256 signed with the public key as the secret', async () => {
      await refused(
        verifier.verify(await idp.forge.hs256WithPublicKey()),
        'alg_not_allowed',
        'token algorithm "HS256" is not allowed (RS256, ES256)',
      );
    });

    test('an algorithm the issuer does not allow', async () => {
      const v = new OidcVerifier([config(idp, { algorithms: ['ES256'] })]);
      await refused(v.verify(await idp.sign(idp.claims())), 'alg_not_allowed', 'token algorithm "RS256" is not allowed (ES256)');
    });

    test("signed with a foreign key under the IdP's kid", async () => {
      for (const alg of ['RS256', 'ES256'] as const) {
        await refused(
          verifier.verify(await idp.forge.foreignKey(alg)),
          'bad_signature',
          "token signature does not verify against the issuer's keys",
        );
      }
    });

    test('signed with a foreign key under an unknown kid', async () => {
      await refused(
        verifier.verify(await idp.forge.unknownKid()),
        'unknown_key',
        /^token signature does not verify against the issuer's keys \(no "RS256" key of issuer .* matches "kid" "rs256-/,
      );
    });

    test('expired', async () => {
      const token = await idp.forge.expired();
      const { exp } = decodeJwt(token) as { exp: number };
      await refused(verifier.verify(token), 'expired', `token expired at ${iso(exp)} (clock skew allowed: 30 s)`);
    });

    test('not yet valid', async () => {
      const token = await idp.forge.notYetValid();
      const { nbf } = decodeJwt(token) as { nbf: number };
      await refused(verifier.verify(token), 'not_yet_valid', `token is not valid before ${iso(nbf)} (clock skew allowed: 30 s)`);
    });

    test('issued in the future', async () => {
      const token = await idp.forge.issuedInFuture();
      const { iat } = decodeJwt(token) as { iat: number };
      await refused(
        verifier.verify(token),
        'issued_in_future',
        `token was issued in the future (iat ${iso(iat)}; clock skew allowed: 30 s)`,
      );
    });

    test('without exp', async () => {
      await refused(
        verifier.verify(await idp.forge.withoutClaims('exp')),
        'missing_claim',
        'token has no expiry ("exp" claim): tokens that never expire are refused',
      );
    });

    test('wrong issuer', async () => {
      await refused(
        verifier.verify(await idp.forge.wrongIssuer()),
        'untrusted_issuer',
        'token issuer "https://evil.example" is not a trusted issuer',
      );
      await refused(
        verifier.verify(await idp.forge.withoutClaims('iss')),
        'untrusted_issuer',
        'token has no issuer ("iss" claim)',
      );
    });

    test('wrong audience', async () => {
      await refused(
        verifier.verify(await idp.forge.wrongAudience()),
        'audience',
        'token audience ["not-stele"] is not one this server accepts (stele)',
      );
      await refused(
        verifier.verify(await idp.forge.withoutClaims('aud')),
        'audience',
        'token has no audience ("aud" claim); this server accepts stele',
      );
      // A real token from the IdP, presented to a server that expects another audience.
      const v = new OidcVerifier([config(idp, { audience: ['other', 'stele-prod'] })]);
      await refused(
        v.verify(await idp.clientCredentialsToken()),
        'audience',
        'token audience ["stele"] is not one this server accepts (other, stele-prod)',
      );
    });

    test('missing identity claims', async () => {
      await refused(
        verifier.verify(await idp.forge.withoutClaims('email', 'client_id', 'sub')),
        'missing_claim',
        'token lacks claim "email" naming a user and has none of "client_id", "azp" naming a service (missing claim)',
      );
    });

    test('badly typed identity claims', async () => {
      await refused(
        verifier.verify(await idp.sign(idp.claims({ email: '' }))),
        'invalid_claim',
        'token claim "email" must be a non-empty string, not ""',
      );
      await refused(
        verifier.verify(await idp.sign(idp.claims({ groups: ['sre', 7] }))),
        'invalid_claim',
        'token claim "groups" must be a list of strings, not ["sre",7]',
      );
    });

    test("another tenant's token", async () => {
      await refused(
        strict().verify(await idp.forge.otherTenant()),
        'claim_mismatch',
        'token claim "tid" is "other", this server requires "acme"',
      );
      await refused(
        strict().verify(await idp.forge.withoutClaims('tid')),
        'missing_claim',
        'token lacks claim "tid", this server requires "acme"',
      );
      // Real tokens of the right tenant pass.
      assert.equal((await strict().verify(await idp.clientCredentialsToken())).kind, 'service');
    });

    test('not a JWT', async () => {
      for (const t of ['', 'garbage', 'a.b.c', 'a.b', `${'x'.repeat(10)}.${'y'.repeat(10)}.z.w.v`]) {
        await refused(verifier.verify(t), 'malformed', 'not a JWT');
      }
      await refused(verifier.verify('x'.repeat(70_000)), 'malformed', /^not a JWT \(longer than 65536 characters\)$/);
    });
  });

  describe('identity cannot be borrowed (issue 11.3)', () => {
    const sign = (c: Record<string, unknown>, header: Record<string, unknown> = {}) => idp.sign(idp.claims(c), { header });

    test('an email identifies a person only when the IdP verified it', async () => {
      // A real device-flow token of an account whose address the IdP never verified.
      const token = await idp.deviceFlowToken({ email: 'cfo@example.com', emailVerified: false });
      assert.equal(decodeJwt(token).email_verified, false);
      await refused(
        verifier.verify(token),
        'unverified_email',
        'token\'s email is not verified (claim "email_verified" is false): only a verified address identifies a person',
      );
      await refused(verifier.verify(await sign({ email_verified: undefined })), 'unverified_email', /is null/);
      await refused(verifier.verify(await sign({ email_verified: 'false' })), 'unverified_email', /is "false"/);
      await refused(verifier.verify(await sign({ email_verified: 1 })), 'unverified_email', /is 1/);
      assert.equal((await verifier.verify(await sign({ email_verified: 'true' }))).id, 'mallory@example.com');
      // The issuer option turns the check off (documented with its risk) ...
      const lax = new OidcVerifier([config(idp, { requireEmailVerified: false })]);
      assert.equal((await lax.verify(token)).id, 'cfo@example.com');
      // ... and an actor claim that is not an email is not an email.
      const byName = new OidcVerifier([config(idp, { actorClaim: 'preferred_username' })]);
      const p = await byName.verify(await sign({ preferred_username: 'mallory', email_verified: false }));
      assert.equal(p.id, 'mallory');
    });

    test('header typ: at+jwt or the generic JWT; any other type is not an access token', async () => {
      for (const typ of ['at+jwt', 'application/AT+JWT', 'JWT', 'application/jwt', undefined]) {
        const header = typ === undefined ? { typ: undefined } : { typ };
        assert.equal((await verifier.verify(await sign({}, header))).kind, 'user', String(typ));
      }
      for (const typ of ['logout+jwt', 'secevent+jwt', 'dpop+jwt', 'id_token+jwt', 'JOSE', 7]) {
        await refused(
          verifier.verify(await sign({}, { typ })),
          'wrong_token_type',
          `token type (header "typ") ${JSON.stringify(typ)} is not an access token: "JWT" or "at+jwt" (RFC 9068) required`,
        );
      }
    });

    test('requireAtJwt: only at+jwt, so even an ID token of a client named in audience is refused', async () => {
      const strict = new OidcVerifier([config(idp, { requireAtJwt: true, audience: ['stele', idp.clients.device.id] })]);
      assert.equal((await strict.verify(await idp.clientCredentialsToken())).kind, 'service');
      await refused(
        strict.verify(await sign({}, { typ: 'JWT' })),
        'wrong_token_type',
        'token type (header "typ") "JWT" is not an access token: "at+jwt" (RFC 9068) required',
      );
      // The real ID token of a device flow: no typ, no nonce, aud = the client.
      const { idToken } = await idp.deviceFlow({ email: 'ida@example.com' });
      assert.ok(idToken, 'the device flow returned an ID token');
      assert.equal(decodeProtectedHeader(idToken).typ, undefined);
      await refused(
        strict.verify(idToken),
        'wrong_token_type',
        'token has no header "typ"; this issuer\'s access tokens are "at+jwt" (RFC 9068)',
      );
    });

    test('ID tokens and logout tokens are refused by their claims', async () => {
      for (const claim of ['nonce', 'at_hash', 'c_hash', 's_hash']) {
        await refused(
          verifier.verify(await sign({ [claim]: 'x' })),
          'wrong_token_type',
          `token carries "${claim}": it is an ID token, not an access token`,
        );
      }
      const events = { 'http://schemas.openid.net/event/backchannel-logout': {} };
      await refused(
        verifier.verify(await sign({ events, sid: 's1' }, { typ: 'JWT' })),
        'wrong_token_type',
        'token carries "events": it is a logout or security event token, not an access token',
      );
      // Keycloak marks its tokens in the payload: Bearer (access), ID, Refresh, Logout.
      await refused(
        verifier.verify(await sign({ typ: 'ID' })),
        'wrong_token_type',
        'token claim "typ" is "ID": not an access token ("Bearer")',
      );
      await refused(verifier.verify(await sign({ typ: 'Refresh' })), 'wrong_token_type', /"Refresh"/);
      assert.equal((await verifier.verify(await sign({ typ: 'Bearer' }))).kind, 'user');
      // Keycloak before 25 also put the nonce in access tokens (typ "Bearer"); its ID tokens say "ID".
      assert.equal((await verifier.verify(await sign({ typ: 'Bearer', nonce: 'n' }))).kind, 'user');
      await refused(verifier.verify(await sign({ typ: 'Bearer', at_hash: 'x' })), 'wrong_token_type', /"at_hash"/);
    });

    test("a user's token without the person claim never becomes its client", async () => {
      // A real device-flow token that carries no email (an IdP putting only sub in access tokens).
      const token = await idp.deviceFlowToken({ email: 'bob@example.com', emailInToken: false });
      const claims = decodeJwt(token);
      assert.equal(claims.email, undefined);
      assert.equal(claims.client_id, 'stele-cli');
      await refused(
        verifier.verify(token),
        'not_a_service',
        `token has no "email" claim naming a person and is not a service's own token (its "sub" is not its client id "stele-cli"): a user's token without the person in it is refused`,
      );
      await refused(
        verifier.verify(await sign({ email: undefined, sub: undefined })),
        'not_a_service',
        /it has no "sub" equal to its client id "stele-cli"/,
      );
      // The real client-credentials token is a service: its sub is its client id.
      assert.equal((await verifier.verify(await idp.clientCredentialsToken())).id, 'stele-ingest');
    });

    test('serviceClients: exactly the listed clients are services, whatever their sub', async () => {
      const listed = new OidcVerifier([config(idp, { serviceClients: ['stele-ingest', 'kc-client'] })]);
      assert.equal((await listed.verify(await idp.clientCredentialsToken())).id, 'stele-ingest');
      // Keycloak: a service account's sub is a user id, not the client id.
      const kc = await sign({ email: undefined, sub: 'f2b8c8e0-uuid', client_id: 'kc-client' });
      assert.deepEqual(await listed.verify(kc), {
        kind: 'service',
        id: 'kc-client',
        method: 'oidc',
        issuer: idp.issuer,
        sub: 'f2b8c8e0-uuid',
        groups: [],
        roles: [],
      });
      const other = new OidcVerifier([config(idp, { serviceClients: ['kc-client'] })]);
      await refused(
        other.verify(await idp.clientCredentialsToken()),
        'not_a_service',
        /\(client "stele-ingest" is not one of this issuer's service clients\)/,
      );
    });

    test('identities are NFC; control characters, over-long ids and a non-string sub are refused', async () => {
      const nfd = 'jose\u0301@example.com';
      const p = await verifier.verify(await sign({ email: nfd, sub: 'sub-jose\u0301', groups: ['e\u0301quipe', '\u00e9quipe'] }));
      assert.equal(p.id, 'jos\u00e9@example.com');
      assert.equal(p.sub, 'sub-jos\u00e9');
      assert.deepEqual(p.groups, ['\u00e9quipe']);
      const svc = await verifier.verify(await sign({ email: undefined, sub: 'cafe\u0301', client_id: 'caf\u00e9' }));
      assert.equal(svc.id, 'caf\u00e9');
      await refused(
        verifier.verify(await sign({ email: 'eve@example.com\nuser:cfo@example.com' })),
        'invalid_claim',
        'token claim "email" is not usable as an identity (control characters, or longer than 1024 characters)',
      );
      await refused(
        verifier.verify(await sign({ email: `${'a'.repeat(1100)}@example.com` })),
        'invalid_claim',
        /longer than 1024/,
      );
      await refused(verifier.verify(await sign({ groups: ['sre\u0000'] })), 'invalid_claim', /"groups" is not usable/);
      await refused(
        verifier.verify(await sign({ sub: 7 })),
        'invalid_claim',
        'token claim "sub" must be a non-empty string, not 7',
      );
    });

    test('attacker text quoted in a refusal is clipped', async () => {
      const iss = `https://evil.example/${'x'.repeat(8000)}`;
      const err = await refused(
        verifier.verify(await sign({ iss })),
        'untrusted_issuer',
        /^token issuer "https:\/\/evil\.example\/x+… \(8023 characters\) is not a trusted issuer$/,
      );
      assert.ok(err.message.length < 300, `${err.message.length} characters`);
      assert.ok(String(err.detail?.issuer).length <= 201);
      const typ = await refused(verifier.verify(await sign({}, { typ: 'y'.repeat(5000) })), 'wrong_token_type', /characters\)/);
      assert.ok(typ.message.length < 400);
      // Header values echoed in detail are clipped too.
      const kid = await refused(verifier.verify(await sign({}, { kid: 'k'.repeat(5000) })), 'unknown_key', /characters\)/);
      assert.ok(kid.message.length < 400 && String(kid.detail?.kid).length <= 201);
      const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const longAlg = `${enc({ alg: 'A'.repeat(5000) })}.${enc(idp.claims())}.c2ln`;
      const alg = await refused(verifier.verify(longAlg), 'alg_not_allowed', /characters\)/);
      assert.ok(String(alg.detail?.alg).length <= 201);
    });

    test('a crit header this verifier does not understand is refused', async () => {
      const { SignJWT } = await import('jose');
      const k = idp.key('RS256');
      const token = await new SignJWT(idp.claims())
        .setProtectedHeader({
          alg: 'RS256',
          kid: k.kid,
          typ: 'at+jwt',
          crit: ['urn:example:must-understand'],
          'urn:example:must-understand': 1,
        })
        .sign(k.privateKey, { crit: { 'urn:example:must-understand': true } });
      await refused(verifier.verify(token), 'malformed', /not a valid JWT: .*urn:example:must-understand/);
    });

    test('a key embedded in the header is never used; keys of one issuer never verify another', async () => {
      const mallory = await h().generateSigningKey('RS256');
      const embedded = await h().signJwt(idp.claims(), mallory, { kid: undefined, jwk: mallory.publicJwk });
      // Without a kid, the issuer's one RS256 key is tried: Mallory's signature does not verify with it.
      await refused(verifier.verify(embedded), 'bad_signature', "token signature does not verify against the issuer's keys");
      const idp2 = await h().startIdp();
      try {
        const both = new OidcVerifier([config(idp), config(idp2)]);
        // A token of the second IdP naming the first as issuer, under its own kid, then under the first's kid.
        await refused(both.verify(await idp2.sign(idp2.claims({ iss: idp.issuer }))), 'unknown_key', /no "RS256" key of issuer/);
        const borrowedKid = await h().signJwt(idp2.claims({ iss: idp.issuer }), {
          ...idp2.key('RS256'),
          kid: idp.key('RS256').kid,
        });
        await refused(both.verify(borrowedKid), 'bad_signature', "token signature does not verify against the issuer's keys");
        assert.equal((await both.verify(await idp2.sign(idp2.claims()))).issuer, idp2.issuer);
      } finally {
        await idp2.close();
      }
    });
  });

  describe('key rotation at the IdP', () => {
    test('new tokens verify (jose refetches on an unknown kid); tokens of removed keys do not', async () => {
      const v = new OidcVerifier([config(idp)], { jwksCooldownMs: 0 });
      const oldToken = await idp.clientCredentialsToken();
      const oldUser = await idp.sign(idp.claims());
      await v.verify(oldToken);
      idp.resetHits();

      await idp.rotateKeys();
      const newToken = await idp.clientCredentialsToken();
      assert.notEqual(decodeProtectedHeader(newToken).kid, decodeProtectedHeader(oldToken).kid);
      assert.equal((await v.verify(newToken)).id, 'stele-ingest');
      assert.equal(idp.hits('/jwks'), 1, 'one refetch for the unknown kid');
      assert.equal(idp.hits('/.well-known/openid-configuration'), 0);

      await refused(
        v.verify(oldToken),
        'unknown_key',
        /^token signature does not verify against the issuer's keys \(no "ES256" key/,
      );
      await refused(v.verify(oldUser), 'unknown_key', /no "RS256" key/);
    });

    test('with an overlap, tokens signed by the previous keys still verify', async () => {
      const v = new OidcVerifier([config(idp)], { jwksCooldownMs: 0 });
      const oldToken = await idp.clientCredentialsToken();
      await v.verify(oldToken);
      await idp.rotateKeys({ keepPrevious: true });
      await v.verify(await idp.clientCredentialsToken());
      assert.equal((await v.verify(oldToken)).id, 'stele-ingest');
    });

    test('the cooldown limits refetches caused by unknown kids', async () => {
      const v = new OidcVerifier([config(idp)], { jwksCooldownMs: 60_000 });
      await v.verify(await idp.clientCredentialsToken());
      idp.resetHits();
      for (let i = 0; i < 5; i++) await refused(v.verify(await idp.forge.unknownKid('ES256')), 'unknown_key', /no "ES256" key/);
      assert.equal(idp.hits('/jwks'), 0);
    });
  });

  describe('an unavailable IdP', () => {
    async function downIdp(): Promise<{ down: Idp; token: string }> {
      const down = await h().startIdp();
      const token = await down.clientCredentialsToken();
      await down.stop();
      return { down, token };
    }

    test('down at first use: 503 idp_unavailable, not 401; back-off, then recovery', async () => {
      const { down, token } = await downIdp();
      try {
        let now = Date.now();
        const v = new OidcVerifier([config(down)], { now: () => now });
        const err = await refused(
          v.verify(token),
          'idp_unreachable',
          new RegExp(
            `^identity provider ${down.issuer} is unreachable: cannot fetch its discovery document ${down.issuer}/\\.well-known/openid-configuration \\(.*ECONNREFUSED.*\\); next attempt in 1 s$`,
          ),
          503,
        );
        assert.equal(err.detail?.issuer, down.issuer);

        await down.start();
        down.resetHits();
        // Within the back-off nothing is fetched: the answer is immediate.
        await refused(v.verify(token), 'idp_unreachable', /next attempt in 1 s$/, 503);
        assert.equal(down.hits('/.well-known/openid-configuration'), 0);

        now += 1_001;
        assert.equal((await v.verify(token)).id, 'stele-ingest');
        assert.equal(down.hits('/.well-known/openid-configuration'), 1);
      } finally {
        await down.close();
      }
    });

    test('JWKS unreachable (jwksUri override) is 503 too', async () => {
      const { down, token } = await downIdp();
      try {
        const v = new OidcVerifier([config(down, { jwksUri: `${down.issuer}/jwks` })]);
        await refused(
          v.verify(token),
          'idp_unreachable',
          new RegExp(`cannot fetch its key set ${down.issuer}/jwks \\(.*ECONNREFUSED`),
          503,
        );
      } finally {
        await down.close();
      }
    });

    test('a key set that is not one is 503 idp_misconfigured; a 404 is idp_unreachable', async () => {
      const bogus = createServer((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end('{"keys":"none"}');
      });
      await new Promise<void>((r) => bogus.listen(0, '127.0.0.1', r));
      try {
        const jwksUri = `http://127.0.0.1:${(bogus.address() as AddressInfo).port}/jwks`;
        const token = await idp.clientCredentialsToken();
        await refused(
          new OidcVerifier([config(idp, { jwksUri })]).verify(token),
          'idp_misconfigured',
          new RegExp(`^identity provider ${idp.issuer} serves an unusable key set at ${jwksUri} \\(.+\\); next attempt in 1 s$`),
          503,
        );
        await refused(
          new OidcVerifier([config(idp, { jwksUri: `${idp.issuer}/no-such-jwks` })]).verify(token),
          'idp_unreachable',
          /cannot fetch its key set .*\/no-such-jwks \(Expected 200 OK/,
          503,
        );
      } finally {
        bogus.close();
      }
    });

    test('a failed refresh keeps the last good keys for maxStaleMs', async () => {
      const idp2 = await h().startIdp();
      try {
        const opts: OidcVerifierOptions = { cacheTtlMs: 30 };
        const tolerant = new OidcVerifier([config(idp2)], opts);
        const intolerant = new OidcVerifier([config(idp2)], { ...opts, maxStaleMs: 0 });
        const token = await idp2.clientCredentialsToken();
        await tolerant.verify(token);
        await intolerant.verify(token);
        await idp2.stop();
        await new Promise((r) => setTimeout(r, 60));
        assert.equal((await tolerant.verify(token)).id, 'stele-ingest');
        await refused(intolerant.verify(token), 'idp_unreachable', /is unreachable/, 503);
      } finally {
        await idp2.close();
      }
    });

    test('a discovery document naming another issuer is refused (503 idp_misconfigured)', async () => {
      const alias = idp.issuer.replace('127.0.0.1', 'localhost');
      const v = new OidcVerifier([config(idp, { issuer: alias })]);
      await refused(
        v.verify(await idp.sign(idp.claims({ iss: alias }))),
        'idp_misconfigured',
        `identity provider discovery document ${alias}/.well-known/openid-configuration names issuer "${idp.issuer}", not the configured "${alias}"; next attempt in 1 s`,
        503,
      );
    });
  });
});

describe('issuerProblems', () => {
  const good: IssuerConfig = {
    issuer: 'https://acme.okta.com/oauth2/default',
    audience: ['stele'],
    actorClaim: 'email',
    groupsClaim: 'groups',
    serviceClaim: 'client_id',
    algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    clockSkewS: 30,
    require: { tid: 'acme' },
  };

  test('a good configuration has none', () => {
    assert.deepEqual(issuerProblems(good), []);
    for (const issuer of ['http://127.0.0.1:8080', 'http://localhost', 'http://[::1]:9000/realms/x']) {
      assert.deepEqual(issuerProblems({ ...good, issuer }), [], issuer);
    }
  });

  test('https is required except on loopback', () => {
    assert.deepEqual(issuerProblems({ ...good, issuer: 'http://idp.example.com' }), [
      'issuer "http://idp.example.com" must use https (plain http is allowed only for 127.0.0.1, localhost and ::1)',
    ]);
    assert.match(issuerProblems({ ...good, jwksUri: 'http://keys.example.com/jwks' }).join(), /jwksUri .* must use https/);
    assert.match(issuerProblems({ ...good, issuer: 'ftp://x' }).join(), /must be an https URL/);
    assert.match(issuerProblems({ ...good, issuer: 'not a url' }).join(), /is not a valid URL/);
    assert.match(issuerProblems({ ...good, issuer: 'https://x/?q=1' }).join(), /must not have a query or fragment/);
  });

  test('none, HS* and unknown algorithms are refused', () => {
    const problems = issuerProblems({ ...good, algorithms: ['RS256', 'none', 'HS256', 'hs512', 'RS265'] });
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.match(problems[0]!, /"none" is never allowed/);
    assert.match(problems[1]!, /"HS256" is never allowed/);
    assert.match(problems[2]!, /"hs512" is never allowed/);
    assert.match(problems[3]!, /"RS265" is not a supported algorithm/);
    assert.match(issuerProblems({ ...good, algorithms: [] }).join(), /at least one/);
  });

  test('other fields', () => {
    assert.match(issuerProblems({ ...good, audience: [] }).join(), /audience must list/);
    assert.match(issuerProblems({ ...good, clockSkewS: -1 }).join(), /clockSkewS/);
    assert.match(issuerProblems({ ...good, clockSkewS: 3600 }).join(), /more than 300 s/);
    assert.match(issuerProblems({ ...good, actorClaim: '' }).join(), /actorClaim/);
    assert.match(issuerProblems({ ...good, require: { tid: 7 as unknown as string } }).join(), /require\.tid must be a string/);
  });

  test('identity options', () => {
    assert.deepEqual(issuerProblems({ ...good, requireEmailVerified: false, requireAtJwt: true, serviceClients: ['ci'] }), []);
    assert.match(
      issuerProblems({ ...good, requireAtJwt: 'yes' as unknown as boolean }).join(),
      /requireAtJwt must be true or false/,
    );
    assert.match(issuerProblems({ ...good, serviceClients: [''] }).join(), /serviceClients must list non-empty client ids/);
  });

  test('the verifier refuses a bad configuration, even one that allows HS256', () => {
    assert.throws(() => new OidcVerifier([{ ...good, algorithms: ['HS256', 'RS256'] }]), /"HS256" is never allowed/);
    assert.throws(() => new OidcVerifier([good, good]), /configured twice/);
  });
});

describe('verification without a network', () => {
  test('an unknown issuer is refused before anything is fetched', async () => {
    const v = new OidcVerifier([
      {
        issuer: 'https://idp.invalid',
        audience: ['stele'],
        actorClaim: 'email',
        groupsClaim: 'groups',
        serviceClaim: 'client_id',
        algorithms: ['RS256'],
        clockSkewS: 30,
        require: {},
      },
    ]);
    assert.deepEqual(v.trustedIssuers, ['https://idp.invalid']);
    const forged = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"iss":"https://evil"}').toString('base64url')}.sig`;
    await refused(v.verify(forged), 'untrusted_issuer', 'token issuer "https://evil" is not a trusted issuer');
  });
});
