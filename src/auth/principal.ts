/**
 * Who is making a request, once authenticated. Shared by the authenticators (OIDC, API keys, client
 * certificates), the authoriser (Cedar, src/policy/access.ts) and the ingest path that sets
 * `actor.verified` and the leaf's `ingest` from it.
 */
import type { Ingest } from '../event/types.js';

export type PrincipalKind =
  /** A person, from an OIDC token that carries the issuer's actor claim (e.g. email). */
  | 'user'
  /** A machine identity from an OIDC token without the actor claim (client credentials). */
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
  /** Claim holding the user's groups, a list of strings (default `groups`). */
  groupsClaim: string;
  /** Claim naming a service principal when the token has no actor claim (default `client_id`, then `azp`, then `sub`). */
  serviceClaim: string;
  /** JWS algorithms accepted (never `none`, never HS*): default RS256, PS256, ES256, EdDSA. */
  algorithms: string[];
  /** Tolerated clock difference for `exp`/`nbf`/`iat`, seconds (default 30). */
  clockSkewS: number;
  /** Claims that must have exactly these values (e.g. a tenant id: `{ tid: "..." }`). */
  require: Record<string, string>;
  /** JWKS URL, overriding the discovery document's `jwks_uri`. */
  jwksUri?: string;
}
