/**
 * What the query conformance suite cannot see of the PostgreSQL query store: that an erasure
 * leaves nothing of the erased entries in the table files (PostgreSQL keeps deleted rows' old
 * versions until a rewrite), and that any text, quotes and backslashes included, is indexed and
 * found. Against a throwaway PostgreSQL; skipped without one, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Postgres, pgProblem } from '../../../test/helpers/postgres.js';
import { cleanup } from '../../../test/helpers/stele.js';
import type { IndexRow } from '../../event/searchable.js';
import { parseQuery } from '../../index/query.js';
import { PgDatabase } from './database.js';
import { PgQueryStore } from './query-store.js';

const problem = pgProblem();
if (problem !== null && process.env.CI === 'true')
  test('PostgreSQL query store on disk', () => assert.fail(`CI must run it: ${problem}`));

const row = (idx: number, actor: string, key: string | null): IndexRow => ({
  idx,
  id: `e-${idx}`,
  time: 1_795_000_000_000_000 + idx,
  received: 1_795_000_000_000_000 + idx,
  actor,
  actor_type: 'human',
  on_behalf_of: null,
  verified: 1,
  action: 'emacs.file.save',
  source: 'emacs',
  host: null,
  resource_type: null,
  resource_id: null,
  outcome: 'success',
  subject: null,
  tier: 'compliance',
  key_id: key,
  principal: 'oidc:x',
});

describe('PostgreSQL query store on disk', { skip: problem ?? false }, () => {
  let pg: Postgres;
  let db: PgDatabase;
  before(async () => {
    pg = await Postgres.start();
    db = await PgDatabase.open(pg.createDb('disk'));
  });
  after(async () => {
    await db?.close();
    await pg?.stop();
    await cleanup();
  });

  test("an erasure and its scrub leave none of the erased entries' fields or words in the table files", async () => {
    // Tiny partitions: the erased rows sit in two of them, a kept row in a third.
    const store = new PgQueryStore(db, 64);
    const rows = Array.from({ length: 200 }, (_, i) => ({
      row: row(i, i % 2 ? 'zebulon.quartermaine@example.com' : 'kept@example.com', i % 2 ? 'k-erase' : 'k-keep'),
      text: i % 2 ? 'xylophonist quibblewhistle' : 'ordinary words',
    }));
    await store.insert({ rows, upto: 200 });
    assert.ok(pg.tableBytes('disk').includes('quibblewhistle'), 'the words are in the table files before');
    assert.equal(await store.deleteByKeys(['k-erase'], () => 'erased'), 100);
    // Scrubbed by another instance, as after a restart between the erasure and its scrub.
    const restarted = new PgQueryStore(db, 64);
    while (await restarted.scrubStep()) {}
    await restarted.scrubbed();
    const bytes = pg.tableBytes('disk');
    for (const secret of ['zebulon.quartermaine', 'quibblewhistle', 'xylophonist'])
      assert.ok(!bytes.includes(secret), `${secret} is still in the table files`);
    assert.ok(bytes.includes('kept@example.com'));
    const q = { root: parseQuery('quibblewhistle'), nowMs: Date.now() };
    assert.deepEqual(await store.count(q), { entries: 0, gaps: 0 });
    assert.equal((await store.count({ root: parseQuery('index:0..'), nowMs: Date.now() })).gaps, 100);
  });

  test('text with quotes, backslashes and tsquery syntax is indexed and found word by word and as phrases', async () => {
    await db.query('TRUNCATE stele_q_entries, stele_q_gaps, stele_q_meta');
    const store = new PgQueryStore(db);
    const text = `it's C:\\Users\\o'brien & a|b !c (d) 'quoted' x:* <-> end`;
    await store.insert({ rows: [{ row: row(0, 'a', null), text }], upto: 1 });
    for (const q of ["it's", '"o brien"', 'users', '"a b c d"', 'x', "'quoted'", 'quot*', '"users o"*', 'end'])
      assert.equal((await store.count({ root: parseQuery(q), nowMs: 0 })).entries, 1, q);
    for (const q of ['"b a"', 'brie', '"users brien"'])
      assert.equal((await store.count({ root: parseQuery(q), nowMs: 0 })).entries, 0, q);
  });
});
