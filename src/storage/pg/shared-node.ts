/**
 * One node's log on a shared PostgreSQL (docs/design.md): its own connection pool, the shared
 * sequencing, tile store and integrator lease, put together as a SharedLog. Several processes
 * calling this on the same database and schema append to the same log.
 */
import { SharedLog, type SharedLogParams } from '../../log/shared-log.js';
import { newVerifier } from '../../tlog/note.js';
import type { Bucket } from '../s3/bucket.js';
import { S3TileStore } from '../s3/tile-store.js';
import { PgDatabase } from './database.js';
import { PgLease } from './lease.js';
import { PgSequencing } from './sequencing.js';
import { PgTileStore } from './tile-store.js';

export interface SharedNodeOptions {
  url: string;
  /** The PostgreSQL schema of this log (default: the connection's search_path). */
  schema?: string;
  origin: string;
  /** The log's signing key (signed-note format) and its verifier key: the same on every node. */
  skey: string;
  vkey: string;
  log?: SharedLogParams['options'];
  /** The tiles in this S3 bucket with Object Lock instead of the database (the checkpoint's compare-and-swap stays there). */
  s3?: { bucket: Bucket; retainMs: number; legalHold: boolean };
  onSequenced?: SharedLogParams['onSequenced'];
  onError?: SharedLogParams['onError'];
}

export async function openSharedNode(o: SharedNodeOptions): Promise<{ log: SharedLog; db: PgDatabase; close(): Promise<void> }> {
  const db = await PgDatabase.open(o.url, o.schema === undefined ? {} : { schema: o.schema });
  try {
    const log = await SharedLog.open({
      sequencing: new PgSequencing(db),
      tiles: o.s3 ? new S3TileStore(o.s3.bucket, new PgTileStore(db), o.s3) : new PgTileStore(db),
      takeLease: () => PgLease.tryTake(o.url, `integrator:${o.schema ?? ''}`),
      skey: o.skey,
      verifier: newVerifier(o.vkey),
      origin: o.origin,
      ...(o.log ? { options: o.log } : {}),
      ...(o.onSequenced ? { onSequenced: o.onSequenced } : {}),
      ...(o.onError ? { onError: o.onError } : {}),
    });
    return {
      log,
      db,
      async close() {
        await log.close();
        await db.close();
      },
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}
