/**
 * The JSON Schema (2020-12) of `stele.policy.yaml`, the policy file kept in version control. It is
 * published, so every rule a policy author must know about is stated here with a description.
 * `parsePolicy` validates against it and then checks what a schema cannot say (unique tier names,
 * `default` naming a tier, minimum durations, expiring tiers being encrypted, issuers on https,
 * roles naming existing tiers).
 *
 * Each top-level section is its own constant; a new section (alerts) is one more entry in
 * `policySchema.properties`.
 */

/** A duration such as 90d, 36h or 1h30m (units ms, s, m, h, d, w, y = 365d), as `src/core/duration.ts` reads it. */
export const DURATION_PATTERN = '^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$';
/** `forever`, or a duration. */
export const KEEP_PATTERN = '^(?:forever|(?:[0-9]+(?:ms|s|m|h|d|w|y))+)$';
/** Tier names: lower-case letters, digits, `_` and `-`, starting with a letter. */
export const TIER_NAME_PATTERN = '^[a-z][a-z0-9_-]*$';
/** Match globs: lower-case letters, digits, `.`, `_`, `-` and `*` (any run of characters, dots included). */
export const GLOB_PATTERN = '^[a-z0-9_.*-]*$';
/** Role names: like tier names. */
export const ROLE_NAME_PATTERN = '^[a-z][a-z0-9_-]*$';
/**
 * Role members: `*` (every authenticated principal), or `user:`, `group:`, `key:`, `cert:`,
 * `service:` or `sub:` and a non-empty id without control characters (`sub:` members are
 * `sub:<issuer>#<sub>`, checked by the policy loader).
 */
export const MEMBER_PATTERN = '^(?:\\*|(?:user|group|key|cert|service|sub):[^\\u0000-\\u001f\\u007f]+)$';
/** What a role may grant, in the order `stele policy check` shows them. */
export const ROLE_ACTIONS = ['append', 'read', 'search', 'export', 'erase', 'hold', 'admin', 'metrics'] as const;
/** The JWS algorithms an issuer may use: asymmetric only (never `none`, never the HMAC HS*). */
export const JWS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
/** The algorithms of an issuer without `algorithms`. */
export const DEFAULT_JWS_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
/** A claim name: non-empty, no control characters. */
const CLAIM_PATTERN = '^[^\\u0000-\\u001f\\u007f]*$';

const glob = {
  type: 'string',
  minLength: 1,
  maxLength: 256,
  pattern: GLOB_PATTERN,
  description:
    'A glob matched against the whole value: `*` matches any run of characters, dots included (`k8s.*` ' +
    'matches k8s.pods.delete); every other character matches only itself (`.` is a literal dot). ' +
    'Lower-case letters, digits, `.`, `_`, `-` and `*`.',
} as const;

const globList = (description: string) =>
  ({ type: 'array', minItems: 1, maxItems: 1000, items: { $ref: '#/$defs/glob' }, description }) as const;

const tier = {
  type: 'object',
  description: 'A retention tier: how long its events are kept and whether they are encrypted, and which events belong to it.',
  additionalProperties: false,
  required: ['name', 'keep'],
  properties: {
    name: {
      type: 'string',
      maxLength: 64,
      pattern: TIER_NAME_PATTERN,
      description: 'Unique name of the tier (lower-case letters, digits, `_` and `-`, starting with a letter), e.g. operational.',
    },
    keep: {
      type: 'string',
      maxLength: 64,
      pattern: KEEP_PATTERN,
      examples: ['90d', '7y', 'forever'],
      description:
        'How long events of this tier are kept: a duration such as 90d, 36h or 7y (at least 1d), or `forever`. ' +
        'An expiring tier must be encrypted: events expire by destroying their data keys, which makes the ' +
        'sealed leaves unreadable while the log stays verifiable.',
    },
    encrypt: {
      type: 'boolean',
      default: true,
      description:
        'Whether events of this tier are sealed with data keys (the default). `false` stores them in the clear ' +
        'in the log, where they can never be forgotten, so only a tier kept `forever` may turn encryption off.',
    },
    match: {
      type: 'object',
      description:
        'Which events belong to the tier. An event goes to the first tier, in file order, whose match fits it ' +
        '(one of `actions` and, when given, one of `sources`); events no tier matches go to the default tier. ' +
        'A tier without `match` receives only the events of the default tier.',
      additionalProperties: false,
      required: ['actions'],
      properties: {
        actions: globList('Globs for the event `action`, e.g. `k8s.*` or `emacs.buffer.*`; `*` matches every action.'),
        sources: globList(
          'Globs for the event `source.kind`, e.g. `kubernetes`. When given, an event must match both `actions` ' +
            'and `sources`; when absent, any source matches.',
        ),
      },
    },
  },
} as const;

export const retentionSchema = {
  type: 'object',
  description: 'Retention tiers. When the section is absent, every event goes to one tier `default`, kept forever and encrypted.',
  additionalProperties: false,
  required: ['default', 'tiers'],
  properties: {
    schedule: {
      type: 'string',
      maxLength: 64,
      pattern: DURATION_PATTERN,
      default: '1h',
      description: 'How often the server runs the retention job that expires events: a duration of at least 1m (default 1h).',
    },
    default: {
      type: 'string',
      description: 'Name of the tier for events that no tier matches; one of the `tiers`.',
    },
    tiers: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: { $ref: '#/$defs/tier' },
      description: 'The tiers, in the order they are tried against an event.',
    },
  },
} as const;

const claim = (description: string) =>
  ({ type: 'string', minLength: 1, maxLength: 256, pattern: CLAIM_PATTERN, description }) as const;

const issuer = {
  type: 'object',
  description:
    'An OpenID Connect issuer whose ID or access tokens the server accepts. Tokens are verified against the ' +
    "issuer's JWKS (found through its discovery document, `<issuer>/.well-known/openid-configuration`, unless " +
    '`jwks_uri` is given). A token carrying the actor claim authenticates a user; one without it, a service.',
  additionalProperties: false,
  required: ['issuer', 'audience'],
  properties: {
    issuer: {
      type: 'string',
      minLength: 1,
      maxLength: 2048,
      examples: ['https://keycloak.example.com/realms/acme', 'https://login.microsoftonline.com/<tenant>/v2.0'],
      description:
        'The exact `iss` value of its tokens (compared as a string: a trailing slash matters). Must be https, ' +
        'except http://127.0.0.1, http://localhost and http://[::1] for local testing. Each issuer is listed once.',
    },
    audience: {
      type: ['string', 'array'],
      minLength: 1,
      maxLength: 2048,
      minItems: 1,
      maxItems: 100,
      items: { type: 'string', minLength: 1, maxLength: 2048 },
      description: 'The `aud` value(s) accepted, a string or a list: a token must carry at least one of them.',
    },
    actor_claim: claim(
      'The claim whose value identifies a person, becoming `actor.id` and `user:<id>` (default `email`; an ' +
        '`email` counts only with `email_verified: true`, see require_email_verified).',
    ),
    require_email_verified: {
      type: 'boolean',
      default: true,
      description:
        'When actor_claim is `email`, refuse tokens without `email_verified: true` (default true). false trusts ' +
        "addresses the IdP never verified: anyone who can put someone else's address in their own account gets " +
        "that person's user: roles. Prefer `sub:` members, or actor_claim naming an id the IdP assigns.",
    },
    require_at_jwt: {
      type: 'boolean',
      default: false,
      description:
        'Refuse every token whose header `typ` is not `at+jwt` (RFC 9068), for IdPs that always set it: then no ' +
        'ID token can pass for an access token. By default a token without `typ`, or with `JWT`, is accepted too.',
    },
    service_clients: {
      type: 'array',
      maxItems: 1000,
      uniqueItems: true,
      items: { type: 'string', minLength: 1, maxLength: 1024, pattern: CLAIM_PATTERN },
      description:
        'The client ids whose tokens without the actor claim are services (`service:<client id>`). Without it, ' +
        'such a token is a service only when its `sub` equals its client id (client credentials, RFC 9068). Any ' +
        "other token without the actor claim is refused: a user's token never becomes its client.",
    },
    groups_claim: claim("The claim holding the user's groups, a list of strings, matched by `group:<name>` (default `groups`)."),
    service_claim: claim(
      'The claim holding the client id that names a service, `service:<id>`, when a token has no actor claim ' +
        '(client credentials; default `client_id`, then `azp`).',
    ),
    algorithms: {
      type: 'array',
      minItems: 1,
      maxItems: 20,
      uniqueItems: true,
      items: { $ref: '#/$defs/algorithm' },
      description:
        'The JWS algorithms accepted (default RS256, PS256, ES256, EdDSA). `none` and the HMAC algorithms HS* are refused.',
    },
    clock_skew: {
      type: 'string',
      maxLength: 64,
      pattern: DURATION_PATTERN,
      default: '30s',
      description: 'Tolerated clock difference for the `exp`, `nbf` and `iat` claims: a duration of at most 5m (default 30s).',
    },
    require: {
      type: 'object',
      maxProperties: 100,
      propertyNames: { type: 'string', minLength: 1, maxLength: 256, pattern: CLAIM_PATTERN },
      additionalProperties: { type: 'string', maxLength: 2048 },
      examples: [{ tid: '9188040d-6c67-4c5b-b112-36a304b66dad' }],
      description: 'Claims a token must carry with exactly these string values, e.g. a tenant id `{ tid: "..." }`.',
    },
    jwks_uri: {
      type: 'string',
      minLength: 1,
      maxLength: 2048,
      description: "The issuer's JWKS URL, overriding its discovery document (https, like `issuer`).",
    },
    console: {
      type: 'object',
      additionalProperties: false,
      required: ['client_id'],
      description:
        'Sign-in to the console (served at /) with this issuer: the authorization code flow with PKCE, run by the ' +
        'browser as a public client. Register the client at the IdP with the redirect URI `https://<stele>/` and allow ' +
        'the console origin for CORS on the discovery document and the token endpoint.',
      properties: {
        client_id: {
          type: 'string',
          minLength: 1,
          maxLength: 1024,
          description: 'The public client registered for the console.',
        },
        label: { type: 'string', minLength: 1, maxLength: 100, description: "The sign-in button's text (default: the issuer)." },
        scopes: {
          type: 'array',
          maxItems: 50,
          uniqueItems: true,
          items: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' },
          default: ['openid', 'email', 'groups'],
          description: 'The scopes asked for (default openid, email, groups).',
        },
        params: {
          type: 'object',
          maxProperties: 20,
          propertyNames: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' },
          additionalProperties: { type: 'string', maxLength: 2048 },
          examples: [{ resource: 'https://stele.example.com' }, { audience: 'stele' }],
          description:
            'More parameters of the authorization and token requests, where the IdP needs them to issue an access ' +
            "token for Stele (`resource` (RFC 8707), Auth0's `audience`).",
        },
      },
    },
  },
} as const;

export const identitySchema = {
  type: 'object',
  description:
    'Who may authenticate besides API keys (`stele keys create`) and client certificates: the trusted OpenID ' +
    'Connect issuers. When the section is absent, no OIDC token is accepted.',
  additionalProperties: false,
  properties: {
    issuers: {
      type: 'array',
      maxItems: 100,
      items: { $ref: '#/$defs/issuer' },
      description: 'The trusted issuers, each with its own audience and claims.',
    },
  },
} as const;

const role = {
  type: 'object',
  description:
    'A role: who holds it and what it allows. Principals get roles from `members` and from their credential ' +
    '(an API key made with `stele keys create --role <name>`). Access is decided by Cedar: each role compiles ' +
    'to permit policies, and the optional stele.cedar beside this file may add permits and forbids.',
  additionalProperties: false,
  properties: {
    members: {
      type: 'array',
      maxItems: 10000,
      uniqueItems: true,
      items: { $ref: '#/$defs/member' },
      description:
        'Who holds the role: `user:<actor id>` (an OIDC user, e.g. user:alice@acme.com), `group:<name>` (a group in ' +
        "the issuer's groups claim), `key:<API key name>`, `cert:<client certificate CN>`, `service:<client id>`, " +
        '`sub:<issuer>#<sub>` (the OIDC principal with that `sub` from that configured issuer), or `*` for every ' +
        'authenticated principal.',
    },
    actions: {
      type: 'array',
      maxItems: 100,
      uniqueItems: true,
      items: { $ref: '#/$defs/action' },
      description:
        'What the role allows: append (write events), read (entries), search, export, erase (right to erasure), ' +
        'hold (legal holds), admin (keys, policy, retention runs).',
    },
    tiers: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      uniqueItems: true,
      items: { type: 'string', maxLength: 64, pattern: TIER_NAME_PATTERN },
      description:
        'Restricts read, search and export to entries of these retention tiers (which must exist); without it, ' +
        'entries of every tier.',
    },
    vouch: globList(
      'Action globs (like a tier match) of the events whose members may submit with an actor other than ' +
        'themselves, e.g. `k8s.*` for a Kubernetes audit webhook writing what cluster users did. Such events ' +
        'keep actor.verified false.',
    ),
  },
} as const;

export const rolesSchema = {
  type: 'object',
  description:
    'The roles, by name (lower-case letters, digits, `_` and `-`). When the section is absent there are two, ' +
    'without members: admin (every action) and writer (append), held by the API keys created with that role.',
  maxProperties: 1000,
  propertyNames: { type: 'string', maxLength: 64, pattern: ROLE_NAME_PATTERN },
  additionalProperties: { $ref: '#/$defs/role' },
} as const;

/** Alert and notifier names: like tier names. */
export const ALERT_NAME_PATTERN = '^[a-z][a-z0-9_-]*$';
/** What an alert may count per: a field of the entries it matches. */
export const ALERT_GROUPS = ['actor', 'principal', 'action', 'source', 'host', 'tier', 'subject', 'resource'] as const;
/** An environment variable's name. */
const ENV_NAME_PATTERN = '^[A-Z_][A-Z0-9_]*$';

const alertRule = {
  type: 'object',
  additionalProperties: false,
  required: ['query', 'notify'],
  properties: {
    query: {
      type: 'string',
      minLength: 1,
      maxLength: 4096,
      description: 'The entries it counts, in the query language of `stele search` (e.g. `action:stele.access.export`).',
    },
    window: { type: 'string', pattern: DURATION_PATTERN, description: 'The window it counts over (default 1h).' },
    threshold: {
      type: 'integer',
      minimum: 0,
      maximum: 1_000_000,
      description: 'It fires when more than this many entries match within the window (default 0: any match).',
    },
    group_by: {
      enum: ALERT_GROUPS,
      description: 'Count per value of this field (e.g. actor: more than N by one person); absent: all together.',
    },
    except: {
      type: 'array',
      maxItems: 1000,
      items: { $ref: '#/$defs/member' },
      description:
        'Entries written by these principals never count (role member syntax: `group:sre`, `user:alice@acme.com`, `key:ci`): ' +
        'e.g. a read of a tier by anyone outside a group.',
    },
    notify: {
      type: 'array',
      minItems: 1,
      maxItems: 16,
      items: { type: 'string', pattern: ALERT_NAME_PATTERN },
      description: 'The notifiers (alerts.notifiers) each firing goes to.',
    },
  },
} as const;

const notifier = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', maxLength: 2048, pattern: '^https?://', description: 'The webhook URL (http or https).' },
    format: {
      enum: ['json', 'slack'],
      description: 'json (default): the firing as a JSON document; slack: a Slack-compatible {"text": ...} message.',
    },
    secret_env: {
      type: 'string',
      pattern: ENV_NAME_PATTERN,
      description:
        'The environment variable holding the HMAC-SHA256 key the body is signed with (X-Stele-Signature: sha256=<hex> ' +
        'over "<timestamp>.<body>", with X-Stele-Timestamp): the key itself never goes in the policy.',
    },
  },
} as const;

export const alertsSchema = {
  type: 'object',
  additionalProperties: false,
  description:
    'Alerts as code: each rule counts the entries its query matches as they are appended, and notifies webhooks when ' +
    'more than `threshold` match within `window`; each firing is also recorded in the log as a stele.alert event.',
  properties: {
    notifiers: {
      type: 'object',
      maxProperties: 100,
      propertyNames: { type: 'string', maxLength: 64, pattern: ALERT_NAME_PATTERN },
      additionalProperties: notifier,
      description: 'Where firings go, by name.',
    },
    rules: {
      type: 'object',
      maxProperties: 1000,
      propertyNames: { type: 'string', maxLength: 64, pattern: ALERT_NAME_PATTERN },
      additionalProperties: alertRule,
      description: 'The alert rules, by name.',
    },
  },
} as const;

export const policySchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://stele.dev/schema/policy.json',
  title: 'Stele policy',
  description:
    'stele.policy.yaml: the policy of a Stele log as code, kept in version control and checked with ' +
    '`stele policy check`. The server records each policy it loads in the log with its SHA-256.',
  type: 'object',
  additionalProperties: false,
  required: ['version'],
  properties: {
    version: { const: 1, description: 'Format version of the policy file; 1.' },
    retention: retentionSchema,
    identity: identitySchema,
    roles: rolesSchema,
    alerts: alertsSchema,
  },
  $defs: {
    tier,
    glob,
    issuer,
    role,
    member: {
      type: 'string',
      maxLength: 1024,
      pattern: MEMBER_PATTERN,
      description:
        'A role member: `user:<id>`, `group:<name>`, `key:<API key name>`, `cert:<CN>`, `service:<client id>`, ' +
        '`sub:<issuer>#<sub>`, or `*` (every authenticated principal).',
    },
    action: {
      enum: ROLE_ACTIONS,
      description: 'An action a role may allow: append, read, search, export, erase, hold, admin or metrics (GET /metrics).',
    },
    algorithm: {
      enum: JWS_ALGORITHMS,
      description: 'An asymmetric JWS algorithm (RS*, PS*, ES*, EdDSA, Ed25519); never `none` or HS*.',
    },
  },
} as const;
