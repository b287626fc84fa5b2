/**
 * A data directory as the configuration of nodes sharing a log in PostgreSQL (`--postgres`): it
 * keeps the origin, the signing key, the master key and the policy, copied to every node, while the
 * log and every store live in the database. One signing key must never sign two histories, so a
 * directory is either embedded or PostgreSQL's, never both: its stele.json says which once it
 * served a PostgreSQL log, and a directory whose embedded log has entries is refused here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Env, envValue } from '../core/config/env.js';
import type { PostgresSettings, S3Settings } from '../core/config/resolve.js';
import { writeDurably } from '../core/durable.js';
import { SteleError } from '../core/errors.js';
import type { Policy } from '../policy/policy.js';
import type { S3TilesSpec } from '../storage/backend.js';
import { FsBackend } from '../storage/fs/backend.js';
import { PgBackend } from '../storage/pg/backend.js';
import { Bucket } from '../storage/s3/bucket.js';
import { mirrorRetention } from '../storage/s3/mirror.js';
import { noteSize } from '../tlog/checkpoint.js';
import { FILE_MODE, type InitResult, initDataDir, readConfig } from './datadir.js';
import { resolvePolicy } from './stele.js';

/**
 * Where --tiles puts the tiles: a bucket that must have Object Lock (refused otherwise; one not
 * reachable yet is written once it is), COMPLIANCE-locked as long as the policy keeps anything.
 */
async function tilesSpec(t: S3Settings, policy: Policy): Promise<S3TilesSpec> {
  const spec: S3TilesSpec = {
    location: t.location,
    region: t.region,
    ...(t.endpoint === undefined ? {} : { endpoint: t.endpoint }),
    retainMs: mirrorRetention(
      t.retainMs,
      policy.retention.tiers.map((x) => x.keepMs),
    ),
    legalHold: t.legalHold,
  };
  const bucket = new Bucket(t.location, { region: t.region, ...(t.endpoint === undefined ? {} : { endpoint: t.endpoint }) });
  try {
    await bucket.requireObjectLock('--tiles', (err) => process.stderr.write(`stele serve: ${err.message}; will retry\n`));
  } finally {
    bucket.close();
  }
  return spec;
}

/** The embedded log's size in `dir` (0: none), from its checkpoint. */
function embeddedSize(dir: string): number {
  const file = join(dir, 'log', 'checkpoint');
  if (!existsSync(file)) return 0;
  return noteSize(readFileSync(file, 'utf8'));
}

/**
 * Creates the data directory if need be and opens the database, ready for openSteleOn: the
 * directory marked as PostgreSQL's, and its API keys (the admin key of `stele init`) copied into a
 * database that has none yet.
 */
export async function preparePostgres(
  dir: string,
  origin: string | undefined,
  pg: PostgresSettings,
  env: Env,
  policyFile?: string,
): Promise<{ init: InitResult; backend: PgBackend }> {
  const init = await initDataDir(dir, origin, env);
  const size = embeddedSize(init.dir);
  if (size > 0)
    throw new SteleError(
      'bad_data_dir',
      `${init.dir} holds an embedded log of ${size} entries: a PostgreSQL log signed by the same key would be a second history. Use a new data directory for --postgres`,
    );
  const tiles = pg.tiles && (await tilesSpec(pg.tiles, resolvePolicy(init.dir, policyFile ?? envValue(env, 'STELE_POLICY'))));
  const backend = await PgBackend.open({
    driver: 'pg',
    url: pg.url,
    ...(pg.schema === undefined ? {} : { schema: pg.schema }),
    ...(tiles ? { tiles } : {}),
  });
  try {
    const config = readConfig(init.dir);
    if (config.storage !== 'postgres')
      await writeDurably(
        join(init.dir, 'stele.json'),
        `${JSON.stringify({ ...config, storage: 'postgres' }, null, 2)}\n`,
        FILE_MODE,
      );
    const shared = backend.apiKeys();
    if ((await shared.all()).length === 0)
      for (const r of await new FsBackend(init.dir).apiKeys().all()) {
        // A node starting beside this one may copy the same record first.
        await shared.add(r).catch((err: unknown) => {
          if ((err as SteleError).code !== 'conflict') throw err;
        });
      }
    return { init, backend };
  } catch (err) {
    await backend.close();
    throw err;
  }
}
