/**
 * One node's log on a shared PostgreSQL (docs/design.md), without the rest of a Stele: the pg
 * backend's SharedLog, optionally with its tiles in an S3 bucket. Several processes calling this
 * on the same database and schema append to the same log (the shared-log tests and bench:pg).
 */
import type { SharedLog, SharedLogParams } from '../../log/shared-log.js';
import { newVerifier } from '../../tlog/note.js';
import type { S3TilesSpec } from '../backend.js';
import { PgBackend } from './backend.js';
import type { PgDatabase } from './database.js';

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
  tiles?: S3TilesSpec;
  onSequenced?: SharedLogParams['onSequenced'];
  onError?: SharedLogParams['onError'];
}

export async function openSharedNode(o: SharedNodeOptions): Promise<{ log: SharedLog; db: PgDatabase; close(): Promise<void> }> {
  const backend = await PgBackend.open({
    driver: 'pg',
    url: o.url,
    ...(o.schema === undefined ? {} : { schema: o.schema }),
    ...(o.tiles ? { tiles: o.tiles } : {}),
  });
  try {
    const log = await backend.openLog({
      skey: o.skey,
      verifier: newVerifier(o.vkey),
      origin: o.origin,
      ...(o.log ? { options: o.log } : {}),
      ...(o.onSequenced ? { onSequenced: o.onSequenced } : {}),
      ...(o.onError ? { onError: o.onError } : {}),
    });
    return {
      log,
      db: backend.db,
      async close() {
        await log.close();
        await backend.close();
      },
    };
  } catch (err) {
    await backend.close();
    throw err;
  }
}
