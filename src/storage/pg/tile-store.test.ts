/**
 * The PostgreSQL tile store against a real PostgreSQL: the tile store conformance suite (full
 * tiles never change, the checkpoint is a compare-and-swap), two writers racing from the same
 * checkpoint (exactly one wins), and the synced size. Skipped without PostgreSQL, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Postgres, pgProblem } from '../../../test/helpers/postgres.js';
import { cleanup } from '../../../test/helpers/stele.js';
import { Integrator, type Published } from '../../log/integrator.js';
import type { TileStore } from '../../log/storage.js';
import { formatCheckpoint } from '../../tlog/checkpoint.js';
import { emptyRoot } from '../../tlog/hash.js';
import { generateKey, newSigner, newVerifier, signNote } from '../../tlog/note.js';
import { TileBuilder } from '../../tlog/tile.js';
import { verifyLog } from '../../tlog/verify.js';
import { tileStoreConformance } from '../conformance/log.js';
import { PgDatabase } from './database.js';
import { PgTileStore } from './tile-store.js';

const problem = pgProblem();
if (problem !== null && process.env.CI === 'true') test('PostgreSQL tile store', () => assert.fail(`CI must run it: ${problem}`));

if (problem === null) {
  let server: Promise<{ pg: Postgres; url: string }> | undefined;
  const pools: PgDatabase[] = [];
  after(async () => {
    for (const p of pools) await p.close();
    await (await server)?.pg.stop();
    await cleanup();
  });
  let n = 0;
  /** A fresh schema's database (for a new store), or the same schema again (reopen). */
  const connect = async (schema: string) => {
    server ??= Postgres.start().then((pg) => ({ pg, url: pg.createDb('tiles') }));
    const db = await PgDatabase.open((await server).url, { schema, max: 4 });
    pools.push(db);
    return db;
  };
  const schemaOf = new WeakMap<TileStore, string>();
  const create = async () => {
    const schema = `t${n++}`;
    const store = new PgTileStore(await connect(schema));
    schemaOf.set(store, schema);
    return store;
  };
  tileStoreConformance({
    name: 'postgres',
    create,
    reopen: async (t) => new PgTileStore(await connect(schemaOf.get(t) as string)),
  });

  describe('postgres: tile store, beyond the suite', () => {
    test('two writers publishing from the same checkpoint: exactly one wins, the other is refused', async () => {
      const a = await create();
      const b = new PgTileStore(await connect(schemaOf.get(a) as string));
      await a.writeCheckpoint(null, 'o\n1\nr1\n');
      for (let round = 2; round < 22; round++) {
        const prev = (await a.readCheckpoint()) as string;
        const results = await Promise.allSettled([
          a.writeCheckpoint(prev, `o\n${round}\na\n`),
          b.writeCheckpoint(prev, `o\n${round}\nb\n`),
        ]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: one winner`);
        const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.equal((loser.reason as { code: string }).code, 'checkpoint_conflict');
      }
    });

    test("the integrator builds a log in it that stele's verifier checks, entry by entry and tile by tile", async () => {
      const store = await create();
      const key = generateKey('pg.test/log');
      const signer = newSigner(key.skey);
      const root = emptyRoot();
      let published: Published = {
        size: 0,
        root,
        note: signNote(formatCheckpoint({ origin: 'pg.test/log', size: 0, root, extensions: [] }), [signer]),
      };
      await store.writeCheckpoint(null, published.note);
      let failure: Error | null = null;
      const integrator = new Integrator(
        store,
        signer,
        'pg.test/log',
        TileBuilder.empty(),
        [],
        published,
        {
          published: (p) => {
            published = p;
          },
          synced: () => {},
          failed: (e) => {
            failure = e;
          },
        },
        { checkpointIntervalMs: 3_600_000, syncIntervalMs: 3_600_000 },
      );
      // 70,000 leaves: three tile levels, full and partial tiles at each.
      for (let first = 0; first < 70_000; first += 10_000) {
        integrator.add(
          first,
          Array.from({ length: 10_000 }, (_, i) => Buffer.from(`leaf ${first + i}`)),
        );
        await integrator.integrateNow();
      }
      await integrator.close();
      assert.equal(failure, null);
      assert.equal(published.size, 70_000);
      const r = await verifyLog(store, newVerifier(key.vkey));
      assert.equal(r.checkpoint.size, 70_000);
    });

    test('the synced size is what the last syncTiles said, and a full tile replaces its partials', async () => {
      const s = await create();
      assert.equal(await s.syncedSize(), 0);
      await s.writeTiles([{ level: 0, index: 0, width: 3, data: Buffer.alloc(96, 1) }]);
      await s.syncTiles(3);
      assert.equal(await s.syncedSize(), 3);
      await s.writeTiles([{ level: 0, index: 0, width: 256, data: Buffer.alloc(256 * 32, 1) }]);
      await s.syncTiles(256);
      assert.equal(await s.syncedSize(), 256);
      assert.equal(await s.readTile(0, 0, 3), null, 'the partial went with the full tile');
    });
  });
}
