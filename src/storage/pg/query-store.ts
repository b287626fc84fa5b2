/**
 * The query store in PostgreSQL (tables in schema.ts, queries compiled by query-sql.ts): the same
 * answers as the SQLite store (the conformance suite and its differential test hold them to it),
 * in a database every node can reach. Entries are partitioned by index range (PARTITION_ENTRIES a
 * partition, made on first use): B-trees stay small, and an erasure rewrites only the partitions
 * that held the destroyed entries. Deleting rows leaves their old versions in the table files
 * until those are rewritten, so scrubStep rewrites each touched partition (VACUUM FULL); which ones
 * is kept in stele_q_scrub with the deletion, so a crash in between still has them rewritten.
 */
import type { IndexRow } from '../../event/searchable.js';
import { NOTE_FIELDS } from '../../event/searchable.js';
import { type Buckets, emptyTally, FACETS, type Tally } from '../../index/aggregate.js';
import { canMatchGaps } from '../../index/query.js';
import {
  type ErasureLink,
  type GapRow,
  type IndexBatch,
  type QueryStore,
  type SearchPage,
  StaleBatch,
  type StoreMatch,
  type StoreQuery,
} from '../../index/query-store.js';
import type { PgDatabase, Queryable } from './database.js';
import { compilePg, tsvectorOf } from './query-sql.js';

/** Entries a partition holds (as the fs driver's files: 2^20). */
export const PARTITION_ENTRIES = 2 ** 20;

/** Rows one transaction of deleteByKeys turns into tombstones at most. */
const DELETE_BATCH = 10_000;

/** A tombstone, replacing one of the same index (rows or a SELECT follow, then GAP_REPLACES). */
const GAP_UPSERT = 'INSERT INTO stele_q_gaps (idx, time, tier, state, key_id, erasure)';
const GAP_REPLACES =
  'ON CONFLICT (idx) DO UPDATE SET time = EXCLUDED.time, tier = EXCLUDED.tier, state = EXCLUDED.state, key_id = EXCLUDED.key_id, erasure = EXCLUDED.erasure';

const COLS = ['idx', ...NOTE_FIELDS] as const;
/** Columns pg returns as text (int8) that a row holds as numbers. */
const BIG = new Set(['idx', 'time', 'received']);
/** Each column's array type for unnest. */
const ARRAY_TYPE: Record<(typeof COLS)[number], string> = {
  idx: 'bigint[]',
  id: 'text[]',
  time: 'bigint[]',
  received: 'bigint[]',
  actor: 'text[]',
  actor_type: 'text[]',
  on_behalf_of: 'text[]',
  verified: 'smallint[]',
  action: 'text[]',
  source: 'text[]',
  host: 'text[]',
  resource_type: 'text[]',
  resource_id: 'text[]',
  outcome: 'text[]',
  subject: 'text[]',
  tier: 'text[]',
  key_id: 'text[]',
  principal: 'text[]',
};

function entryRow(r: Record<string, unknown>): IndexRow {
  const out: Record<string, unknown> = {};
  for (const c of COLS) out[c] = BIG.has(c) ? Number(r[c]) : r[c];
  return out as unknown as IndexRow;
}

function gapRow(r: Record<string, unknown>): GapRow {
  return {
    idx: Number(r.idx),
    time: Number(r.time),
    tier: r.tier as string,
    state: r.state as GapRow['state'],
    key_id: r.key_id as string,
    erasure: r.erasure === null ? null : Number(r.erasure),
  };
}

export class PgQueryStore implements QueryStore {
  /** Partitions known to exist (by number). */
  private readonly made = new Set<number>();

  constructor(
    private readonly db: PgDatabase,
    private readonly partition = PARTITION_ENTRIES,
  ) {}

  async upto(): Promise<number> {
    const r = await this.db.query<{ v: string }>("SELECT v FROM stele_q_meta WHERE k = 'upto'");
    return Number(r.rows[0]?.v ?? 0);
  }

  private async makePartitions(c: Queryable, rows: readonly { row: IndexRow }[]): Promise<void> {
    for (const p of new Set(rows.map((r) => Math.floor(r.row.idx / this.partition)))) {
      if (this.made.has(p)) continue;
      // Two nodes may race to make it: the advisory lock of the transaction serialises them.
      await c.query('SELECT pg_advisory_xact_lock($1)', [0x73746571 + p]);
      await c.query(
        `CREATE TABLE IF NOT EXISTS stele_q_entries_${p} PARTITION OF stele_q_entries FOR VALUES FROM (${p * this.partition}) TO (${(p + 1) * this.partition})`,
      );
      this.made.add(p);
    }
  }

  async insert(batch: IndexBatch): Promise<void> {
    const { links = [], upto } = batch;
    await this.db.tx(async (c) => {
      // Written by one node at a time (the integrator lease's holder); a node that lost the lease
      // without knowing finds the store moved on and stores nothing.
      await c.query("INSERT INTO stele_q_meta (k, v) VALUES ('upto', '0') ON CONFLICT (k) DO NOTHING");
      const at = Number((await c.query<{ v: string }>("SELECT v FROM stele_q_meta WHERE k = 'upto' FOR UPDATE")).rows[0]?.v);
      if (batch.from !== undefined && at !== batch.from) throw new StaleBatch(at);
      const { rows, gaps } = await keepLive(c, batch.rows, batch.gaps ?? []);
      if (rows.length) {
        await this.makePartitions(c, rows);
        const cols = COLS.map((col) => rows.map((r) => r.row[col]));
        const texts = rows.map((r) => tsvectorOf(r.text));
        await c.query(
          `INSERT INTO stele_q_entries (${COLS.join(', ')}, tokens) SELECT * FROM unnest(${COLS.map((col, i) => `$${i + 1}::${ARRAY_TYPE[col]}`).join(', ')}, $${COLS.length + 1}::tsvector[])`,
          [...cols, texts],
        );
      }
      for (const g of gaps)
        await c.query(`${GAP_UPSERT} VALUES ($1, $2, $3, $4, $5, $6) ${GAP_REPLACES}`, [
          g.idx,
          g.time,
          g.tier,
          g.state,
          g.key_id,
          g.erasure,
        ]);
      for (const l of links) await link(c, l);
      await c.query("INSERT INTO stele_q_meta (k, v) VALUES ('upto', $1) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", [
        String(upto),
      ]);
    });
  }

  /** The query's conditions and the page's, for table `e`: [where, params]. */
  private page(q: StoreQuery, page: SearchPage): { where: string; params: unknown[]; dir: string } {
    const c = compilePg(q.root, q.nowMs);
    const conds = [c.where];
    const params = [...c.params];
    const bind = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (q.tiers) conds.push(`e.tier = ANY(${bind(q.tiers)}::text[])`);
    const desc = page.order === 'desc';
    if (page.cursor !== undefined) conds.push(`e.idx ${desc ? '<' : '>'} ${bind(page.cursor)}`);
    if (page.bound !== undefined) conds.push(`e.idx ${desc ? '>=' : '<'} ${bind(page.bound)}`);
    return { where: conds.map((x) => `(${x})`).join(' AND '), params, dir: desc ? 'DESC' : 'ASC' };
  }

  async search(q: StoreQuery, page: SearchPage): Promise<StoreMatch[]> {
    if (q.tiers?.length === 0) return [];
    const p = this.page(q, page);
    const limit = `LIMIT ${Math.max(0, Math.floor(page.limit))}`;
    const entries = await this.db.query(
      `SELECT ${COLS.join(', ')} FROM stele_q_entries e WHERE ${p.where} ORDER BY e.idx ${p.dir} ${limit}`,
      p.params,
    );
    const out: StoreMatch[] = entries.rows.map((r) => ({ kind: 'entry', row: entryRow(r) }));
    if (!canMatchGaps(q.root)) return out;
    const gaps = await this.db.query(
      `SELECT idx, time, tier, state, key_id, erasure FROM stele_q_gaps e WHERE ${p.where} ORDER BY e.idx ${p.dir} ${limit}`,
      p.params,
    );
    if (gaps.rows.length === 0) return out;
    const at = (m: StoreMatch) => (m.kind === 'entry' ? m.row.idx : m.gap.idx);
    const sign = page.order === 'desc' ? -1 : 1;
    return [...out, ...gaps.rows.map((r): StoreMatch => ({ kind: 'gap', gap: gapRow(r) }))]
      .sort((a, b) => sign * (at(a) - at(b)))
      .slice(0, page.limit);
  }

  async count(q: StoreQuery): Promise<{ entries: number; gaps: number }> {
    if (q.tiers?.length === 0) return { entries: 0, gaps: 0 };
    const p = this.page(q, { limit: 0, order: 'asc' });
    const n = async (table: string) =>
      Number((await this.db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} e WHERE ${p.where}`, p.params)).rows[0]?.n);
    return { entries: await n('stele_q_entries'), gaps: canMatchGaps(q.root) ? await n('stele_q_gaps') : 0 };
  }

  async timeSpan(q: StoreQuery): Promise<{ min: number; max: number } | null> {
    if (q.tiers?.length === 0) return null;
    const p = this.page(q, { limit: 0, order: 'asc' });
    const r = await this.db.query<{ lo: string | null; hi: string | null }>(
      `SELECT min(e.time) AS lo, max(e.time) AS hi FROM stele_q_entries e WHERE ${p.where}`,
      p.params,
    );
    const { lo, hi } = r.rows[0] ?? { lo: null, hi: null };
    return lo === null || hi === null ? null : { min: Number(lo), max: Number(hi) };
  }

  /** One pass with GROUPING SETS: each facet, and the buckets, counted over the same rows. */
  async *tally(q: StoreQuery, b: Buckets | null): AsyncGenerator<Tally> {
    const out = emptyTally();
    if (q.tiers?.length === 0) return yield out;
    const p = this.page(q, { limit: 0, order: 'asc' });
    const params = [...p.params];
    const bind = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const bucket = b ? `floor((e.time - ${bind(b.origin)}::bigint)::numeric / ${bind(b.width)}::bigint)::bigint` : '0::bigint';
    const r = await this.db.query<Record<string, string | null> & { k: string | null; n: string; g: number }>(
      `SELECT ${FACETS.map((f) => `e.${f}`).join(', ')}, ${bucket} AS k, count(*) AS n,
         GROUPING(${FACETS.map((f) => `e.${f}`).join(', ')}, ${bucket}) AS g
       FROM stele_q_entries e WHERE ${p.where}
       GROUP BY GROUPING SETS (${[...FACETS.map((f) => `(e.${f})`), `(${bucket})`].join(', ')})`,
      params,
    );
    // GROUPING's bits, first argument highest: the one column grouped by has its bit clear.
    const all = (1 << (FACETS.length + 1)) - 1;
    for (const row of r.rows) {
      const n = Number(row.n);
      const by = FACETS.length - Math.log2(all ^ row.g); // 0..FACETS.length-1 a facet, FACETS.length the bucket
      const f = FACETS[by];
      if (f) out.facets[f].push([String(row[f]), n]);
      else {
        out.entries += n;
        if (b) out.histogram.push([Number(row.k), n]);
      }
    }
    yield out;
  }

  async keysOfActors(actors: readonly string[]): Promise<string[]> {
    const r = await this.db.query<{ key_id: string }>(
      'SELECT DISTINCT key_id FROM stele_q_entries WHERE actor = ANY($1::text[]) AND key_id IS NOT NULL',
      [actors],
    );
    return r.rows.map((x) => x.key_id);
  }

  async deleteByKeys(keyIds: readonly string[], state: (keyId: string) => 'expired' | 'erased'): Promise<number> {
    let n = 0;
    for (const k of keyIds) {
      for (;;) {
        // One statement a batch: the rows go, their tombstones come, and their partitions are
        // noted for the scrub. Bounded, as a day of a busy tier can be millions of rows.
        const done = await this.db.tx(async (c) => {
          const r = await c.query<{ idx: string }>(
            `WITH gone AS (
               DELETE FROM stele_q_entries WHERE idx IN (SELECT idx FROM stele_q_entries WHERE key_id = $1 LIMIT ${DELETE_BATCH})
               RETURNING idx, received, tier
             )
             ${GAP_UPSERT} SELECT idx, received, tier, $2, $1, NULL FROM gone ${GAP_REPLACES} RETURNING idx`,
            [k, state(k)],
          );
          const parts = [...new Set(r.rows.map((row) => Math.floor(Number(row.idx) / this.partition)))];
          if (parts.length)
            await c.query('INSERT INTO stele_q_scrub (part) SELECT unnest($1::integer[]) ON CONFLICT DO NOTHING', [parts]);
          return r.rows.length;
        });
        n += done;
        if (done < DELETE_BATCH) break;
      }
    }
    return n;
  }

  /** Rewrites one partition that lost rows (VACUUM FULL), so the deleted rows' old versions leave its files. */
  async scrubStep(): Promise<boolean> {
    const parts = (await this.db.query<{ part: number }>('SELECT part FROM stele_q_scrub ORDER BY part LIMIT 2')).rows;
    const p = parts[0]?.part;
    if (p === undefined) return false;
    await this.db.query(`VACUUM FULL stele_q_entries_${p}`);
    await this.db.query('DELETE FROM stele_q_scrub WHERE part = $1', [p]);
    return parts.length > 1;
  }

  async scrubbed(): Promise<void> {}

  async optimize(): Promise<void> {
    await this.db.query('ANALYZE stele_q_entries');
  }

  async close(): Promise<void> {}
}

/**
 * The rows whose data keys are still active, the others turned into tombstones. The indexer read
 * its keys from a cache that may lag an erasure on another node; the share lock on the key rows
 * makes a destruction either come first (seen here) or wait for this commit (and then delete these
 * rows), so no row of a destroyed key is left behind.
 */
async function keepLive(
  c: Queryable,
  rows: IndexBatch['rows'],
  gaps: readonly GapRow[],
): Promise<{ rows: IndexBatch['rows']; gaps: readonly GapRow[] }> {
  const ids = [...new Set(rows.map((r) => r.row.key_id).filter((k): k is string => k !== null))];
  if (ids.length === 0) return { rows, gaps };
  const r = await c.query<{ id: string; state: string }>(
    'SELECT id, state FROM stele_keys WHERE id = ANY($1::text[]) FOR SHARE',
    [ids],
  );
  const dead = new Map(r.rows.filter((k) => k.state !== 'active').map((k) => [k.id, k.state as GapRow['state']]));
  if (dead.size === 0) return { rows, gaps };
  const live = rows.filter((x) => x.row.key_id === null || !dead.has(x.row.key_id));
  const gone = rows
    .filter((x) => x.row.key_id !== null && dead.has(x.row.key_id))
    .map(
      (x): GapRow => ({
        idx: x.row.idx,
        time: x.row.received,
        tier: x.row.tier,
        state: dead.get(x.row.key_id as string) as GapRow['state'],
        key_id: x.row.key_id as string,
        erasure: null,
      }),
    );
  return { rows: live, gaps: [...gaps, ...gone] };
}

async function link(c: Queryable, l: ErasureLink): Promise<void> {
  await c.query('UPDATE stele_q_gaps SET erasure = $1 WHERE key_id = ANY($2::text[]) AND erasure IS NULL AND idx < $1', [
    l.index,
    l.keyIds,
  ]);
}
