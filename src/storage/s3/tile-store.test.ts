/**
 * The S3 bucket as the tile store of nodes sharing a log, against a real Ceph RGW (Object Lock)
 * and a real PostgreSQL (the checkpoint's compare-and-swap): the tile store conformance suite,
 * then two nodes appending, whose log verifies from the bucket's anonymous HTTP endpoint. Skipped
 * without either, except under CI=true.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { CreateBucketCommand, PutBucketPolicyCommand, type S3Client } from '@aws-sdk/client-s3';
import { Postgres, pgProblem } from '../../../test/helpers/postgres.js';
import { Rgw, rgwProblem } from '../../../test/helpers/rgw.js';
import { cleanup } from '../../../test/helpers/stele.js';
import { HttpTileSource } from '../../log/http-tile-source.js';
import type { TileStore } from '../../log/storage.js';
import { generateKey, newVerifier } from '../../tlog/note.js';
import { verifyLog } from '../../tlog/verify.js';
import { tileStoreConformance } from '../conformance/log.js';
import { PgDatabase } from '../pg/database.js';
import { openSharedNode } from '../pg/shared-node.js';
import { PgTileStore } from '../pg/tile-store.js';
import { Bucket } from './bucket.js';
import { S3TileStore } from './tile-store.js';

const problem = rgwProblem() ?? pgProblem();
if (problem !== null && process.env.CI === 'true') test('S3 tile store', () => assert.fail(`CI must run it: ${problem}`));

if (problem === null) {
  let services: Promise<{ rgw: Rgw; pg: Postgres; url: string; s3: S3Client }> | undefined;
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closers) await c().catch(() => {});
    const s = await services;
    s?.s3.destroy();
    await s?.pg.stop();
    await s?.rgw.stop();
    await cleanup();
  });
  const up = () => {
    services ??= (async () => {
      const [rgw, pg] = await Promise.all([Rgw.start(), Postgres.start()]);
      Object.assign(process.env, rgw.env); // the Bucket's credentials, as in production
      return { rgw, pg, url: pg.createDb('s3tiles'), s3: rgw.client() };
    })();
    return services;
  };
  let n = 0;
  /** A fresh Object Lock bucket and database schema. */
  const fresh = async () => {
    const s = await up();
    const name = `tiles-${n++}`;
    await s.s3.send(new CreateBucketCommand({ Bucket: name, ObjectLockEnabledForBucket: true }));
    return { name, schema: name.replace('-', '_'), s };
  };
  const storeOf = new WeakMap<TileStore, { name: string; schema: string }>();
  const open = async (name: string, schema: string) => {
    const s = await up();
    const db = await PgDatabase.open(s.url, { schema, max: 4 });
    const bucket = new Bucket({ bucket: name, prefix: '' }, { endpoint: s.rgw.endpoint, region: 'us-east-1' });
    closers.push(async () => {
      bucket.close();
      await db.close();
    });
    const store = new S3TileStore(bucket, new PgTileStore(db), { retainMs: 86_400_000, legalHold: false });
    storeOf.set(store, { name, schema });
    return store;
  };
  tileStoreConformance({
    name: 's3 (+ postgres for the checkpoint)',
    create: async () => {
      const f = await fresh();
      return open(f.name, f.schema);
    },
    reopen: (t) => {
      const at = storeOf.get(t) as { name: string; schema: string };
      return open(at.name, at.schema);
    },
  });

  describe('S3 tile store under a shared log', { timeout: 180_000 }, () => {
    test('two nodes append; the log verifies from the bucket over plain HTTP', async () => {
      const f = await fresh();
      await f.s.s3.send(
        new PutBucketPolicyCommand({
          Bucket: f.name,
          Policy: JSON.stringify({
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Principal: '*', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${f.name}/*`] }],
          }),
        }),
      );
      const key = generateKey('s3tiles.test/log');
      const nodes = await Promise.all(
        [0, 1].map(() =>
          openSharedNode({
            url: f.s.url,
            schema: f.schema,
            origin: 's3tiles.test/log',
            skey: key.skey,
            vkey: key.vkey,
            log: { checkpointIntervalMs: 50, pollMs: 20, leaseRetryMs: 100 },
            tiles: {
              location: { bucket: f.name, prefix: '' },
              endpoint: f.s.rgw.endpoint,
              region: 'us-east-1',
              retainMs: 86_400_000,
              legalHold: false,
            },
          }),
        ),
      );
      for (const node of nodes) closers.push(() => node.close());
      let top = 0;
      await Promise.all(
        nodes.map(async (node) => {
          for (let k = 0; k < 6; k++) {
            const got = await node.log.append(
              Array.from({ length: 100 }, () => {
                const id = randomUUID();
                return { id, leaf: Buffer.from(`leaf ${id}`), digest: Buffer.from(id.slice(0, 16)) };
              }),
            );
            for (const i of got) top = Math.max(top, i + 1);
          }
        }),
      );
      assert.equal(top, 1200);
      await nodes[0]?.log.waitForCheckpoint(top, 60_000);
      await nodes[1]?.log.waitForCheckpoint(top, 60_000);
      // The bucket's copy of the checkpoint is written after the database accepts it.
      const deadline = Date.now() + 30_000;
      let size = 0;
      while (size < top) {
        assert.ok(Date.now() < deadline, 'the bucket never had the last checkpoint');
        const r = await verifyLog(new HttpTileSource(`${f.s.rgw.endpoint}/${f.name}/log`), newVerifier(key.vkey)).catch(
          () => null,
        );
        size = r?.checkpoint.size ?? 0;
      }
      assert.ok(size >= top);
    });
  });
}
