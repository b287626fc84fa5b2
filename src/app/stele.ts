import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Access } from '../auth/access.js';
import { writeDurably } from '../core/durable.js';
import { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { IndexThread } from '../index/thread.js';
import { type Appended, appendEvents } from '../ingest/append.js';
import { IngestPool } from '../ingest/pool.js';
import type { KeyStore } from '../keys/keystore.js';
import { generateMasterKey, loadMasterKeys, MASTER_ENV, masterKeyPath } from '../keys/master.js';
import { Log, type LogOptions } from '../log/log.js';
import { DEFAULT_POLICY, loadPolicyFile, type Policy } from '../policy/policy.js';
import { FsBackend } from '../storage/fs/backend.js';
import { Audit } from './audit.js';
import { type DataDir, defaultPolicyPath, loadDataDir } from './datadir.js';
import { type ForgetContext, HoldStore } from './forget.js';

export interface SteleOptions extends LogOptions {
  /** Policy file (default: $STELE_POLICY, else the data directory's stele.policy.yaml, else the built-in policy). */
  policyFile?: string;
  /** Ingest worker threads (0: prepare events on the calling thread). */
  ingestWorkers?: number;
  /** Reports catching the query store up with the log on open: (indexed, total). */
  onIndexProgress?: (done: number, total: number) => void;
}

/**
 * An open Stele: the data directory, its log, key store, policy, ingest pool and query store, and
 * the write lock that keeps it single-writer. Every operation (routes, CLI) goes through these.
 */
export interface Stele extends DataDir {
  log: Log;
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
  close(): Promise<void>;
}

/** A policy load as recorded in the log. */
export interface PolicyLoad {
  index: number;
  source: string;
  sha256: string;
  cedar?: { source: string; sha256: string };
}

export const keystorePath = (dir: string) => join(dir, 'keys', 'keystore.db');

export function resolvePolicy(dir: string, file = process.env.STELE_POLICY): Policy {
  if (file) return loadPolicyFile(file);
  const own = defaultPolicyPath(dir);
  return existsSync(own) ? loadPolicyFile(own) : DEFAULT_POLICY;
}

/** Opens (and recovers) an initialised data directory, taking its write lock. */
export async function openStele(dir: string, options: SteleOptions = {}): Promise<Stele> {
  const dd = loadDataDir(dir);
  const backend = new FsBackend(dd.dir);
  const unlock = backend.lock();
  const cleanup: (() => unknown)[] = [unlock];
  const undo = async () => {
    for (const c of cleanup.reverse()) await c();
  };
  try {
    const policy = resolvePolicy(dd.dir, options.policyFile);
    // A directory made before data keys existed gets its master key on first open.
    if (!process.env[MASTER_ENV] && !existsSync(masterKeyPath(dd.dir)) && !existsSync(keystorePath(dd.dir))) {
      await writeDurably(masterKeyPath(dd.dir), `${generateMasterKey()}\n`, 0o600);
    }
    const masters = loadMasterKeys(dd.dir);
    const keys = backend.keys(masters);
    cleanup.push(() => keys.close());
    const pool = new IngestPool(options.ingestWorkers ?? 0, policy, keys);
    cleanup.push(() => pool.close());
    const index = await IndexThread.start(backend.spawn('index', { masters, policy }));
    cleanup.push(() => index.close());

    const { policyFile: _p, ingestWorkers: _w, onIndexProgress, ...logOptions } = options;
    const storage = backend.log();
    const ids = backend.ids();
    let log: Log | undefined;
    log = await Log.open({
      storage,
      integratorThread: () => backend.spawn('integrator', undefined),
      ids,
      skey: dd.skey,
      verifier: dd.verifier,
      origin: dd.config.origin,
      options: logOptions,
      onSequenced: (first, leaves) => index.add(first, leaves, log?.checkpoint.size ?? 0),
    }).catch(async (err: unknown) => {
      ids.close();
      await storage.close();
      throw err;
    });
    const opened = log;
    cleanup.push(() => opened.close());
    await catchUpIndex(opened, index, onIndexProgress);

    const append = (inputs: readonly unknown[], by: Principal) => appendEvents(opened, index, pool, inputs, by);
    const holds = new HoldStore(keys.db, keys.subjectPepper);
    const access = new Access(dd.apikeys, policy, keys.subjectPepper);
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
      keys,
      pool,
      index,
      get policy() {
        return access.policy;
      },
      holds,
      access,
      audit,
      forget: { keys, holds, index, policy: () => access.policy, append },
      recordPolicy,
      async reloadPolicy(by: Principal): Promise<PolicyLoad> {
        let next: Policy;
        try {
          next = resolvePolicy(dd.dir, options.policyFile);
          access.setPolicy(next);
        } catch (err) {
          const e = err instanceof SteleError ? err : new SteleError('bad_policy', (err as Error).message);
          await audit.record('stele.policy.refused', by, { message: e.message, ...(e.detail ?? {}) }, e.message);
          throw new SteleError(
            e.code,
            `policy refused, the old one stays in force: ${e.message}`,
            e.status < 500 ? e.status : 400,
            e.detail,
          );
        }
        pool.setPolicy(next);
        index.setPolicy(next);
        return recordPolicy(by, 'reload');
      },
      exclusive<T>(op: () => Promise<T>): Promise<T> {
        const run = queue.then(op, op);
        queue = run.catch(() => {});
        return run;
      },
      append,
      appendAs: (inputs, by) => appendEvents(opened, index, pool, inputs, by, access.authorizeClaims),
      async close() {
        try {
          await audit.close();
          await pool.close();
          await opened.close();
          await index.close();
          keys.close();
        } finally {
          unlock();
        }
      },
    };
    return stele;
  } catch (err) {
    await undo();
    throw err;
  }
}

/** Indexes the entries the query store lacks (after a crash, `stele append --local`, or `stele reindex`). */
async function catchUpIndex(log: Log, index: IndexThread, progress?: (done: number, total: number) => void): Promise<void> {
  const size = log.size;
  let at = await index.upto();
  if (at > size) throw new Error(`the query store has ${at} entries but the log only ${size}: run "stele reindex"`);
  const CHUNK = 1024;
  while (at < size) {
    const end = Math.min(size, at + CHUNK);
    const leaves: Buffer[] = [];
    for (let i = at; i < end; i++) leaves.push(await log.entry(i));
    index.add(at, leaves, log.checkpoint.size);
    at = end;
    progress?.(at, size);
    if (at % (CHUNK * 64) === 0) await index.upto(); // bounded backlog in the thread's queue
  }
  await index.upto();
}
