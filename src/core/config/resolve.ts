/**
 * Settings resolved: the command line's flag, else the environment variable, else the table's
 * default (settings.ts), each parsed by its kind (parse.ts) with an error naming where the bad
 * text came from. `resolveServe` turns every option of `stele serve` into one typed, plain object
 * before anything is created, so a bad value leaves no data directory behind, and the object can
 * be handed as it is to worker threads.
 */
import { availableParallelism } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { SteleError } from '../errors.js';
import { type Env, envValue, processEnv } from './env.js';
import { type Listen, PARSERS, type Parsed, type S3Location, type WitnessSetting } from './parse.js';
import { type EnvName, SETTINGS, type Setting, type SettingName } from './settings.js';

/** Flag values by setting name, as commander gives them (text; absent when the flag is not given). */
export type Flags = { readonly [N in SettingName]?: string | undefined };

/** The type a setting's value parses to. */
export type ValueOf<N extends SettingName> = Parsed[(typeof SETTINGS)[N]['kind']];

/** The settings that have a default. */
export type Defaulted = { [N in SettingName]: (typeof SETTINGS)[N] extends { default: string } ? N : never }[SettingName];

function parse<N extends SettingName>(name: N, text: string, where: string): ValueOf<N> {
  const s: Setting = SETTINGS[name];
  return PARSERS[s.kind](text, where, s.min) as ValueOf<N>;
}

/** A setting from `flags`, else `env`, else its default; undefined when none gives it. */
export function setting<N extends Defaulted>(name: N, flags: Flags, env: Env): ValueOf<N>;
export function setting<N extends SettingName>(name: N, flags: Flags, env: Env): ValueOf<N> | undefined;
export function setting<N extends SettingName>(name: N, flags: Flags, env: Env): ValueOf<N> | undefined {
  const s: Setting = SETTINGS[name];
  const flag = flags[name];
  if (flag !== undefined) return parse(name, flag, s.flag ?? name);
  const fromEnv = s.env === undefined ? undefined : envValue(env, s.env as EnvName);
  if (fromEnv !== undefined) return parse(name, fromEnv, `$${s.env}`);
  return s.default === undefined ? undefined : parse(name, s.default, `the default of ${name}`);
}

/** A setting's default value (parsed), for code that runs without a command line (tests, the library). */
export function defaultOf<N extends Defaulted>(name: N): ValueOf<N> {
  return setting(name, {}, {});
}

/** The data directory: --dir, else $STELE_DIR, else ./stele-data; absolute. */
export const dataDir = (flag: string | undefined, env: Env = processEnv()): string =>
  resolvePath(setting('dir', { dir: flag }, env));

/**
 * One ingest worker per core. Preparing events (parse, validate, canonical JSON, sealing) is most
 * of ingest's CPU, while the main thread (HTTP, sequencing, the write-ahead log) needs a fraction of
 * a core: with cores - 1 workers a 2-core machine ran one worker flat out with CPU to spare.
 */
export const defaultIngestWorkers = () => Math.max(1, availableParallelism());

/** What the HTTP server takes (ServerOptions in src/server/app.ts, but logger and TLS). */
export interface HttpSettings {
  bodyLimit: number;
  rateLimit: number;
  anonymousLimit: number;
  denialLimit: number;
  requestTimeout: number;
  headersTimeout: number;
  idleTimeout: number;
  keepAliveTimeout: number;
  maxConnections: number;
  maxBodyMemory: number;
  trustProxy?: string;
}

/** Everything `stele serve` is told, checked. Plain data. */
export interface ServeSettings {
  dir: string;
  listen: Listen;
  /** For a new data directory only. */
  origin?: string;
  /** The policy file (--policy or $STELE_POLICY); else the data directory's, else built in. */
  policy?: string;
  /** PEM files: certificate chain, key and (mutual TLS) client CA. */
  tls?: { cert: string; key: string; clientCa?: string };
  checkpointIntervalMs: number;
  ingestWorkers: number;
  maxQueuedEvents: number;
  queryPartition: number;
  logLevel: string;
  http: HttpSettings;
  /** --mirror and its options; absent without --mirror. */
  mirror?: MirrorSettings;
  /** --postgres and its schema; absent: the embedded storage. */
  postgres?: PostgresSettings;
  /** --witness and the cosignatures a served checkpoint needs (--witness-quorum, default: all). */
  witnesses?: { list: WitnessSetting[]; quorum: number };
  /** --tsa: the time-stamping authorities, and how often (--tsa-interval). */
  tsa?: { urls: string[]; intervalMs: number };
  validateIntervalMs: number;
  validateFullEveryMs: number;
}

/** The PostgreSQL database (and schema) several nodes share (src/storage/pg). */
export interface PostgresSettings {
  url: string;
  schema?: string;
  /** --tiles: the log's tiles in this bucket (with the S3 options); absent: in the database. */
  tiles?: S3Settings;
}

/** An S3 bucket Stele writes with Object Lock, and the options every such bucket shares. */
export interface S3Settings {
  location: S3Location;
  /** COMPLIANCE retention; absent: from the policy. */
  retainMs?: number;
  legalHold: boolean;
  /** An S3-compatible endpoint; absent: AWS. */
  endpoint?: string;
  region: string;
}

/** --postgres and --postgres-schema, or undefined without --postgres (a schema alone is refused as a likely mistake). */
export function resolvePostgres(flags: Flags, env: Env): PostgresSettings | undefined {
  const url = setting('postgres', flags, env);
  const schema = setting('postgresSchema', flags, env);
  const tiles = setting('tiles', flags, env);
  if (url === undefined) {
    const stray = (['postgresSchema', 'tiles'] as const).find((n) => flags[n] !== undefined);
    if (stray) throw new SteleError('bad_option', `${SETTINGS[stray].flag} needs --postgres`);
    return undefined;
  }
  return {
    url,
    ...(schema === undefined ? {} : { schema }),
    ...(tiles === undefined ? {} : { tiles: s3Settings(tiles, flags, env) }),
  };
}

/** The S3 options (--s3-*) of a bucket at `location`. */
function s3Settings(location: S3Location, flags: Flags, env: Env): S3Settings {
  const retainMs = setting('s3Retain', flags, env);
  const endpoint = setting('s3Endpoint', flags, env);
  return {
    location,
    ...(retainMs === undefined ? {} : { retainMs }),
    legalHold: setting('s3LegalHold', flags, env),
    region: setting('s3Region', flags, env),
    ...(endpoint === undefined ? {} : { endpoint }),
  };
}

/** Where and how `stele serve` mirrors the log to S3 (src/storage/s3/mirror.ts). */
export interface MirrorSettings extends S3Settings {
  intervalMs: number;
}

/** The mirror's settings, or undefined without --mirror (its other options alone are refused as a likely mistake). */
export function resolveMirror(flags: Flags, env: Env): MirrorSettings | undefined {
  const location = setting('mirror', flags, env);
  if (location === undefined) {
    if (flags.mirrorInterval !== undefined) throw new SteleError('bad_option', '--mirror-interval needs --mirror');
    const stray = (['s3Retain', 's3LegalHold', 's3Endpoint', 's3Region'] as const).find((n) => flags[n] !== undefined);
    if (stray && setting('tiles', flags, env) === undefined)
      throw new SteleError('bad_option', `${SETTINGS[stray].flag} needs --mirror or --tiles`);
    return undefined;
  }
  return { ...s3Settings(location, flags, env), intervalMs: setting('mirrorInterval', flags, env) };
}

/** The settings of `stele serve` from its flags and the environment; throws on the first bad one. */
export function resolveServe(flags: Flags, env: Env): ServeSettings {
  const get = <N extends SettingName>(name: N) => setting(name, flags, env);
  const need = <N extends Defaulted>(name: N) => setting(name, flags, env);
  const [cert, key, clientCa] = [get('tlsCert'), get('tlsKey'), get('tlsClientCa')];
  if ((cert === undefined) !== (key === undefined)) throw new SteleError('bad_tls', '--tls-cert and --tls-key go together');
  if (clientCa !== undefined && cert === undefined)
    throw new SteleError('bad_tls', '--tls-client-ca needs --tls-cert and --tls-key');
  const trustProxy = get('trustProxy');
  const origin = get('origin');
  const policy = get('policy');
  const mirror = resolveMirror(flags, env);
  const postgres = resolvePostgres(flags, env);
  const witnessList = get('witness');
  const tsaUrls = get('tsa');
  const quorum = get('witnessQuorum');
  if (witnessList === undefined && quorum !== undefined) throw new SteleError('bad_option', '--witness-quorum needs --witness');
  if (witnessList && quorum !== undefined && quorum > witnessList.length)
    throw new SteleError('bad_option', `--witness-quorum ${quorum}: only ${witnessList.length} witness(es) given`);
  return {
    dir: dataDir(flags.dir, env),
    listen: need('listen'),
    ...(origin === undefined ? {} : { origin }),
    ...(policy === undefined ? {} : { policy }),
    ...(cert !== undefined && key !== undefined ? { tls: { cert, key, ...(clientCa === undefined ? {} : { clientCa }) } } : {}),
    checkpointIntervalMs: need('checkpointInterval'),
    ingestWorkers: get('ingestWorkers') ?? defaultIngestWorkers(),
    maxQueuedEvents: need('maxQueuedEvents'),
    queryPartition: need('queryPartition'),
    logLevel: need('logLevel'),
    ...(mirror ? { mirror } : {}),
    ...(postgres ? { postgres } : {}),
    ...(witnessList ? { witnesses: { list: witnessList, quorum: quorum ?? witnessList.length } } : {}),
    ...(tsaUrls ? { tsa: { urls: tsaUrls, intervalMs: need('tsaInterval') } } : {}),
    validateIntervalMs: need('validateInterval'),
    validateFullEveryMs: need('validateFullEvery'),
    http: {
      bodyLimit: need('bodyLimit'),
      rateLimit: need('rateLimit'),
      anonymousLimit: need('anonymousLimit'),
      denialLimit: need('denialLimit'),
      requestTimeout: need('requestTimeout'),
      headersTimeout: need('headersTimeout'),
      idleTimeout: need('idleTimeout'),
      keepAliveTimeout: need('keepAliveTimeout'),
      maxConnections: need('maxConnections'),
      maxBodyMemory: need('maxBodyMemory'),
      ...(trustProxy === undefined ? {} : { trustProxy }),
    },
  };
}
