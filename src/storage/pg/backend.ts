/**
 * The PostgreSQL driver as a backend: every store of a Stele in one database that several
 * `stele serve` nodes share (docs/design.md, "Storage drivers"). The log is a SharedLog (numbered
 * by the database, integrated by the holder of the lease); keys, holds, API keys and the query
 * store are tables every node reads and writes. There is no process lock: the nodes take turns in
 * the database's transactions.
 */
import type { ThreadHandle } from '../../core/thread.js';
import { SharedLog, type SharedTileStore } from '../../log/shared-log.js';
import type { Backend, BackendSpec, OpenLogParams, ThreadData, ThreadKind } from '../backend.js';
import { Bucket } from '../s3/bucket.js';
import { S3TileStore } from '../s3/tile-store.js';
import { spawnWorker } from '../threads/spawn.js';
import { PgApiKeyRecords } from './apikeys.js';
import { PgDatabase } from './database.js';
import { PgHoldRecords } from './holds.js';
import { PgKeyRecords } from './keys.js';
import { PgLease } from './lease.js';
import { PgQueryStore } from './query-store.js';
import { PgSequencing } from './sequencing.js';
import { PgTileStore } from './tile-store.js';

/** The advisory lock of forgetting operations across nodes ('frgt'). */
const FORGET_LOCK = 0x66726774;

export type PgSpec = Extract<BackendSpec, { driver: 'pg' }>;

export class PgBackend implements Backend {
  readonly shared = true;
  /** The bucket of the tiles (spec.tiles), made on first use. */
  private bucketOf: Bucket | undefined;

  private constructor(
    readonly spec: PgSpec,
    readonly db: PgDatabase,
  ) {}

  /** Connects (a pool of `max` connections) and brings the schema up to date. */
  static async open(spec: PgSpec, opts: { max?: number } = {}): Promise<PgBackend> {
    const db = await PgDatabase.open(spec.url, {
      ...(spec.schema === undefined ? {} : { schema: spec.schema }),
      ...(opts.max === undefined ? {} : { max: opts.max }),
    });
    return new PgBackend(spec, db);
  }

  /** The log's tiles: in the database, or in the bucket with the checkpoint's compare-and-swap in the database. */
  private logTiles(): SharedTileStore {
    const t = this.spec.tiles;
    if (!t) return new PgTileStore(this.db);
    this.bucketOf ??= new Bucket(t.location, { region: t.region, ...(t.endpoint === undefined ? {} : { endpoint: t.endpoint }) });
    return new S3TileStore(this.bucketOf, new PgTileStore(this.db), t);
  }

  lock(): () => void {
    return () => {};
  }

  async exclusive(): Promise<() => Promise<void>> {
    const c = await this.db.pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock($1)', [FORGET_LOCK]);
    } catch (err) {
      c.release();
      throw err;
    }
    return async () => {
      try {
        await c.query('SELECT pg_advisory_unlock($1)', [FORGET_LOCK]);
        c.release();
      } catch (err) {
        c.release(err as Error); // a broken connection: dropped, and its session's lock with it
      }
    };
  }

  openLog(p: OpenLogParams): Promise<SharedLog> {
    const { url, schema } = this.spec;
    return SharedLog.open({
      sequencing: new PgSequencing(this.db),
      tiles: this.logTiles(),
      takeLease: () => PgLease.tryTake(url, `integrator:${schema ?? ''}`),
      skey: p.skey,
      verifier: p.verifier,
      origin: p.origin,
      ...(p.options ? { options: p.options } : {}),
      ...(p.onSequenced ? { onSequenced: p.onSequenced } : {}),
      ...(p.onLead ? { onLead: p.onLead } : {}),
      ...(p.onError ? { onError: p.onError } : {}),
    });
  }

  tileStore(): SharedTileStore {
    return this.logTiles();
  }

  tiles(): SharedTileStore {
    return this.logTiles();
  }

  keys(opts: { readonly?: boolean } = {}): PgKeyRecords {
    return new PgKeyRecords(this.db, opts.readonly ?? false);
  }

  holds(): PgHoldRecords {
    return new PgHoldRecords(this.db);
  }

  apiKeys(): PgApiKeyRecords {
    return new PgApiKeyRecords(this.db);
  }

  queryStore(): PgQueryStore {
    return new PgQueryStore(this.db);
  }

  noteSpill(): null {
    return null;
  }

  async dropQueryStore(): Promise<void> {
    await this.db.tx(async (c) => {
      await c.query('TRUNCATE stele_q_entries, stele_q_gaps, stele_q_scrub');
      await c.query("DELETE FROM stele_q_meta WHERE k = 'upto'");
    });
  }

  spawn<K extends ThreadKind>(kind: K, data: ThreadData[K]): ThreadHandle {
    return spawnWorker(this.spec, kind, data);
  }

  close(): Promise<void> {
    this.bucketOf?.close();
    return this.db.close();
  }
}
