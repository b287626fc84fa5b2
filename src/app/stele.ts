import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Access } from '../auth/access.js';
import { ApiKeyStore } from '../auth/apikeys.js';
import { type Env, envValue, processEnv } from '../core/config/env.js';
import { LIMITS } from '../core/config/settings.js';
import { writeDurably } from '../core/durable.js';
import { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { IndexThread } from '../index/thread.js';
import { type AlertHit, type Appended, appendEvents, type Pace } from '../ingest/append.js';
import { IngestPool } from '../ingest/pool.js';
import type { KeyRecords } from '../keys/key-records.js';
import { KeyStore } from '../keys/keystore.js';
import { generateMasterKey, loadMasterKeys, type MasterKey, masterKeyPath } from '../keys/master.js';
import type { LogOptions, SteleLog } from '../log/log.js';
import { SharedLog } from '../log/shared-log.js';
import { DEFAULT_POLICY, loadPolicyFile, type Policy } from '../policy/policy.js';
import type { Backend } from '../storage/backend.js';
import { FsBackend } from '../storage/fs/backend.js';
import { queryProblem } from './alerts.js';
import { Audit } from './audit.js';
import { type DataDir, defaultPolicyPath, loadDataDir, readConfig } from './datadir.js';
import { type ForgetContext, HoldStore } from './forget.js';

export interface SteleOptions extends LogOptions {
  /** Policy file (default: $STELE_POLICY, else the data directory's stele.policy.yaml, else the built-in policy). */
  policyFile?: string;
  /** Where $STELE_POLICY and $STELE_MASTER_KEY come from (default: this process's environment). */
  env?: Env;
  /** Ingest worker threads (0: prepare events on the calling thread). */
  ingestWorkers?: number;
  /** Reports catching the query store up with the log on open: (indexed, total). */
  onIndexProgress?: (done: number, total: number) => void;
  /** Entries the query store may be behind before client appends get 503 (default LIMITS.indexBacklog). */
  indexBacklog?: number;
  /** Entries per query-store file in the data directory (openStele; default PARTITION_ENTRIES). */
  queryPartition?: number;
  /** A shared log's background failures (the database unreachable, a lost lease); default: stderr. */
  onLogError?: (err: Error) => void;
}

/**
 * An open Stele: the data directory, its log, key store, policy, ingest pool and query store, and
 * the write lock that keeps it single-writer. Every operation (routes, CLI) goes through these.
 */
export interface Stele extends DataDir {
  log: SteleLog;
  /**
   * Whether this process runs the log's periodic work (retention, self-validation): always on the
   * embedded drivers; on a shared log, the node holding the integrator lease.
   */
  readonly leading: boolean;
  apikeys: ApiKeyStore;
  keys: KeyStore;
  pool: IngestPool;
  index: IndexThread;
  policy: Policy;
  holds: HoldStore;
  /** What retention, erasure and holds work on (src/app/forget.ts); run them through `exclusive`. */
  forget: ForgetContext;
  /** Runs forgetting operations one at a time (a scheduled expiry never interleaves with an erasure). */
  exclusive<T>(op: () => Promise<T>): Promise<T>;
  /** Authentication and authorisation under the loaded policy. */
  access: Access;
  /** The log's record of its own use (stele.access.*, stele.key.*, stele.policy.* events). */
  audit: Audit;
  /**
   * Loads the policy again from where it came from (SIGHUP, `stele policy reload`) and records it;
   * a policy that does not validate or compile is refused, recorded as refused, and the old one stays.
   */
  reloadPolicy(by: Principal): Promise<PolicyLoad>;
  /** Appends a stele.policy.load event for the policy in force (the server does at start). */
  recordPolicy(by: Principal, reason: 'start' | 'reload'): Promise<PolicyLoad>;
  /** Appends already-parsed events (the CLI's --local mode, and the log's own stele.* events), unchecked by policy. */
  append(inputs: readonly unknown[], by: Principal): Promise<Appended[]>;
  /** Appends parsed events on behalf of an authenticated principal, as POST /v1/events does: checked by policy (source adapters). */
  appendAs(inputs: readonly unknown[], by: Principal): Promise<Appended[]>;
  /** What every append goes through before sequencing (backpressure) and after (observers): appendBody's `pace`. */
  pace: Pace;
  /**
   * While `o.active`, every entry is tested against the policy's alert rules as it is prepared,
   * and `o` is told of the matches once the entry is durable.
   */
  observe(o: AppendObserver): void;
  close(): Promise<void>;
}

/** Something told of every durable batch (src/app/alerts.ts). */
export interface AppendObserver {
  observe(hits: readonly AlertHit[], ruleSeconds: number): void;
  readonly active: boolean;
}

/** A policy load as recorded in the log. */
export interface PolicyLoad {
  index: number;
  source: string;
  sha256: string;
  cedar?: { source: string; sha256: string };
}

/** The policy `file` names (--policy or $STELE_POLICY), else the data directory's, else the built-in one. */
export function resolvePolicy(dir: string, file: string | undefined): Policy {
  // Alert queries are checked here, where the query language is known (the policy layer is below it).
  if (file) return loadPolicyFile(file, { queryProblem });
  const own = defaultPolicyPath(dir);
  return existsSync(own) ? loadPolicyFile(own, { queryProblem }) : DEFAULT_POLICY;
}

/**
 * The master keys of a data directory. One made before data keys existed (its key store has no
 * subject pepper yet) gets its master key here, on first open.
 */
async function mastersFor(dir: string, records: KeyRecords, env: Env): Promise<MasterKey[]> {
  if (!envValue(env, 'STELE_MASTER_KEY') && !existsSync(masterKeyPath(dir)) && !(await records.pepper())) {
    await writeDurably(masterKeyPath(dir), `${generateMasterKey()}\n`, 0o600);
  }
  return loadMasterKeys(dir, env);
}

/** Opens (and recovers) an initialised data directory, taking its write lock. */
export function openStele(dir: string, options: SteleOptions = {}): Promise<Stele> {
  const { queryPartition } = options;
  if (readConfig(resolve(dir)).storage === 'postgres')
    return Promise.reject(
      new SteleError(
        'bad_data_dir',
        `${dir} configures the nodes of a log kept in PostgreSQL: serve it with --postgres (an embedded log signed by the same key would be a second history)`,
      ),
    );
  return openSteleOn(new FsBackend(dir, queryPartition ? { queryPartition } : {}), dir, options);
}

/**
 * Opens a Stele whose stores are `backend`'s (the lock, the log, the id index, ...), configured by
 * the data directory `dir` (its origin, signing key and policy). openStele is this on the fs driver.
 */
export async function openSteleOn(backend: Backend, dir: string, options: SteleOptions = {}): Promise<Stele> {
  const dd = loadDataDir(dir);
  const unlock = backend.lock();
  const cleanup: (() => unknown)[] = [() => backend.close?.(), unlock];
  const undo = async () => {
    for (const c of cleanup.reverse()) await c();
  };
  try {
    const env = options.env ?? processEnv();
    const policyFile = options.policyFile ?? envValue(env, 'STELE_POLICY');
    const policy = resolvePolicy(dd.dir, policyFile);
    const records = backend.keys();
    const masters = await mastersFor(dd.dir, records, env).catch(async (err: unknown) => {
      await records.close();
      throw err;
    });
    const keys = await KeyStore.open(records, masters);
    cleanup.push(() => keys.close());
    const holds = new HoldStore(backend.holds(), keys.subjectPepper);
    cleanup.push(() => holds.close());
    const apikeys = await ApiKeyStore.open(backend.apiKeys());
    const pool = new IngestPool(options.ingestWorkers ?? 0, policy, keys);
    cleanup.push(() => pool.close());
    const index = await IndexThread.start(
      backend.spawn('index', { masters, policy, reader: backend.shared === true }),
      options.indexBacklog,
      backend.noteSpill() !== null,
      backend.shared === true,
    );
    cleanup.push(() => index.close());
    const observers: AppendObserver[] = [];
    // A shared log's index reads leaves from the shared write-ahead log, which keeps no notes.
    pool.notesWanted = () => !backend.shared && index.wantsNotes;
    pool.rulesWanted = () => observers.some((o) => o.active);
    const pace: Pace = {
      admit: () => index.admit(),
      appended(hits, ruleSeconds) {
        for (const o of observers) o.observe(hits, ruleSeconds);
      },
    };

    const { policyFile: _p, ingestWorkers: _w, env: _e, onIndexProgress, indexBacklog: _b, onLogError, ...logOptions } = options;
    let log: SteleLog | undefined;
    log = await backend.openLog({
      skey: dd.skey,
      verifier: dd.verifier,
      origin: dd.config.origin,
      options: logOptions,
      onSequenced: (first, leaves, notes) => index.add(first, leaves, log?.checkpoint.size ?? 0, notes),
      onLead: (leading) => index.setWriter(leading),
      onError: onLogError ?? ((err) => process.stderr.write(`stele: ${err.message}\n`)),
    });
    const opened = log;
    cleanup.push(() => opened.close());
    // A shared log feeds its lease holder's index from the shared write-ahead log itself.
    index.follow(
      () => ({ size: opened.size, published: opened.checkpoint.size }),
      backend.shared ? [] : await unpublished(opened),
    );
    if (onIndexProgress) await indexAll(opened.size, index, onIndexProgress);

    const append = (inputs: readonly unknown[], by: Principal) => appendEvents(opened, pace, pool, inputs, by);
    const access = new Access(apikeys, policy, keys.subjectPepper);
    const audit = new Audit(append, keys.subjectPepper);
    let queue: Promise<unknown> = Promise.resolve();

    const recordPolicy = async (by: Principal, reason: 'start' | 'reload'): Promise<PolicyLoad> => {
      const p = access.policy;
      const what = {
        source: p.source,
        sha256: p.sha256,
        ...(p.cedar ? { cedar: { source: p.cedar.source, sha256: p.cedar.sha256 } } : {}),
      };
      const idx = await audit.record('stele.policy.load', by, { ...what, reason });
      return { index: idx, ...what };
    };

    const stele: Stele = {
      ...dd,
      log: opened,
      get leading() {
        return !(opened instanceof SharedLog) || opened.leader;
      },
      apikeys,
      keys,
      pool,
      index,
      get policy() {
        return access.policy;
      },
      holds,
      access,
      audit,
      forget: {
        keys,
        holds,
        index,
        caughtUp: () => index.whenIndexed(opened.size, LIMITS.indexCatchUpWaitMs),
        policy: () => access.policy,
        append,
      },
      recordPolicy,
      async reloadPolicy(by: Principal): Promise<PolicyLoad> {
        let next: Policy;
        try {
          next = resolvePolicy(dd.dir, policyFile);
          access.setPolicy(next);
        } catch (err) {
          const e = err instanceof SteleError ? err : new SteleError('bad_policy', (err as Error).message, { cause: err });
          await audit.record('stele.policy.refused', by, { message: e.message, ...(e.detail ?? {}) }, { reason: e.message });
          // The reload request was fine; the file was not: never a 5xx.
          throw new SteleError(
            e.status < 500 ? e.code : 'bad_policy',
            `policy refused, the old one stays in force: ${e.message}`,
            {
              ...(e.detail ? { detail: e.detail } : {}),
              cause: err,
            },
          );
        }
        pool.setPolicy(next);
        index.setPolicy(next);
        return recordPolicy(by, 'reload');
      },
      exclusive<T>(op: () => Promise<T>): Promise<T> {
        // Nodes sharing a log: under the backend's lock too, so an erasure on one never interleaves with a hold on another.
        const lockAll = backend.exclusive?.bind(backend);
        const locked = lockAll
          ? async () => {
              const release = await lockAll();
              try {
                return await op();
              } finally {
                await release();
              }
            }
          : op;
        const run = queue.then(locked, locked);
        queue = run.catch(() => {});
        return run;
      },
      append,
      appendAs: (inputs, by) => appendEvents(opened, pace, pool, inputs, by, access.authorizeClaims),
      pace,
      observe: (o) => void observers.push(o),
      async close() {
        try {
          await audit.close();
          await pool.close();
          await opened.close();
          await index.close();
          await holds.close();
          await keys.close();
        } finally {
          unlock();
          await backend.close?.();
        }
      },
    };
    return stele;
  } catch (err) {
    await undo();
    throw err;
  }
}

/** The leaves after the newest checkpoint: only the log's memory holds them until it is written. */
async function unpublished(log: SteleLog): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = log.checkpoint.size; i < log.size; i++) out.push(await log.entry(i));
  return out;
}

/** Waits until the query store has every entry of the log (`stele reindex`, key rotation), reporting progress. */
async function indexAll(size: number, index: IndexThread, progress: (done: number, total: number) => void): Promise<void> {
  progress(index.indexedThrough, size);
  const stop = index.onProgress((n) => progress(Math.min(n, size), size));
  try {
    await index.whenIndexed(size, Number.POSITIVE_INFINITY);
  } finally {
    stop();
  }
}
