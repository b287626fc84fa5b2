/**
 * The compiled policy's types: plain JSON (structured-cloneable, so a Policy can be posted to worker
 * threads). Apart from ./policy.ts, which reads and validates the file, so that ./cedar.ts, which
 * ./policy.ts calls, can name them without importing it back.
 */
import type { IssuerConfig } from '../core/principal.js';
import type { ROLE_ACTIONS } from './schema.js';

/** A retention tier, compiled. */
export interface Tier {
  name: string;
  /** How long its events are kept, in ms; null = forever. */
  keepMs: number | null;
  /** Whether its events are sealed with data keys. Always true when `keepMs` is not null. */
  encrypt: boolean;
  /** Action globs; empty when the tier has no `match` (it then receives only default-tier events). */
  actions: string[];
  /** Source-kind globs; empty = any source. */
  sources: string[];
}

export interface RetentionPolicy {
  /** How often the retention job runs, in ms. */
  scheduleMs: number;
  /** Name of the tier for events no tier matches; always one of `tiers`. */
  defaultTier: string;
  /** In file order, the order they are tried. */
  tiers: Tier[];
}

/** What a role may allow (`roles.<name>.actions`). */
export type RoleAction = (typeof ROLE_ACTIONS)[number];

/** A role, compiled: who holds it and what it allows (src/policy/access.ts turns it into Cedar policies). */
export interface Role {
  name: string;
  /**
   * `user:<id>`, `group:<name>`, `key:<API key name>`, `cert:<CN>`, `service:<client id>`,
   * `sub:<issuer>#<sub>`, or `*`; the ids of the OIDC kinds (user, group, service, sub) in NFC, as
   * the verifier gives principals.
   */
  members: string[];
  /** In file order, without duplicates; may be empty for a role that only vouches. */
  actions: RoleAction[];
  /** Tiers that read, search and export are restricted to; empty = every tier. */
  tiers: string[];
  /** Action globs of events whose members may submit with someone else as the actor; empty = none. */
  vouch: string[];
}

export interface IdentityPolicy {
  /** The trusted OIDC issuers; empty = no OIDC token is accepted. */
  issuers: IssuerConfig[];
}

/** The companion Cedar file (stele.cedar beside the policy file): extra permit and forbid policies. */
export interface CedarFile {
  /** The path it was read from (as given). */
  source: string;
  /** SHA-256 (hex) of its bytes. */
  sha256: string;
  /** Its text, so that any thread can rebuild the authoriser from the Policy alone. */
  text: string;
}

/** A loaded policy: plain JSON, safe to structuredClone / postMessage. */
export interface Policy {
  version: 1;
  /** The file it was read from (as given), or "built-in". */
  source: string;
  /** SHA-256 (hex) of the YAML file's bytes, recorded in the log when the server loads the policy. */
  sha256: string;
  retention: RetentionPolicy;
  identity: IdentityPolicy;
  /** In file order. */
  roles: Role[];
  /** The companion Cedar policies, or null when there are none. */
  cedar: CedarFile | null;
  /** Alerts as code (empty when the section is absent). */
  alerts: AlertPolicy;
}

/** Where alert firings go. */
export interface Notifier {
  name: string;
  url: string;
  format: 'json' | 'slack';
  /** The environment variable holding its HMAC key, or null (unsigned). */
  secretEnv: string | null;
}

export interface AlertRule {
  name: string;
  query: string;
  windowMs: number;
  /** Fires when more than this many entries match within the window. */
  threshold: number;
  groupBy: 'actor' | 'principal' | 'action' | 'source' | 'host' | 'tier' | 'subject' | 'resource' | null;
  /** Role-member strings whose writes never count. */
  except: string[];
  notify: string[];
}

export interface AlertPolicy {
  rules: AlertRule[];
  notifiers: Notifier[];
}

/** One problem in a policy file; `line` and `column` are 1-based, `path` like `retention.tiers[0].keep` ("" for the whole file). */
export interface PolicyProblem {
  file: string;
  line: number;
  column: number;
  path: string;
  message: string;
}
