/**
 * The JSON Schema (2020-12) of `stele.policy.yaml`, the policy file kept in version control. It is
 * published, so every rule a policy author must know about is stated here with a description.
 * `parsePolicy` validates against it and then checks what a schema cannot say (unique tier names,
 * `default` naming a tier, minimum durations, expiring tiers being encrypted).
 *
 * Each top-level section is its own constant; a new section (roles, access, alerts) is one more
 * entry in `policySchema.properties`.
 */

/** A duration such as 90d, 36h or 1h30m (units ms, s, m, h, d, w, y = 365d), as `src/duration.ts` reads it. */
export const DURATION_PATTERN = '^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$';
/** `forever`, or a duration. */
export const KEEP_PATTERN = '^(?:forever|(?:[0-9]+(?:ms|s|m|h|d|w|y))+)$';
/** Tier names: lower-case letters, digits, `_` and `-`, starting with a letter. */
export const TIER_NAME_PATTERN = '^[a-z][a-z0-9_-]*$';
/** Match globs: lower-case letters, digits, `.`, `_`, `-` and `*` (any run of characters, dots included). */
export const GLOB_PATTERN = '^[a-z0-9_.*-]*$';

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
  },
  $defs: {
    tier,
    glob,
  },
} as const;
