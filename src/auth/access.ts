/**
 * Authentication and authorisation of requests, in one place the server and the operations share:
 * who is asking (API key, OIDC token or client certificate) and whether the loaded policy lets
 * them (Cedar, src/policy/access.ts). A reloaded policy swaps the authoriser and the trusted
 * issuers together, so a request is never judged by half of one policy and half of another.
 */

import type { Claim } from '../core/claim.js';
import { eventAt, SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { type AccessAction, type AccessResource, Authorizer } from '../policy/access.js';
import type { Policy } from '../policy/policy.js';
import { API_KEY_PREFIX, type ApiKeyStore } from './apikeys.js';
import { AuthError, OidcVerifier } from './oidc.js';

/** A TLS client certificate the server's client CA verified. */
export interface PeerCert {
  cn: string;
  issuer: string;
}

/** What a request presents: its Authorization header, and its verified client certificate if any. */
export interface Credentials {
  authorization?: string;
  cert?: PeerCert;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const JWT = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

export class Access {
  private authorizer: Authorizer;
  private oidc: OidcVerifier;

  constructor(
    readonly apikeys: ApiKeyStore,
    private current: Policy,
    private readonly pepper: Buffer,
  ) {
    this.authorizer = Authorizer.create(current, { pepper });
    this.oidc = new OidcVerifier(current.identity.issuers);
  }

  get policy(): Policy {
    return this.current;
  }

  /** Switches to a new policy; throws (and keeps the old one) if it cannot be compiled. */
  setPolicy(policy: Policy): void {
    const authorizer = Authorizer.create(policy, { pepper: this.pepper });
    this.authorizer = authorizer;
    this.oidc = new OidcVerifier(policy.identity.issuers);
    this.current = policy;
  }

  /** The principal of a request, or null when it presents no credential at all. */
  async authenticate(c: Credentials): Promise<Principal | null> {
    if (c.authorization !== undefined) {
      const m = BEARER.exec(c.authorization);
      if (!m) throw new AuthError('the Authorization header is not "Bearer <token>"', 'malformed');
      const token = m[1] as string;
      if (token.startsWith(API_KEY_PREFIX)) {
        const p = this.apikeys.authenticate(token);
        if (p === 'revoked') throw new AuthError('this API key has been revoked', 'revoked_key');
        if (p === 'unknown') throw new AuthError('the API key is not valid', 'unknown_key');
        return p;
      }
      if (JWT.test(token)) return this.oidc.verify(token);
      throw new AuthError('the bearer token is neither a Stele API key (stele_...) nor a JWT', 'malformed');
    }
    if (c.cert) return { kind: 'cert', id: c.cert.cn, method: 'mtls', issuer: c.cert.issuer, groups: [], roles: [] };
    return null;
  }

  allowed(p: Principal, action: AccessAction, resource: AccessResource): boolean {
    return this.authorizer.allowed(p, action, resource);
  }

  /** Throws 403, naming who and what, unless the policy allows it. */
  require(p: Principal, action: AccessAction, resource: AccessResource = { type: 'Log' }): void {
    if (this.allowed(p, action, resource)) return;
    const what = resource.type === 'Log' ? '' : ` on ${describe(resource)}`;
    throw new SteleError('forbidden', `${who(p)} may not ${action}${what} (policy ${this.current.sha256.slice(0, 12)})`, {
      detail: {
        action,
      },
    });
  }

  /** Whether the policy may decide an entry by more than its tier (see Authorizer.entryDependent). */
  get entryDependent(): boolean {
    return this.authorizer.entryDependent;
  }

  /** The tiers whose entries `p` may see through `action` (read, search, export); all tiers for a principal with no restriction. */
  readableTiers(p: Principal, action: AccessAction): string[] {
    return this.authorizer.readableTiers(p, action);
  }

  /** Authorises what a prepared batch claims (identity.ts): append each (action, source), vouch for others' actors. */
  readonly authorizeClaims = (p: Principal, claims: readonly Claim[]): void => {
    for (const c of claims) {
      const event = { type: 'Event', action: c.action, source: c.source, actor: c.actor } as const;
      const at = claims.length > 1 || c.at > 0 ? c.at : undefined;
      if (!this.allowed(p, 'append', event)) {
        const problem = `${who(p)} may not append ${c.action} events from source "${c.source}"`;
        throw new SteleError('forbidden', problem, eventAt(at, { action: 'append' }));
      }
      if (c.vouch && !this.allowed(p, 'vouch', event)) {
        throw new SteleError(
          'forbidden',
          `actor "${c.actor}" is not ${who(p)}, and the policy does not let ${who(p)} vouch for other actors of ${c.action} events`,
          eventAt(at, { action: 'vouch' }),
        );
      }
    }
  };
}

export function who(p: Principal): string {
  switch (p.kind) {
    case 'user':
      return `user "${p.id}"`;
    case 'service':
      return `service "${p.id}"`;
    case 'apikey':
      return `API key "${p.id}"`;
    case 'cert':
      return `certificate "${p.id}"`;
    case 'local':
      return `local "${p.id}"`;
  }
}

function describe(r: AccessResource): string {
  switch (r.type) {
    case 'Event':
      return `${r.action} events`;
    case 'Entry':
      // Never the entry's content (nor its tier): a refusal must not open what it refuses.
      return 'this entry';
    default:
      return 'the log';
  }
}
