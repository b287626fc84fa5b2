/**
 * The JSON Schema (2020-12) of an event as clients send it. The server publishes it at
 * GET /v1/schema/event, and `validateEvent` compiles it once; so every rule a client must know
 * about lives here, with a description.
 *
 * Length limits are generous for real identifiers and keep single fields from eating the
 * 65,535-byte leaf; `data` is free-form and bounded only by the leaf size and nesting depth.
 */

/** Dotted lower-case name with at least two segments: `git.commit`, `k8s.configmaps.update`. */
export const ACTION_PATTERN = '^[a-z0-9][a-z0-9_-]*(\\.[a-z0-9][a-z0-9_-]*)+$';
/** Any UUID version, either case (stored lower case). No `urn:uuid:` prefix, no braces. */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
/**
 * RFC 3339 section 5.6 `date-time`, narrowed: upper-case `T` and `Z`, offset with a colon, at most 9
 * fractional digits. The `date-time` format then checks the calendar (month 13, Feb 30 ...).
 */
export const TIME_PATTERN = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$';
export const SHA256_PATTERN = '^[0-9a-f]{64}$';

const name = (description: string, maxLength: number) => ({ type: 'string', minLength: 1, maxLength, description }) as const;

export const eventSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://stele.dev/schema/event.json',
  title: 'Stele event',
  description:
    'One auditable action, as a client sends it to Stele. The server adds `id` and `time` when absent, ' +
    'sets `actor.verified`, and stores the result in a tamper-evident log.',
  type: 'object',
  additionalProperties: false,
  required: ['actor', 'action', 'source', 'outcome'],
  properties: {
    id: {
      type: 'string',
      format: 'uuid',
      pattern: UUID_PATTERN,
      description:
        'Client-chosen UUID (any version) used as the idempotency key: sending the same id again returns ' +
        'the original entry instead of appending twice. Stored lower case. When absent the server assigns a UUIDv7.',
    },
    time: {
      type: 'string',
      format: 'date-time',
      pattern: TIME_PATTERN,
      maxLength: 40,
      description:
        'When the action happened, as an RFC 3339 date-time with upper-case T and an offset (Z or +hh:mm), ' +
        'e.g. 2026-11-22T10:15:03.140211Z. Stored as sent. When absent, the server receipt time is used.',
    },
    actor: {
      type: 'object',
      description: 'Who did it.',
      additionalProperties: false,
      required: ['id', 'type'],
      properties: {
        id: name('Identifier of the actor: user name, e-mail, service account, agent name.', 256),
        type: {
          enum: ['human', 'service', 'ai_agent'],
          description: 'What kind of actor: a person, a machine identity, or an AI agent.',
        },
        on_behalf_of: name(
          'The principal the actor acted for. Required when `type` is `ai_agent`: every agent action is ' +
            'attributed to a person or service.',
          256,
        ),
        verified: {
          const: false,
          description:
            'Set by the server: true only when the server itself authenticated the actor. A client may ' +
            'omit it or send false; true is refused.',
        },
      },
      // `required` in the `if`: without it an actor with no type would match and get the wrong error.
      if: { required: ['type'], properties: { type: { const: 'ai_agent' } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, not a thenable
      then: { required: ['on_behalf_of'] },
    },
    action: {
      type: 'string',
      minLength: 3,
      maxLength: 128,
      pattern: ACTION_PATTERN,
      description:
        'What was done: a dotted lower-case name of at least two segments (letters, digits, _ and - ' +
        'within a segment), e.g. emacs.package.install, git.commit, k8s.configmaps.update.',
    },
    source: {
      type: 'object',
      description: 'Where the event comes from.',
      additionalProperties: false,
      required: ['kind'],
      properties: {
        kind: name('Kind of source, e.g. emacs, git, kubernetes, cloudtrail, http.', 64),
        host: name('Host name the event was produced on.', 255),
        agent: name('The client program that sent the event, e.g. stele.el.', 256),
        version: name('Version of that client program.', 64),
      },
    },
    resource: {
      type: 'object',
      description: 'What the action was done to.',
      additionalProperties: false,
      required: ['type', 'id'],
      properties: {
        type: name('Kind of resource, e.g. package, repository, configmap.', 128),
        id: name('Identifier of the resource within its type (a name, path, ARN, URL).', 2048),
      },
    },
    outcome: {
      enum: ['success', 'failure', 'denied'],
      description: 'Whether the action succeeded, failed, or was refused by an authorisation check.',
    },
    reason: name('Why the action was done, or why it failed or was denied.', 4096),
    approval: {
      type: 'object',
      description: 'Who approved the action, when it needed approval.',
      additionalProperties: false,
      required: ['by'],
      properties: {
        by: name('Identifier of the approver.', 256),
        ticket: name('Change ticket or review reference, e.g. CHG-1234 or a pull request URL.', 256),
      },
    },
    subject: name('The data subject (person) the event is about, so that right-to-erasure can find and forget it.', 256),
    data: {
      type: 'object',
      description:
        'Free-form JSON details of the action. Any keys; nesting is limited to 32 levels in the whole ' +
        'event and the stored entry to 65,535 bytes.',
    },
    attachments: {
      type: 'array',
      maxItems: 256,
      description: 'Large payloads stored beside the log, referenced by their SHA-256.',
      items: {
        type: 'object',
        description: 'One attachment: its SHA-256, and optionally its name, size and media type.',
        additionalProperties: false,
        required: ['sha256'],
        properties: {
          sha256: {
            type: 'string',
            pattern: SHA256_PATTERN,
            description: 'SHA-256 of the attachment content: 64 lower-case hex digits.',
          },
          name: name('File name of the attachment.', 1024),
          size: {
            type: 'integer',
            minimum: 0,
            maximum: Number.MAX_SAFE_INTEGER,
            description: 'Size of the attachment in bytes.',
          },
          media_type: name('Media type of the attachment, e.g. application/json.', 255),
        },
      },
    },
  },
} as const;
