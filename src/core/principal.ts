/**
 * Who is making a request, once authenticated. Shared by the authenticators (OIDC, API keys, client
 * certificates), the authoriser (Cedar, src/policy/access.ts) and the ingest path that sets
 * `actor.verified` and the leaf's `ingest` from it.
 */

/** Who wrote the event into the log: the authenticated ingest principal and how it authenticated. */
export interface Ingest {
  principal: string;
  method: 'oidc' | 'apikey' | 'mtls' | 'local';
}

export type PrincipalKind =
  /** A person, from an OIDC token that carries the issuer's actor claim (e.g. a verified email). */
  | 'user'
  /**
   * A machine identity: an OIDC token without the actor claim that is a client's own token (client
   * credentials: its `sub` is its client id, or the client is in the issuer's `serviceClients`).
   */
  | 'service'
  /** A Stele API key (`stele keys create`). */
  | 'apikey'
  /** A TLS client certificate signed by the configured client CA. */
  | 'cert'
  /** Direct access to the data directory (the CLI without a server): not subject to access policy. */
  | 'local';

export interface Principal {
  kind: PrincipalKind;
  /** user: the actor claim's value (e.g. alice@example.com); service: the client id; apikey: the key's name; cert: the subject CN. */
  id: string;
  /** How it authenticated, as recorded in every leaf it writes. */
  method: Ingest['method'];
  /** OIDC: the token's `iss`; cert: the issuing CA's subject; apikey/local: absent. */
  issuer?: string;
  /** OIDC: the token's `sub` (NFC), matched by `sub:<issuer>#<sub>` members; absent otherwise. */
  sub?: string;
  /** Groups from the issuer's groups claim (users only); empty otherwise. */
  groups: string[];
  /** Roles granted by the credential itself (an API key's `--role`); policy may grant more. */
  roles: string[];
  /** An API key's restrictions: its events' `source.kind` and `action` must match one of these globs. */
  restrict?: { sources?: string[]; actions?: string[] };
}

/** The leaf's `ingest` object for a principal's writes: `method` tells a key named "ci" from a user "ci". */
export function ingestOf(p: Principal): Ingest {
  return { principal: p.id, method: p.method };
}

/**
 * One trusted OIDC issuer, compiled from the policy file's `identity.issuers` (see
 * src/policy/schema.ts). Tokens are verified against the issuer's JWKS (found through its
 * discovery document unless `jwksUri` is given).
 */
export interface IssuerConfig {
  /** Exact `iss` value, e.g. https://acme.okta.com/oauth2/default. */
  issuer: string;
  /** Accepted `aud` values; a token must carry at least one. */
  audience: string[];
  /** Claim whose value becomes `actor.id` of a human (default `email`). */
  actorClaim: string;
  /**
   * When the actor claim is `email`, the token must carry `email_verified: true` (default true).
   * false trusts unverified addresses: anyone who can make the IdP put someone else's address in
   * their own account then holds that person's `user:` roles.
   */
  requireEmailVerified?: boolean;
  /**
   * Every token must have the header `typ: at+jwt` (RFC 9068), for IdPs that always set it (default
   * false: a token without `typ`, or with the generic `JWT`, is accepted too; any other type never).
   */
  requireAtJwt?: boolean;
  /**
   * The client ids whose tokens without the actor claim are services. When set, only these; when
   * absent, a token is a service when its `sub` equals its client id (RFC 9068 §2.2, client
   * credentials). Any other token without the actor claim (a user's, e.g. from the device flow
   * without the email scope) is refused.
   */
  serviceClients?: string[];
  /** Claim holding the user's groups, a list of strings (default `groups`). */
  groupsClaim: string;
  /** Claim naming a service principal's client id when the token has no actor claim (default `client_id`, then `azp`). */
  serviceClaim: string;
  /** JWS algorithms accepted (never `none`, never HS*): default RS256, PS256, ES256, EdDSA. */
  algorithms: string[];
  /** Tolerated clock difference for `exp`/`nbf`/`iat`, seconds (default 30). */
  clockSkewS: number;
  /** Claims that must have exactly these values (e.g. a tenant id: `{ tid: "..." }`). */
  require: Record<string, string>;
  /** JWKS URL, overriding the discovery document's `jwks_uri`. */
  jwksUri?: string;
  /** Console sign-in with this issuer (authorization code + PKCE in the browser, a public client). */
  console?: { clientId: string; label: string; scopes: string[]; params: Record<string, string> };
}
