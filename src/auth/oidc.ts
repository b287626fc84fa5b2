/**
 * OIDC bearer-token verification (DESIGN.md guarantee 3: `actor.verified` only when the server
 * itself authenticated the actor). A token is accepted only if it is a JWS signed with an
 * asymmetric algorithm from the issuer's allow-list by a key in that issuer's JWKS, names a trusted
 * issuer and an accepted audience, has not expired (an `exp` is mandatory), is already valid
 * (`nbf`, `iat`) and carries the issuer's required claims with exactly the configured values.
 *
 * Hot path: after the first request per issuer nothing is fetched; the discovery document and the
 * key set are cached (jose's remote key set refetches on an unknown `kid`, at most once per
 * cooldown, which is how key rotation at the IdP is followed). Verified tokens are never cached:
 * `exp` is checked on every call.
 *
 * A client's fault is `AuthError` 401 `invalid_token` with a precise message and
 * `detail.reason`; an unreachable or misbehaving identity provider is `AuthError` 503
 * `idp_unavailable` (the client did nothing wrong and may retry).
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import { SteleError } from '../core/errors.js';
import type { IssuerConfig, Principal } from '../core/principal.js';
import { JWS_ALGORITHMS } from '../policy/schema.js';

/** Machine-readable cause of a refused credential (OIDC token or API key), sent as `detail.reason` and recorded with denials. */
export type AuthFailureReason =
  /** Not a compact JWS/JWT at all, or too large; or not a `Bearer` header or a credential of any kind. */
  | 'malformed'
  /** `alg: none`. */
  | 'unsigned'
  /** An algorithm outside the issuer's allow-list (every HS* always is). */
  | 'alg_not_allowed'
  /** `iss` missing or not a configured issuer. */
  | 'untrusted_issuer'
  /** The signature does not verify with the issuer's key. */
  | 'bad_signature'
  /** No key in the issuer's key set matches the token's header (`kid`/`alg`), or no API key is this one. */
  | 'unknown_key'
  /** An API key that was revoked. */
  | 'revoked_key'
  | 'expired'
  /** `nbf` in the future beyond the allowed skew. */
  | 'not_yet_valid'
  /** `iat` in the future beyond the allowed skew. */
  | 'issued_in_future'
  /** `aud` missing or none of the accepted audiences. */
  | 'audience'
  /** A mandatory claim (`exp`, a required tenant claim, an identity claim) is absent. */
  | 'missing_claim'
  /** A required claim has another value than the one configured. */
  | 'claim_mismatch'
  /** A claim has the wrong type (e.g. `groups` not a list of strings), or an identity has control characters or is too long. */
  | 'invalid_claim'
  /** Not an access token: a header `typ` other than at+jwt/JWT, or an ID token's or logout token's claims (`nonce`, `events`, ...). */
  | 'wrong_token_type'
  /** The actor claim is `email` and the token does not say the address was verified (`email_verified: true`). */
  | 'unverified_email'
  /** No actor claim, and not a client's own token (client credentials): a user's token without the person in it. */
  | 'not_a_service'
  /** 503: the discovery document or key set could not be fetched. */
  | 'idp_unreachable'
  /** 503: the IdP answered with something unusable (bad discovery document, issuer mismatch). */
  | 'idp_misconfigured';

/**
 * A refused bearer token (401 `invalid_token`) or an identity provider that cannot be used right now
 * (503 `idp_unavailable`). `detail.reason` is an {@link AuthFailureReason}.
 */
export class AuthError extends SteleError {
  constructor(
    message: string,
    readonly reason: AuthFailureReason,
    extra: Record<string, unknown> = {},
    code: 'invalid_token' | 'idp_unavailable' = 'invalid_token',
  ) {
    super(code, message, { detail: { reason, ...extra } });
    this.name = 'AuthError';
  }

  static unavailable(message: string, reason: 'idp_unreachable' | 'idp_misconfigured', issuer: string): AuthError {
    return new AuthError(message, reason, { issuer }, 'idp_unavailable');
  }
}

export interface OidcVerifierOptions {
  /** Timeout of one discovery or JWKS request, ms (default 5000). */
  fetchTimeoutMs?: number;
  /** How long a discovery document and a key set are used before being refetched, ms (default 10 min). */
  cacheTtlMs?: number;
  /** Least time between two key-set refetches caused by tokens with an unknown `kid`, ms (default 30 s). */
  jwksCooldownMs?: number;
  /** While the IdP cannot be reached, the last good discovery document / key set stay in use this long, ms (default 1 h). */
  maxStaleMs?: number;
  /** First wait before retrying an IdP that failed, ms; doubles on each failure (default 1000). */
  retryMinMs?: number;
  /** Longest wait between retries of a failing IdP, ms (default 60 s). */
  retryMaxMs?: number;
  /** The clock, ms since the epoch (tests). */
  now?: () => number;
}

/** JWS algorithms this verifier knows; every one is asymmetric. */
export const SUPPORTED_ALGORITHMS: readonly string[] = JWS_ALGORITHMS;

/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_LENGTH = 64 * 1024;

/** Principal ids (user, service, sub) and group names longer than this are refused (a role member's limit). */
export const MAX_ID_LENGTH = 1024;

/** Token text quoted in a refusal is clipped to this many characters (an attacker chooses it). */
export const MAX_QUOTED = 200;

/** Header `typ` values of an access token (RFC 9068 §4: compared case-insensitively, `application/` optional). */
const ACCESS_TOKEN_TYPES = new Set(['at+jwt', 'application/at+jwt']);
/** The generic `typ` most IdPs (Keycloak, Entra ID, Auth0) put on access tokens and ID tokens alike. */
const GENERIC_TYPES = new Set(['jwt', 'application/jwt']);
/**
 * Claims only ID tokens (OIDC Core 3.1.3.6, 3.3.2.11) and logout tokens (OIDC Back-Channel Logout
 * 2.4, `events`) carry; an access token never does. An ID token is proof of a sign-in at a client,
 * not a grant to call this server: one obtained by any client of the IdP must not be replayable here.
 */
const NOT_ACCESS_TOKEN_CLAIMS = ['nonce', 'events', 'at_hash', 'c_hash', 's_hash'] as const;
/** Keycloak's payload `typ` for tokens other than access tokens ("Bearer"). */
const KEYCLOAK_OTHER_TYPES = new Set(['id', 'refresh', 'offline', 'logout']);

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

const isSymmetricOrNone = (alg: string) => alg.toLowerCase() === 'none' || /^HS\d+$/i.test(alg);

/** Problems with a URL that must be https (plain http only for a loopback host, for tests and local IdPs). */
function urlProblems(what: string, value: unknown): string[] {
  if (typeof value !== 'string' || value === '') return [`${what} must be a non-empty URL`];
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return [`${what} ${JSON.stringify(value)} is not a valid URL`];
  }
  const problems: string[] = [];
  if (u.protocol === 'http:') {
    if (!LOOPBACK_HOSTS.has(u.hostname)) {
      problems.push(
        `${what} ${JSON.stringify(value)} must use https (plain http is allowed only for 127.0.0.1, localhost and ::1)`,
      );
    }
  } else if (u.protocol !== 'https:') {
    problems.push(`${what} ${JSON.stringify(value)} must be an https URL`);
  }
  if (u.username || u.password) problems.push(`${what} ${JSON.stringify(value)} must not contain credentials`);
  return problems;
}

/**
 * Everything wrong with one issuer's configuration, as sentences (empty when it is usable). Used by
 * {@link OidcVerifier}'s constructor, which refuses such an issuer. The policy loader does not call
 * it: a policy file's `identity.issuers` is checked before, with file positions, by the policy's
 * schema and `identityFindings` (src/policy/policy.ts).
 */
export function issuerProblems(c: IssuerConfig): string[] {
  const problems = urlProblems('issuer', c.issuer);
  if (problems.length === 0) {
    const u = new URL(c.issuer);
    if (u.search || u.hash) problems.push(`issuer ${JSON.stringify(c.issuer)} must not have a query or fragment`);
  }
  if (c.jwksUri !== undefined) problems.push(...urlProblems('jwksUri', c.jwksUri));
  if (!Array.isArray(c.audience) || c.audience.length === 0) {
    problems.push('audience must list at least one accepted value');
  } else if (c.audience.some((a) => typeof a !== 'string' || a === '')) {
    problems.push('audience values must be non-empty strings');
  }
  if (!Array.isArray(c.algorithms) || c.algorithms.length === 0) {
    problems.push(`algorithms must list at least one of ${SUPPORTED_ALGORITHMS.join(', ')}`);
  } else {
    for (const alg of c.algorithms) {
      if (typeof alg === 'string' && alg.toLowerCase() === 'none') {
        problems.push('algorithms: "none" is never allowed (it accepts unsigned tokens)');
      } else if (typeof alg === 'string' && isSymmetricOrNone(alg)) {
        problems.push(
          `algorithms: ${JSON.stringify(alg)} is never allowed (a shared-secret algorithm: anyone holding the secret, or tricked into using a public key as one, could mint tokens)`,
        );
      } else if (typeof alg !== 'string' || !SUPPORTED_ALGORITHMS.includes(alg)) {
        problems.push(`algorithms: ${JSON.stringify(alg)} is not a supported algorithm (${SUPPORTED_ALGORITHMS.join(', ')})`);
      }
    }
  }
  for (const key of ['actorClaim', 'groupsClaim', 'serviceClaim'] as const) {
    if (typeof c[key] !== 'string' || c[key] === '') problems.push(`${key} must be a non-empty claim name`);
  }
  for (const key of ['requireEmailVerified', 'requireAtJwt'] as const) {
    if (c[key] !== undefined && typeof c[key] !== 'boolean') problems.push(`${key} must be true or false`);
  }
  if (c.serviceClients !== undefined) {
    if (!Array.isArray(c.serviceClients) || c.serviceClients.some((id) => typeof id !== 'string' || id === '')) {
      problems.push('serviceClients must list non-empty client ids');
    }
  }
  if (typeof c.clockSkewS !== 'number' || !Number.isFinite(c.clockSkewS) || c.clockSkewS < 0) {
    problems.push('clockSkewS must be a number of seconds, 0 or more');
  } else if (c.clockSkewS > 300) {
    problems.push(`clockSkewS ${c.clockSkewS} is more than 300 s (5 minutes): expired tokens would be accepted too long`);
  }
  if (c.require === null || typeof c.require !== 'object' || Array.isArray(c.require)) {
    problems.push('require must map claim names to the exact string values required');
  } else {
    for (const [claim, value] of Object.entries(c.require)) {
      if (typeof value !== 'string') problems.push(`require.${claim} must be a string`);
    }
  }
  return problems;
}

type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;

/** Exponential back-off after a failed fetch from an IdP. */
class Backoff {
  failures = 0;
  retryAt = 0;
  message = '';
  reason: 'idp_unreachable' | 'idp_misconfigured' = 'idp_unreachable';

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {}

  fail(now: number, message: string, reason: 'idp_unreachable' | 'idp_misconfigured'): void {
    this.failures++;
    this.retryAt = now + Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.failures - 1, 30));
    this.message = message;
    this.reason = reason;
  }

  ok(): void {
    this.failures = 0;
    this.retryAt = 0;
  }

  waiting(now: number): boolean {
    return this.failures > 0 && now < this.retryAt;
  }

  /** e.g. "; next attempt in 2 s" */
  next(now: number): string {
    return `; next attempt in ${Math.max(1, Math.ceil((this.retryAt - now) / 1000))} s`;
  }
}

interface Discovered {
  jwksUri: string;
  at: number;
}

interface KeySet {
  uri: string;
  remote: RemoteKeySet;
  /** When jose last fetched the set successfully (our clock). */
  fetchedAt?: number;
  /** The last good set, as a local set, for use while the IdP is unreachable. */
  stale?: { jwks: JSONWebKeySet; get: ReturnType<typeof createLocalJWKSet> };
}

/** Per-issuer state: configuration, allow-list, cached discovery document and key set, back-off. */
class Issuer {
  readonly algorithms: string[];
  doc?: Discovered;
  docFetch?: Promise<Discovered>;
  readonly docBackoff: Backoff;
  keys?: KeySet;
  readonly keysBackoff: Backoff;
  readonly getKey: JWTVerifyGetKey;

  constructor(
    readonly cfg: IssuerConfig,
    private readonly v: Settings,
  ) {
    // Defensive: the policy loader refuses these, but never let one through even if configured.
    this.algorithms = cfg.algorithms.filter((a) => !isSymmetricOrNone(a));
    this.docBackoff = new Backoff(v.retryMinMs, v.retryMaxMs);
    this.keysBackoff = new Backoff(v.retryMinMs, v.retryMaxMs);
    this.getKey = (header, token) => this.key(header, token);
  }

  private unavailable(b: Backoff, now: number): AuthError {
    return AuthError.unavailable(`${b.message}${b.next(now)}`, b.reason, this.cfg.issuer);
  }

  /** The JWKS URL: the configured override, else the (cached) discovery document's `jwks_uri`. */
  async jwksUri(): Promise<string> {
    if (this.cfg.jwksUri) return this.cfg.jwksUri;
    const now = this.v.now();
    const doc = this.doc;
    if (doc && now - doc.at < this.v.cacheTtlMs) return doc.jwksUri;
    const usableStale = doc && now - doc.at < this.v.cacheTtlMs + this.v.maxStaleMs ? doc : undefined;
    if (this.docBackoff.waiting(now)) {
      if (usableStale) return usableStale.jwksUri;
      throw this.unavailable(this.docBackoff, now);
    }
    this.docFetch ??= this.discover().finally(() => {
      this.docFetch = undefined;
    });
    try {
      return (await this.docFetch).jwksUri;
    } catch (err) {
      if (usableStale) return usableStale.jwksUri;
      if (err instanceof AuthError) throw err;
      throw this.unavailable(this.docBackoff, this.v.now());
    }
  }

  private async discover(): Promise<Discovered> {
    const issuer = this.cfg.issuer;
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const fail = (message: string, reason: 'idp_unreachable' | 'idp_misconfigured'): AuthError => {
      const now = this.v.now();
      this.docBackoff.fail(now, message, reason);
      return this.unavailable(this.docBackoff, now);
    };
    let body: unknown;
    try {
      const res = await fetch(url, {
        redirect: 'manual',
        signal: AbortSignal.timeout(this.v.fetchTimeoutMs),
        headers: { accept: 'application/json' },
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw fail(
          `identity provider ${issuer} answered HTTP ${res.status} for its discovery document ${url}`,
          'idp_unreachable',
        );
      }
      try {
        body = await res.json();
      } catch {
        throw fail(`identity provider ${issuer} sent a discovery document that is not JSON (${url})`, 'idp_misconfigured');
      }
    } catch (err) {
      if (err instanceof AuthError) throw err;
      throw fail(
        `identity provider ${issuer} is unreachable: cannot fetch its discovery document ${url} (${describeFetchError(err, this.v.fetchTimeoutMs)})`,
        'idp_unreachable',
      );
    }
    const d = body as { issuer?: unknown; jwks_uri?: unknown } | null;
    if (d === null || typeof d !== 'object' || Array.isArray(d)) {
      throw fail(`identity provider ${issuer} sent a discovery document that is not a JSON object (${url})`, 'idp_misconfigured');
    }
    if (d.issuer !== issuer) {
      throw fail(
        `identity provider discovery document ${url} names issuer ${JSON.stringify(d.issuer)}, not the configured ${JSON.stringify(issuer)}`,
        'idp_misconfigured',
      );
    }
    const problems = urlProblems('jwks_uri', d.jwks_uri);
    if (problems.length > 0) {
      throw fail(`identity provider ${issuer} discovery document ${url}: ${problems.join('; ')}`, 'idp_misconfigured');
    }
    this.docBackoff.ok();
    this.doc = { jwksUri: d.jwks_uri as string, at: this.v.now() };
    return this.doc;
  }

  private keySet(uri: string): KeySet {
    if (this.keys?.uri !== uri) {
      this.keys = {
        uri,
        remote: createRemoteJWKSet(new URL(uri), {
          timeoutDuration: this.v.fetchTimeoutMs,
          cooldownDuration: this.v.jwksCooldownMs,
          cacheMaxAge: this.v.cacheTtlMs,
        }),
      };
      this.keysBackoff.ok();
    }
    return this.keys;
  }

  /** jose key resolver: the issuer's key for this header, fetching the key set only when needed. */
  private async key(...args: Parameters<JWTVerifyGetKey>): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> {
    const ks = this.keySet(await this.jwksUri());
    const now = this.v.now();
    const stale = () => {
      const last = ks.remote.jwks();
      if (!last || ks.fetchedAt === undefined || now - ks.fetchedAt > this.v.cacheTtlMs + this.v.maxStaleMs) return undefined;
      if (ks.stale?.jwks !== last) ks.stale = { jwks: last, get: createLocalJWKSet(last) };
      return ks.stale.get;
    };
    const fresh = ks.remote.fresh;
    if (!fresh && this.keysBackoff.waiting(now)) {
      const get = stale();
      if (get) return get(...args);
      throw this.unavailable(this.keysBackoff, now);
    }
    try {
      const key = await ks.remote(...args);
      if (!fresh) {
        ks.fetchedAt = this.v.now();
        this.keysBackoff.ok();
      }
      return key;
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err;
      const t = this.v.now();
      const why = describeFetchError(err, this.v.fetchTimeoutMs);
      if (err instanceof errors.JWKSInvalid) {
        this.keysBackoff.fail(
          t,
          `identity provider ${this.cfg.issuer} serves an unusable key set at ${ks.uri} (${why})`,
          'idp_misconfigured',
        );
      } else {
        this.keysBackoff.fail(
          t,
          `identity provider ${this.cfg.issuer} is unreachable: cannot fetch its key set ${ks.uri} (${why})`,
          'idp_unreachable',
        );
      }
      const get = stale();
      if (get) return get(...args);
      throw this.unavailable(this.keysBackoff, t);
    }
  }
}

interface Settings {
  fetchTimeoutMs: number;
  cacheTtlMs: number;
  jwksCooldownMs: number;
  maxStaleMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  now: () => number;
}

function describeFetchError(err: unknown, timeoutMs: number): string {
  if (err instanceof errors.JWKSTimeout || (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))) {
    return `no answer within ${timeoutMs} ms`;
  }
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return cause.message;
    if (cause && typeof cause === 'object' && 'code' in cause) return String((cause as { code: unknown }).code);
    return err.message;
  }
  return String(err);
}

const iso = (epochS: number) => new Date(epochS * 1000).toISOString().replace(/\.000Z$/, 'Z');
/** A header or claim value put in a refusal's `detail` as is: a string clipped to MAX_QUOTED characters, anything else dropped. */
const clip = (v: unknown): string | undefined =>
  typeof v !== 'string' ? undefined : v.length > MAX_QUOTED ? `${v.slice(0, MAX_QUOTED)}…` : v;
/** A value quoted in a refusal, clipped: the 401 body and the recorded denial must not carry kilobytes of attacker text. */
const show = (v: unknown) => {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}… (${text.length} characters)` : text;
};

/** Verifies OIDC/OAuth JWT bearer tokens from the configured issuers and maps them to a {@link Principal}. */
export class OidcVerifier {
  private readonly issuers = new Map<string, Issuer>();
  private readonly now: () => number;

  constructor(configs: readonly IssuerConfig[], options: OidcVerifierOptions = {}) {
    const settings: Settings = {
      fetchTimeoutMs: options.fetchTimeoutMs ?? 5_000,
      cacheTtlMs: options.cacheTtlMs ?? 10 * 60_000,
      jwksCooldownMs: options.jwksCooldownMs ?? 30_000,
      maxStaleMs: options.maxStaleMs ?? 60 * 60_000,
      retryMinMs: options.retryMinMs ?? 1_000,
      retryMaxMs: options.retryMaxMs ?? 60_000,
      now: options.now ?? Date.now,
    };
    this.now = settings.now;
    for (const c of configs) {
      const problems = issuerProblems(c);
      if (problems.length > 0) throw new Error(`OIDC issuer ${JSON.stringify(c.issuer)}: ${problems.join('; ')}`);
      if (this.issuers.has(c.issuer)) throw new Error(`OIDC issuer ${JSON.stringify(c.issuer)} is configured twice`);
      this.issuers.set(c.issuer, new Issuer(c, settings));
    }
  }

  /** The trusted issuers, as configured. */
  get trustedIssuers(): string[] {
    return [...this.issuers.keys()];
  }

  /**
   * Verifies a bearer token (without the `Bearer ` prefix) and returns who it identifies. Throws
   * {@link AuthError}: 401 `invalid_token` when the token is refused, 503 `idp_unavailable` when the
   * issuer's keys cannot be fetched.
   */
  async verify(token: string): Promise<Principal> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) {
      throw new AuthError(`not a JWT (longer than ${MAX_TOKEN_LENGTH} characters)`, 'malformed');
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: JWTPayload;
    try {
      if (token.split('.').length !== 3) throw new Error('not three parts');
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch {
      throw new AuthError('not a JWT', 'malformed');
    }

    const iss = unverified.iss;
    if (typeof iss !== 'string' || iss === '') throw new AuthError('token has no issuer ("iss" claim)', 'untrusted_issuer');
    const issuer = this.issuers.get(iss);
    if (!issuer) {
      throw new AuthError(`token issuer ${show(iss)} is not a trusted issuer`, 'untrusted_issuer', {
        issuer: clip(iss),
      });
    }
    const cfg = issuer.cfg;

    const alg = header.alg;
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none') {
      throw new AuthError(`unsigned token (alg ${show(alg ?? 'none')}) refused`, 'unsigned', { alg: clip(alg) });
    }
    if (!issuer.algorithms.includes(alg)) {
      throw new AuthError(`token algorithm ${show(alg)} is not allowed (${issuer.algorithms.join(', ')})`, 'alg_not_allowed', {
        alg: clip(alg),
      });
    }

    const nowMs = this.now();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, issuer.getKey, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        algorithms: issuer.algorithms,
        clockTolerance: cfg.clockSkewS,
        requiredClaims: ['exp'],
        currentDate: new Date(nowMs),
      }));
    } catch (err) {
      throw refusal(err, issuer, header);
    }

    const skew = `clock skew allowed: ${cfg.clockSkewS} s`;
    if (typeof payload.iat === 'number' && payload.iat > Math.floor(nowMs / 1000) + cfg.clockSkewS) {
      throw new AuthError(`token was issued in the future (iat ${iso(payload.iat)}; ${skew})`, 'issued_in_future');
    }
    const wrongType = notAnAccessToken(header, payload, cfg);
    if (wrongType) throw new AuthError(wrongType, 'wrong_token_type');
    for (const [claim, want] of Object.entries(cfg.require)) {
      const got = payload[claim];
      if (got === undefined) {
        throw new AuthError(`token lacks claim ${show(claim)}, this server requires ${show(want)}`, 'missing_claim', { claim });
      }
      if (got !== want) {
        throw new AuthError(`token claim ${show(claim)} is ${show(got)}, this server requires ${show(want)}`, 'claim_mismatch', {
          claim,
        });
      }
    }
    return principalOf(payload, cfg);
  }
}

/** Turns a jose error into the precise refusal (or passes an AuthError, or an unexpected error, through). */
function refusal(err: unknown, issuer: Issuer, header: ReturnType<typeof decodeProtectedHeader>): unknown {
  const cfg = issuer.cfg;
  if (err instanceof AuthError) return err;
  const skew = `clock skew allowed: ${cfg.clockSkewS} s`;
  if (err instanceof errors.JWTExpired) {
    const exp = err.payload.exp;
    return new AuthError(
      typeof exp === 'number' ? `token expired at ${iso(exp)} (${skew})` : `token expired (${skew})`,
      'expired',
      { claim: err.claim },
    );
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    const { claim, reason } = err;
    const value = err.payload[claim];
    if (reason === 'missing') {
      if (claim === 'exp')
        return new AuthError('token has no expiry ("exp" claim): tokens that never expire are refused', 'missing_claim', {
          claim,
        });
      if (claim === 'aud') {
        return new AuthError(`token has no audience ("aud" claim); this server accepts ${cfg.audience.join(', ')}`, 'audience', {
          claim,
        });
      }
      return new AuthError(`token lacks claim ${show(claim)}`, 'missing_claim', { claim });
    }
    if (reason === 'check_failed') {
      if (claim === 'aud') {
        const aud = Array.isArray(value) ? value : [value];
        return new AuthError(
          `token audience ${show(aud)} is not one this server accepts (${cfg.audience.join(', ')})`,
          'audience',
          {
            claim,
          },
        );
      }
      if (claim === 'nbf' && typeof value === 'number') {
        return new AuthError(`token is not valid before ${iso(value)} (${skew})`, 'not_yet_valid', { claim });
      }
      if (claim === 'iss')
        return new AuthError(`token issuer ${show(value)} is not a trusted issuer`, 'untrusted_issuer', { claim });
    }
    return new AuthError(`token claim ${show(claim)} is invalid: ${err.message}`, 'invalid_claim', { claim });
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError("token signature does not verify against the issuer's keys", 'bad_signature');
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    const kid = header.kid === undefined ? 'no "kid"' : `"kid" ${show(header.kid)}`;
    return new AuthError(
      `token signature does not verify against the issuer's keys (no ${show(header.alg)} key of issuer ${cfg.issuer} matches ${kid})`,
      'unknown_key',
      { kid: clip(header.kid) },
    );
  }
  if (err instanceof errors.JWKSMultipleMatchingKeys) {
    return new AuthError(
      `token signature does not verify against the issuer's keys (the token has no "kid" and several ${show(header.alg)} keys match)`,
      'unknown_key',
    );
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new AuthError(
      `token algorithm ${show(header.alg)} is not allowed (${issuer.algorithms.join(', ')})`,
      'alg_not_allowed',
    );
  }
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid || err instanceof errors.JOSENotSupported) {
    return new AuthError(`not a valid JWT: ${err.message}`, 'malformed');
  }
  if (err instanceof errors.JOSEError) {
    return new AuthError(`token refused: ${err.message}`, 'malformed');
  }
  return err;
}

/**
 * Why a verified token is not an access token for this server, or undefined. The header `typ`, when
 * present, must be at+jwt (RFC 9068) or the generic JWT (unless the issuer requires at+jwt);
 * anything else (logout+jwt, secevent+jwt, dpop+jwt, ...) is another kind of token. ID and logout
 * tokens are known by claims access tokens never carry.
 */
export function notAnAccessToken(
  header: { typ?: unknown },
  payload: JWTPayload,
  cfg: Pick<IssuerConfig, 'requireAtJwt'>,
): string | undefined {
  const typ = header.typ;
  if (typ === undefined) {
    if (cfg.requireAtJwt) return 'token has no header "typ"; this issuer\'s access tokens are "at+jwt" (RFC 9068)';
  } else {
    const t = typeof typ === 'string' ? typ.toLowerCase() : undefined;
    const access = t !== undefined && ACCESS_TOKEN_TYPES.has(t);
    if (!access && (cfg.requireAtJwt || t === undefined || !GENERIC_TYPES.has(t))) {
      return `token type (header "typ") ${show(typ)} is not an access token: ${cfg.requireAtJwt ? '' : '"JWT" or '}"at+jwt" (RFC 9068) required`;
    }
  }
  // Keycloak before 25 copied the sign-in's nonce into its access tokens, which it marks typ "Bearer".
  const keycloakAccess = typeof payload.typ === 'string' && payload.typ.toLowerCase() === 'bearer';
  for (const claim of NOT_ACCESS_TOKEN_CLAIMS) {
    if (payload[claim] !== undefined && !(claim === 'nonce' && keycloakAccess)) {
      const what = claim === 'events' ? 'a logout or security event token' : 'an ID token';
      return `token carries ${show(claim)}: it is ${what}, not an access token`;
    }
  }
  const kc = payload.typ;
  if (typeof kc === 'string' && KEYCLOAK_OTHER_TYPES.has(kc.toLowerCase())) {
    return `token claim "typ" is ${show(kc)}: not an access token ("Bearer")`;
  }
  return undefined;
}

/** `value` as a principal id: a non-empty string without control characters, at most MAX_ID_LENGTH, NFC. */
function identityOf(claim: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new AuthError(`token claim ${show(claim)} must be a non-empty string, not ${show(value)}`, 'invalid_claim', { claim });
  }
  // Control characters would forge lines in logs and listings; ids are role members' length at most.
  if (/\p{Cc}/u.test(value) || value.length > MAX_ID_LENGTH) {
    throw new AuthError(
      `token claim ${show(claim)} is not usable as an identity (control characters, or longer than ${MAX_ID_LENGTH} characters)`,
      'invalid_claim',
      { claim },
    );
  }
  // One spelling per identity, as role members and stored actor ids are: NFD "josé" is NFC "josé".
  return value.normalize('NFC');
}

/**
 * The principal a verified token names: a user when it has the actor claim (an `email` only when
 * verified), a service when it is a client's own token (client credentials), else nothing: a
 * user's token without the person in it must not become the client it was issued to.
 */
function principalOf(payload: JWTPayload, cfg: IssuerConfig): Principal {
  const issuer = payload.iss as string;
  const sub = payload.sub === undefined ? undefined : identityOf('sub', payload.sub);
  const withSub = sub === undefined ? {} : { sub };
  const actor = payload[cfg.actorClaim];
  if (actor !== undefined) {
    const id = identityOf(cfg.actorClaim, actor);
    if (cfg.actorClaim === 'email' && (cfg.requireEmailVerified ?? true)) {
      const verified = payload.email_verified;
      // Some IdPs send the string "true"; anything else (false, absent, "false") is unverified.
      if (verified !== true && verified !== 'true') {
        throw new AuthError(
          // The address itself stays out of the message: refusals are recorded in the log.
          `token's email is not verified (claim "email_verified" is ${show(verified ?? null)}): only a verified address identifies a person`,
          'unverified_email',
          { claim: 'email_verified' },
        );
      }
    }
    return { kind: 'user', id, method: 'oidc', issuer, ...withSub, groups: groupsOf(payload, cfg.groupsClaim), roles: [] };
  }
  const claims = [...new Set([cfg.serviceClaim, 'client_id', 'azp'])];
  const found = claims.find((c) => payload[c] !== undefined);
  if (found === undefined) {
    throw new AuthError(
      `token lacks claim ${show(cfg.actorClaim)} naming a user and has none of ${claims.map(show).join(', ')} naming a service (missing claim)`,
      'missing_claim',
      { claim: cfg.actorClaim },
    );
  }
  const client = identityOf(found, payload[found]);
  const listed = cfg.serviceClients;
  const isService = listed ? listed.some((c) => c.normalize('NFC') === client) : sub !== undefined && sub === client;
  if (!isService) {
    const rule = listed
      ? `client ${show(client)} is not one of this issuer's service clients`
      : sub === undefined
        ? `it has no "sub" equal to its client id ${show(client)}`
        : `its "sub" is not its client id ${show(client)}`;
    throw new AuthError(
      `token has no ${show(cfg.actorClaim)} claim naming a person and is not a service's own token (${rule}): a user's token without the person in it is refused`,
      'not_a_service',
      { claim: cfg.actorClaim },
    );
  }
  return { kind: 'service', id: client, method: 'oidc', issuer, ...withSub, groups: [], roles: [] };
}

function groupsOf(payload: JWTPayload, claim: string): string[] {
  const g = payload[claim];
  if (g === undefined || g === null) return [];
  if (typeof g === 'string') return [identityOf(claim, g)];
  if (Array.isArray(g) && g.every((x) => typeof x === 'string')) return [...new Set(g.map((x) => identityOf(claim, x)))];
  throw new AuthError(`token claim ${show(claim)} must be a list of strings, not ${show(g)}`, 'invalid_claim', { claim });
}
