import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { Postgres, pgProblem } from '../../test/helpers/postgres.js';
import { cleanup } from '../../test/helpers/stele.js';
import { SteleError } from '../core/errors.js';
import type { IndexRow } from '../event/searchable.js';
import { addTally, bucketsFor, emptyTally, summarize } from '../index/aggregate.js';
import type { QueryStore, StoreMatch } from '../index/query-store.js';
import { NOW, queryStoreConformance, storeQuery } from './conformance/query.js';
import { PartitionedQueryStore } from './fs/partitioned-query-store.js';
import { SqliteQueryStore } from './fs/query-store.js';
import { MemoryQueryStore } from './memory/query-store.js';
import { PgDatabase } from './pg/database.js';
import { PgQueryStore } from './pg/query-store.js';

const dir = mkdtempSync(join(tmpdir(), 'stele-query-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const sqlite = async () => new SqliteQueryStore(join(dir, `${files++}.db`));
const memory = async () => new MemoryQueryStore();
/** Tiny partitions, so pages, counts and erasures cross several of them. */
const partitioned = (size: number) => async () => new PartitionedQueryStore(join(dir, `${files++}`), size);

// PostgreSQL: a schema of one throwaway server's database for each store.
const pgSkip = pgProblem();
let pgServer: Promise<{ pg: Postgres; url: string }> | undefined;
const pools: PgDatabase[] = [];
after(async () => {
  for (const p of pools) await p.close();
  await (await pgServer)?.pg.stop();
  await cleanup();
});
let schemas = 0;
const postgres = async () => {
  pgServer ??= Postgres.start().then((pg) => ({ pg, url: pg.createDb('query') }));
  const db = await PgDatabase.open((await pgServer).url, { schema: `q${schemas++}`, max: 2 });
  pools.push(db);
  // Partitions of 4,096 entries, so pages, counts and erasures cross several of them.
  return new PgQueryStore(db, 4096);
};
if (pgSkip !== null && process.env.CI === 'true') test('PostgreSQL query store', () => assert.fail(`CI must run it: ${pgSkip}`));

describe('SQLite query store', () => queryStoreConformance(sqlite));
describe('PostgreSQL query store', { skip: pgSkip ?? false }, () => queryStoreConformance(postgres));
describe('partitioned SQLite query store (4,096 entries a partition)', () => queryStoreConformance(partitioned(4096)));
describe('memory query store', () => queryStoreConformance(memory));

// ---- differential: the same rows and queries on both drivers -----------------------------------

const T0 = Date.parse('2026-11-10T00:00:00Z') * 1000;
const WORDS = ['alpha', 'Beta', 'gamma-ray', 'café', 'CAFE', 'naïve', 'init.el', 'x_y', '中文', 'Σίσυφος', 'ǅemal', 'a"b', '42'];
const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);

const rowArb = fc.record({
  actor: pick(['alice', 'bob', 'Alice Smith', 'élodie', 'svc:ci']),
  actor_type: pick(['human', 'service', 'ai_agent']),
  on_behalf_of: fc.option(pick(['alice', 'bob']), { nil: null }),
  verified: pick([0, 1]),
  action: pick(['emacs.file.save', 'emacs.package.install', 'git.push', 'k8s.pods.delete', 'a?b.c', 'x[1].y']),
  source: pick(['emacs', 'git', 'kubernetes']),
  host: fc.option(pick(['laptop', 'ci-01']), { nil: null }),
  resource_type: fc.option(pick(['file', 'repo']), { nil: null }),
  resource_id: fc.option(pick(['init.el', 'a*b', 'a?b', 'stele']), { nil: null }),
  outcome: pick(['success', 'failure', 'denied']),
  subject: fc.option(pick(['PR-7', 'h1']), { nil: null }),
  tier: pick(['standard', 'audit', 'operational']),
  key_id: fc.option(pick(['k1', 'k2', 'k3']), { nil: null }),
  principal: pick(['local', 'oidc:alice']),
  dt: fc.integer({ min: -10 * 86_400, max: 10 * 86_400 }),
  words: fc.array(pick(WORDS), { maxLength: 6 }),
  skip: fc.integer({ min: 0, max: 9 }).map((n) => n === 0), // an entry the store never got
});

const atom = pick([
  ...['actor:alice', 'actor:Alice*', 'actor:*', 'type:service', 'on_behalf_of:*', 'host:laptop', 'host:*', 'verified:true'],
  ...['action:emacs.*', 'action:a?b.*', 'action:x[1]*', 'resource:a*', 'resource:a?b', 'subject:PR-7', 'key:k1', 'key:*'],
  ...['outcome:failure', 'tier:audit', 'tier:standard', 'index:3..', 'index:..5', 'index:4', 'principal:oidc:*', 'id:e-1*'],
  ...['since:3d', 'until:2026-11-12', 'since:2026-11-08T12:00:00Z', ...WORDS, 'caf*', '"gamma ray"', '"init el"*', 'NAIVE'],
]);
/** Queries of ORs of ANDs of possibly negated atoms (the parser's own tests cover its syntax). */
const queryArb = fc
  .array(
    fc.array(
      fc.tuple(fc.boolean(), atom).map(([neg, t]) => (neg ? `-${t}` : t)),
      { minLength: 1, maxLength: 3 },
    ),
    { maxLength: 3 },
  )
  .map((cs) => cs.map((c) => (cs.length > 1 && c.length > 1 ? `(${c.join(' ')})` : c.join(' '))).join(' OR '));

const at = (m: StoreMatch) => (m.kind === 'entry' ? `e${m.row.idx}` : `g${m.gap.idx}:${m.gap.state}:${m.gap.erasure}`);

test('SQLite, partitioned SQLite, memory and PostgreSQL stores give the same answers on the same random rows and queries', async () => {
  // How many of the comparisons had something to compare (so the property cannot pass vacuously).
  let entries = 0;
  let gaps = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(rowArb, { minLength: 1, maxLength: 40 }),
      fc.array(queryArb, { minLength: 1, maxLength: 8 }),
      fc.subarray(['k1', 'k2', 'k3']),
      fc.oneof(
        { arbitrary: fc.constant([]), weight: 3 },
        { arbitrary: fc.subarray(['standard', 'audit', 'operational']), weight: 1 },
      ),
      async (gen, queries, erased, tiers) => {
        const stores: QueryStore[] = [
          await sqlite(),
          await memory(),
          await partitioned(8)(),
          ...(pgSkip ? [] : [await postgres()]),
        ];
        try {
          const rows = gen.flatMap((g, idx) => {
            if (g.skip) return [];
            const { dt, words, skip: _, ...fields } = g;
            const row: IndexRow = { idx, id: `e-${idx}`, time: T0 + dt * 1_000_000, received: T0 + idx, ...fields };
            return [{ row, text: words.join(' ') }];
          });
          for (const s of stores) {
            await s.insert({ rows, upto: gen.length });
            await s.deleteByKeys(erased, (k) => (k === 'k1' ? 'expired' : 'erased'));
            await s.insert({ rows: [], upto: gen.length + 1, links: [{ index: gen.length, keyIds: ['k2'] }] });
          }
          const [a, b, c, d] = stores as [QueryStore, QueryStore, QueryStore, QueryStore | undefined];
          for (const q of queries) {
            let sq: ReturnType<typeof storeQuery>;
            try {
              sq = storeQuery(q, tiers.length > 0 ? tiers : undefined, NOW);
            } catch (e) {
              if (e instanceof SteleError && e.code === 'bad_query') continue;
              throw e;
            }
            for (const page of [
              { limit: 100, order: 'asc' as const },
              { limit: 5, order: 'desc' as const, cursor: 30 },
              { limit: 100, order: 'desc' as const, bound: 10 },
            ]) {
              const want = (await a.search(sq, page)).map(at);
              assert.deepEqual((await b.search(sq, page)).map(at), want, `${q} ${JSON.stringify(page)}`);
              assert.deepEqual((await c.search(sq, page)).map(at), want, `partitioned: ${q} ${JSON.stringify(page)}`);
              if (d) assert.deepEqual((await d.search(sq, page)).map(at), want, `postgres: ${q} ${JSON.stringify(page)}`);
            }
            const count = await a.count(sq);
            assert.deepEqual(await b.count(sq), count, q);
            assert.deepEqual(await c.count(sq), count, `partitioned: ${q}`);
            if (d) assert.deepEqual(await d.count(sq), count, `postgres: ${q}`);
            entries += count.entries;
            gaps += count.gaps;
            // The summary of every driver, from its span's buckets, is the same (and counts the entries).
            const summary = async (s: QueryStore) => {
              const span = await s.timeSpan(sq);
              const bs = span ? bucketsFor(span, 7) : null;
              const t = emptyTally();
              for await (const part of s.tally(sq, bs)) addTally(t, part);
              return summarize(t, bs, 3);
            };
            const want = await summary(a);
            assert.equal(want.entries, count.entries, q);
            assert.deepEqual(await summary(b), want, `memory summary: ${q}`);
            assert.deepEqual(await summary(c), want, `partitioned summary: ${q}`);
            if (d) assert.deepEqual(await summary(d), want, `postgres summary: ${q}`);
          }
          const keys = (await a.keysOfActors(['alice', 'bob'])).sort();
          assert.deepEqual((await b.keysOfActors(['alice', 'bob'])).sort(), keys);
          assert.deepEqual((await c.keysOfActors(['alice', 'bob'])).sort(), keys);
          if (d) assert.deepEqual((await d.keysOfActors(['alice', 'bob'])).sort(), keys);
        } finally {
          for (const s of stores) await s.close();
        }
      },
    ),
    { numRuns: 150 },
  );
  assert.ok(entries > 500 && gaps > 50, `${entries} entries and ${gaps} gaps matched`);
});
