/**
 * Sequencing in PostgreSQL against a real server: nodes appending at once get dense, distinct
 * indices, each id stored once; a retry gets its first index; another content under a known id
 * refuses the whole batch and stores none of it; the write-ahead log reads back in order and is
 * trimmed. Skipped without PostgreSQL, except under CI=true.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Postgres, pgProblem } from '../../../test/helpers/postgres.js';
import { cleanup } from '../../../test/helpers/stele.js';
import type { SequencedEntry } from '../../log/storage.js';
import { PgDatabase } from './database.js';
import { PgSequencing } from './sequencing.js';

const problem = pgProblem();
if (problem !== null && process.env.CI === 'true') test('PostgreSQL sequencing', () => assert.fail(`CI must run it: ${problem}`));

const entry = (id: string = randomUUID(), body: string = id): SequencedEntry => ({
  id,
  leaf: Buffer.from(`leaf of ${body}`),
  digest: createHash('sha256').update(body).digest().subarray(0, 16),
});

describe('PostgreSQL sequencing', { skip: problem ?? false, timeout: 120_000 }, () => {
  let pg: Postgres;
  let url: string;
  const pools: PgDatabase[] = [];
  let n = 0;
  /** A node: its own pool on the schema `schema`. */
  const node = async (schema: string) => {
    const db = await PgDatabase.open(url, { schema, max: 3 });
    pools.push(db);
    return new PgSequencing(db);
  };
  before(async () => {
    pg = await Postgres.start();
    url = pg.createDb('seq');
  });
  after(async () => {
    for (const p of pools) await p.close();
    await pg?.stop();
    await cleanup();
  });

  test('three nodes appending at once get dense, distinct indices, in the order each committed', async () => {
    const schema = `s${n++}`;
    const nodes = [await node(schema), await node(schema), await node(schema)];
    const sent: { id: string; index: number }[] = [];
    await Promise.all(
      nodes.flatMap((s) =>
        Array.from({ length: 4 }, async () => {
          for (let k = 0; k < 10; k++) {
            const batch = Array.from({ length: 25 }, () => entry());
            const got = await s.append(batch);
            // A batch's new entries are consecutive.
            for (let i = 1; i < got.length; i++) assert.equal(got[i], (got[i - 1] as number) + 1);
            for (let i = 0; i < batch.length; i++) sent.push({ id: (batch[i] as SequencedEntry).id, index: got[i] as number });
          }
        }),
      ),
    );
    assert.equal(sent.length, 3 * 4 * 10 * 25);
    assert.deepEqual(
      sent.map((s) => s.index).sort((a, b) => a - b),
      Array.from({ length: sent.length }, (_, i) => i),
      'every index from 0 given exactly once',
    );
    assert.equal(await (nodes[0] as PgSequencing).size(), sent.length);
    const wal = await (nodes[1] as PgSequencing).read(0, 100_000);
    assert.deepEqual(
      wal.map((w) => w.idx),
      sent.map((_, i) => i),
    );
    const byIndex = new Map(sent.map((s) => [s.index, s.id]));
    for (const w of wal) assert.equal(w.leaf.toString(), `leaf of ${byIndex.get(w.idx)}`);
  });

  test('a retry, from any node, gets the first index; the same id twice in a batch is one entry', async () => {
    const schema = `s${n++}`;
    const [a, b] = [await node(schema), await node(schema)];
    const e = entry();
    const [, first] = await a.append([entry(), e]);
    assert.deepEqual(await b.append([e]), [first]);
    const f = entry();
    assert.deepEqual(await b.append([f, f, entry()]), [2, 2, 3]);
    assert.equal(await a.size(), 4);
    // The same new event sent to two nodes at the same moment: one entry, both told its index.
    for (let k = 0; k < 20; k++) {
      const same = entry();
      const [x, y] = await Promise.all([a.append([same]), b.append([same])]);
      assert.deepEqual(x, y);
    }
    assert.equal(await a.size(), 24);
  });

  test('another content under a known id refuses the whole batch (409) and stores none of it', async () => {
    const schema = `s${n++}`;
    const [a, b] = [await node(schema), await node(schema)];
    const id = randomUUID();
    await a.append([entry(id, 'first content')]);
    const innocent = entry();
    await assert.rejects(b.append([innocent, entry(id, 'other content')]), (err: { code: string; message: string }) => {
      assert.equal(err.code, 'id_conflict');
      assert.match(err.message, new RegExp(`id ${id} is already in the log at index 0`));
      return true;
    });
    assert.equal(await a.size(), 1, 'nothing of the refused batch was numbered');
    assert.deepEqual(await a.append([innocent]), [1], 'nor stored: the innocent entry is new afterwards');
    const dup = randomUUID();
    await assert.rejects(a.append([entry(dup, 'x'), entry(dup, 'y')]), /also the id of event 0 of this request/);
  });

  test('the write-ahead log reads from an index and forgets what is below a cut; ids stay for deduplication', async () => {
    const s = await node(`s${n++}`);
    const batch = Array.from({ length: 10 }, () => entry());
    await s.append(batch);
    await s.dropBefore(6);
    assert.deepEqual(
      (await s.read(0, 100)).map((w) => w.idx),
      [6, 7, 8, 9],
    );
    assert.deepEqual(
      (await s.read(7, 2)).map((w) => w.idx),
      [7, 8],
    );
    assert.deepEqual(await s.append([batch[2] as SequencedEntry]), [2], 'a dropped entry is still known by id');
  });
});
