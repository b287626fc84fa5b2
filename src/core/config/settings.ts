/**
 * Every setting of Stele in one table: its command-line flag, its environment variable, its
 * default, how its text is parsed and a one-line description. The CLI's help (src/cli/main.ts),
 * `stele serve` and the other commands (through resolve.ts), the server's and the log's built-in
 * defaults, and the table in docs/configuration.md (checked by settings.test.ts) all read it, so a
 * default is written once, here.
 *
 * Plain data and no imports: `stele --help` loads this module and nothing else of config/.
 */

/** How a setting's text becomes its value (parse.ts has one parser per kind). */
export type Kind =
  /** A whole number at least `min` (default 0). */
  | 'integer'
  /** A duration such as 60s, 500ms or 2m; more than 0. Its value is milliseconds. */
  | 'duration'
  /** host:port (an IPv6 host in brackets); port 0 lets the kernel choose. */
  | 'listen'
  /** One of the server log's levels. */
  | 'logLevel'
  /** IP addresses or CIDRs (or loopback, linklocal, uniquelocal), comma-separated. */
  | 'proxies'
  /** An http or https URL. */
  | 'url'
  /** s3://bucket or s3://bucket/prefix. */
  | 's3'
  /** on or off. */
  | 'switch'
  /** Witnesses, comma-separated, each <verifier key>@<http(s) URL>. */
  | 'witnesses'
  /** http or https URLs, comma-separated. */
  | 'urls'
  /** A postgres:// or postgresql:// connection URL (never echoed in errors: it may hold a password). */
  | 'postgres'
  /** A lower-case SQL name: a-z, 0-9 and _, not first a digit, at most 63. */
  | 'identifier'
  /** Any text but empty (a file, an origin, a key). */
  | 'text';

export interface Setting {
  /** The long flag, e.g. `--listen`; none for a setting only the environment gives. */
  readonly flag?: string;
  /** What the flag's value is called in the help, e.g. `<host:port>`. */
  readonly arg?: string;
  /** The environment variable that gives it when the flag does not. An empty variable counts as unset. */
  readonly env?: string;
  readonly kind: Kind;
  /** Least value of an integer setting. */
  readonly min?: number;
  /** The default as one would type it (it goes through the same parser); none when computed or absent. */
  readonly default?: string;
  /** The default as the help and the docs say it, when `default` is absent or not the clearest way to put it. */
  readonly shown?: string;
  /** What it is, one line (the flag's help text). */
  readonly doc: string;
}

/** The address `stele serve` listens on, and so the URL the client commands call, by default. */
const LISTEN = '127.0.0.1:7433';

/** The table. A setting's name is the key commander gives its flag's value (`--max-body-memory` → maxBodyMemory). */
export const SETTINGS = {
  dir: {
    flag: '--dir',
    arg: '<dir>',
    env: 'STELE_DIR',
    kind: 'text',
    default: 'stele-data',
    shown: './stele-data',
    doc: 'data directory',
  },
  listen: { flag: '--listen', arg: '<host:port>', kind: 'listen', default: LISTEN, doc: 'address to listen on' },
  origin: {
    flag: '--origin',
    arg: '<origin>',
    kind: 'text',
    shown: '<hostname>/stele',
    doc: "origin of a new data directory (the checkpoints' first line)",
  },
  checkpointInterval: {
    flag: '--checkpoint-interval',
    arg: '<ms>',
    kind: 'integer',
    min: 1,
    default: '100',
    shown: '100 ms',
    doc: 'least time between checkpoints, in milliseconds',
  },
  bodyLimit: {
    flag: '--body-limit',
    arg: '<bytes>',
    kind: 'integer',
    min: 1,
    default: String(16 * 1024 * 1024),
    shown: '16 MiB',
    doc: 'largest request body',
  },
  ingestWorkers: {
    flag: '--ingest-workers',
    arg: '<n>',
    kind: 'integer',
    min: 0,
    shown: 'one per core',
    doc: 'threads that parse and encode events (0: on the main thread)',
  },
  logLevel: { flag: '--log-level', arg: '<level>', kind: 'logLevel', default: 'info', doc: 'server log level' },
  policy: {
    flag: '--policy',
    arg: '<file>',
    env: 'STELE_POLICY',
    kind: 'text',
    shown: "the data directory's stele.policy.yaml, else the built-in policy: one tier, kept forever, encrypted",
    doc: 'policy file',
  },
  tlsCert: {
    flag: '--tls-cert',
    arg: '<file>',
    kind: 'text',
    shown: 'plain HTTP',
    doc: 'serve HTTPS with this PEM certificate chain (with --tls-key)',
  },
  tlsKey: { flag: '--tls-key', arg: '<file>', kind: 'text', doc: 'the PEM private key of --tls-cert' },
  tlsClientCa: {
    flag: '--tls-client-ca',
    arg: '<file>',
    kind: 'text',
    shown: 'no client certificates',
    doc: 'accept client certificates signed by this PEM CA (mutual TLS; principal = cert:<CN>)',
  },
  rateLimit: {
    flag: '--rate-limit',
    arg: '<n>',
    kind: 'integer',
    min: 1,
    default: '6000',
    doc: 'reads and other non-append requests per minute per principal; appends are never counted (the write path answers 503 + Retry-After when full)',
  },
  anonymousLimit: {
    flag: '--anonymous-limit',
    arg: '<n>',
    kind: 'integer',
    min: 1,
    default: '1200',
    doc: 'requests per minute per address without credentials (/log/, /v1/proofs/ and /healthz apart)',
  },
  denialLimit: {
    flag: '--denial-limit',
    arg: '<n>',
    kind: 'integer',
    min: 1,
    default: '60',
    doc: 'refusals of one credential from one address per minute before it gets 429 unchecked',
  },
  trustProxy: {
    flag: '--trust-proxy',
    arg: '<addresses>',
    kind: 'proxies',
    shown: "none: the client address is the peer's",
    doc: 'reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the client',
  },
  // A 16 MiB body at 4 Mbit/s takes ~35 s: a minute receives any honest request. Headers are small.
  requestTimeout: {
    flag: '--request-timeout',
    arg: '<duration>',
    kind: 'duration',
    default: '60s',
    doc: 'most time to receive a whole request (headers and body), else 408',
  },
  headersTimeout: {
    flag: '--headers-timeout',
    arg: '<duration>',
    kind: 'duration',
    default: '10s',
    doc: "most time to receive a request's headers (and a TLS handshake)",
  },
  idleTimeout: {
    flag: '--idle-timeout',
    arg: '<duration>',
    kind: 'duration',
    default: '2m',
    doc: 'most time a connection may sit idle during a request or response',
  },
  // Above the 60 s idle timeout of common load balancers, so they close first (no reset on reuse).
  keepAliveTimeout: {
    flag: '--keep-alive-timeout',
    arg: '<duration>',
    kind: 'duration',
    default: '72s',
    doc: 'how long an idle keep-alive connection waits for its next request',
  },
  maxConnections: {
    flag: '--max-connections',
    arg: '<n>',
    kind: 'integer',
    min: 1,
    default: '4096',
    doc: 'most open connections; more are closed as they arrive',
  },
  maxBodyMemory: {
    flag: '--max-body-memory',
    arg: '<bytes>',
    kind: 'integer',
    min: 1,
    default: String(256 * 1024 * 1024),
    shown: '256 MiB',
    doc: 'most bytes of request bodies held at once; more get 503 + Retry-After unread',
  },
  maxQueuedEvents: {
    flag: '--max-queued-events',
    arg: '<n>',
    kind: 'integer',
    min: 1,
    default: '100000',
    doc: 'events waiting to be written before appends are answered 503 + Retry-After',
  },
  queryPartition: {
    flag: '--query-partition',
    arg: '<entries>',
    kind: 'integer',
    min: 1,
    default: String(2 ** 20),
    doc: 'entries per query-store file; a change rebuilds the search index from the log',
  },
  validateInterval: {
    flag: '--validate-interval',
    arg: '<duration>',
    kind: 'duration',
    default: '1m',
    doc: 'how often the server validates itself (the log since the last run, retention applied, index): a stele.validation.run event each time',
  },
  validateFullEvery: {
    flag: '--validate-full-every',
    arg: '<duration>',
    kind: 'duration',
    default: '24h',
    doc: 'how often that validation verifies the whole log again',
  },
  mirror: {
    flag: '--mirror',
    arg: '<s3://bucket/prefix>',
    env: 'STELE_MIRROR',
    kind: 's3',
    shown: 'no mirror',
    doc: "copy the log's tiles, entry bundles and checkpoints to this S3 bucket (Object Lock required), under <prefix>/log/",
  },
  s3Retain: {
    flag: '--s3-retain',
    arg: '<duration>',
    kind: 'duration',
    shown: "the policy's longest keep (100y for forever)",
    doc: 'COMPLIANCE retention of each full tile and entry bundle written to S3 (--mirror, --tiles; it cannot be shortened)',
  },
  s3LegalHold: {
    flag: '--s3-legal-hold',
    arg: '<on|off>',
    kind: 'switch',
    default: 'off',
    doc: 'also put an S3 legal hold on each full tile and entry bundle written to S3 (--mirror, --tiles)',
  },
  mirrorInterval: {
    flag: '--mirror-interval',
    arg: '<duration>',
    kind: 'duration',
    default: '1s',
    doc: "how often the mirror copies the log's new checkpoint (and retries after a failure, backing off to 1m)",
  },
  s3Endpoint: {
    flag: '--s3-endpoint',
    arg: '<url>',
    env: 'STELE_S3_ENDPOINT',
    kind: 'url',
    shown: "AWS S3; credentials from the AWS SDK's usual places ($AWS_ACCESS_KEY_ID, ~/.aws, ...)",
    doc: 'S3 endpoint of an S3-compatible store (path-style requests), e.g. Ceph RGW or MinIO',
  },
  s3Region: {
    flag: '--s3-region',
    arg: '<region>',
    env: 'AWS_REGION',
    kind: 'text',
    default: 'us-east-1',
    doc: "the S3 bucket's region",
  },
  postgres: {
    flag: '--postgres',
    arg: '<url>',
    env: 'STELE_POSTGRES_URL',
    kind: 'postgres',
    shown: 'the embedded storage of the data directory',
    doc: "keep the log and every store in this PostgreSQL database, shared by every node started with it (the data directory then holds only the configuration and keys; prefer the variable: a flag's password shows in the process list)",
  },
  witness: {
    flag: '--witness',
    arg: '<vkey@url,...>',
    env: 'STELE_WITNESSES',
    kind: 'witnesses',
    shown: 'none',
    doc: 'witnesses (c2sp.org/tlog-witness) to submit each new checkpoint to, each <its cosignature verifier key>@<its URL>, comma-separated; the server then serves the newest checkpoint a quorum cosigned',
  },
  witnessQuorum: {
    flag: '--witness-quorum',
    arg: '<k>',
    kind: 'integer',
    min: 1,
    shown: 'every witness given',
    doc: 'cosignatures a checkpoint needs before the server serves it',
  },
  tsa: {
    flag: '--tsa',
    arg: '<url,...>',
    env: 'STELE_TSA',
    kind: 'urls',
    shown: 'none',
    doc: 'RFC 3161 time-stamping authorities to timestamp the checkpoint with (every --tsa-interval, and on POST /v1/timestamps); each token is a stele.timestamp event, and evidence bundles carry them',
  },
  tsaInterval: {
    flag: '--tsa-interval',
    arg: '<duration>',
    kind: 'duration',
    default: '1h',
    doc: 'how often the checkpoint is timestamped (when it changed since the last time)',
  },
  tiles: {
    flag: '--tiles',
    arg: '<s3://bucket/prefix>',
    env: 'STELE_TILES',
    kind: 's3',
    shown: 'in the PostgreSQL database',
    doc: "with --postgres: write the log's tiles and entry bundles to this S3 bucket (Object Lock required), under <prefix>/log/, a static tlog-tiles endpoint; the checkpoint's compare-and-swap stays in PostgreSQL",
  },
  postgresSchema: {
    flag: '--postgres-schema',
    arg: '<name>',
    env: 'STELE_POSTGRES_SCHEMA',
    kind: 'identifier',
    shown: "the connection's search_path (public)",
    doc: "the PostgreSQL schema of this log's tables (created if need be), so one database can hold several logs",
  },
  url: {
    flag: '--url',
    arg: '<url>',
    env: 'STELE_URL',
    kind: 'url',
    default: `http://${LISTEN}`,
    doc: 'server URL',
  },
  token: {
    flag: '--token',
    arg: '<token>',
    env: 'STELE_TOKEN',
    kind: 'text',
    doc: 'the API key itself (the flag is visible to other local users in the process list: prefer --token-file)',
  },
  tokenFile: {
    flag: '--token-file',
    arg: '<file>',
    env: 'STELE_TOKEN_FILE',
    kind: 'text',
    shown: "the data directory's admin.token",
    doc: 'file holding the API key, or - to read it from standard input',
  },
  masterKey: {
    env: 'STELE_MASTER_KEY',
    kind: 'text',
    shown: '<dir>/keys/master.key',
    doc: 'the master key that wraps the data keys (base64 of 32 bytes), kept out of the data directory',
  },
  newMasterKey: {
    env: 'STELE_NEW_MASTER_KEY',
    kind: 'text',
    doc: 'the master key `stele master-key rotate` moves to when $STELE_MASTER_KEY holds the current one',
  },
  stateHome: {
    env: 'XDG_STATE_HOME',
    kind: 'text',
    shown: '~/.local/state',
    doc: 'where `stele import` keeps its journals (under stele/)',
  },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

/**
 * The server's inner limits, which no flag sets: written here, beside the settings, so that every
 * default of a running server is in this one file. The modules that use them say what they bound.
 */
export const LIMITS = {
  /**
   * Entries the query store may be behind the log before client appends are refused with 503 and
   * Retry-After (nothing appended): minutes of peak ingest. Below it appends never wait for the
   * index; searches answer at once and say how far it has got (indexed_through).
   */
  indexBacklog: 10_000_000,
  /**
   * Longest retention runs and erasures wait for the query store to have every entry (they read
   * legal holds' keys and count events there) before 503 index_behind.
   */
  indexCatchUpWaitMs: 60_000,
  /**
   * Longest a search with `after` waits for the index to reach that entry before it is answered
   * 503 with Retry-After (read your writes, bounded).
   */
  searchAfterWaitMs: 5_000,
  /** Request bytes handed to ingest workers and not yet prepared, past which a body gets 503. */
  ingestPendingBytes: 256 * 1024 * 1024,
  /** Time between two syncs of the tiles (after which the write-ahead log can shrink), ms. */
  tileSyncIntervalMs: 5_000,
  /** How long in-flight requests may take to finish after SIGTERM/SIGINT before connections are cut, ms. */
  shutdownGraceMs: 5_000,
} as const;

/** The environment variables Stele reads: those of the table. */
export type EnvName = { [K in SettingName]: (typeof SETTINGS)[K] extends { env: infer E } ? E : never }[SettingName];

/** A setting's default as the help and the docs say it (undefined when it has none). */
export function shownDefault(s: Setting): string | undefined {
  return s.shown ?? s.default;
}

/**
 * The help text of a setting's flag: its description (or `doc`), then where its value comes from
 * when the flag is not given, e.g. `data directory (default: $STELE_DIR or ./stele-data)`.
 */
export function helpText(name: SettingName, doc?: string): string {
  const s: Setting = SETTINGS[name];
  const fallback = [s.env ? `$${s.env}` : undefined, shownDefault(s)].filter((x) => x !== undefined);
  return `${doc ?? s.doc}${fallback.length ? ` (default: ${fallback.join(' or ')})` : ''}`;
}

/** The settings that have a flag. */
export type FlagName = { [K in SettingName]: (typeof SETTINGS)[K] extends { flag: string } ? K : never }[SettingName];

/** The options of `stele serve`, in the order its help lists them. */
export const SERVE_SETTINGS = [
  'dir',
  'listen',
  'origin',
  'checkpointInterval',
  'bodyLimit',
  'ingestWorkers',
  'logLevel',
  'policy',
  'tlsCert',
  'tlsKey',
  'tlsClientCa',
  'rateLimit',
  'anonymousLimit',
  'denialLimit',
  'requestTimeout',
  'headersTimeout',
  'idleTimeout',
  'keepAliveTimeout',
  'maxConnections',
  'maxBodyMemory',
  'maxQueuedEvents',
  'queryPartition',
  'validateInterval',
  'validateFullEvery',
  'mirror',
  's3Retain',
  's3LegalHold',
  'mirrorInterval',
  's3Endpoint',
  's3Region',
  'postgres',
  'postgresSchema',
  'tiles',
  'witness',
  'witnessQuorum',
  'tsa',
  'tsaInterval',
  'trustProxy',
] as const satisfies readonly FlagName[];

/**
 * The table as Markdown, one row a setting: flag and variable, default, description. It stands in
 * docs/configuration.md between `<!-- settings:begin -->` and `<!-- settings:end -->`
 * (settings.test.ts fails, printing this, when the two differ).
 */
export function settingsMarkdown(): string {
  const md = (text: string) => text.replace(/[<>|]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '|': '\\|' })[c] as string);
  const rows = Object.values(SETTINGS).map((s: Setting) => {
    const names = [s.flag, s.env && `$${s.env}`].filter((x) => x).map((x) => `\`${x}\``);
    const shown = shownDefault(s);
    return `| ${names.join(' / ')} | ${shown === undefined ? '' : md(shown)} | ${md(s.doc)} |`;
  });
  return ['| setting | default | what it is |', '| --- | --- | --- |', ...rows].join('\n');
}
