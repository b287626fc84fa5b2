import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { createPrivate } from '../../core/durable.js';
import { type IndexRow, NOTE_FIELDS } from '../../event/searchable.js';
import { type Buckets, emptyTally, type Tally } from '../../index/aggregate.js';
import type {
  ErasureLink,
  GapRow,
  IndexBatch,
  Order,
  QueryStore,
  SearchPage,
  StoreMatch,
  StoreQuery,
} from '../../index/query-store.js';
import { CODED_COLUMNS, SCHEMA_SQL, SCHEMA_VERSION } from './query-schema.js';
import { type CompiledQuery, compileStoreQuery } from './query-sql.js';
import { type StoredRow, Terms } from './query-terms.js';

/** Entries a field query looks at in log order before it asks the indexes (about 2 ms when none match). */
const PROBE_ROWS = 16_384;

/** `q` within a bounded scan: at or after `bound` (desc), before it (asc). */
function bounded(q: CompiledQuery, bound: number, order: Order): CompiledQuery {
  return { ...q, where: `(${q.where}) AND e.idx ${order === 'desc' ? '>=' : '<'} ?`, params: [...q.params, bound] };
}

/** The columns of `entries` (IndexRow), in schema order. */
export const COLUMNS = ['idx', ...NOTE_FIELDS] as const;

/**
 * The SQLite query store (the fs driver's; schema in query-schema.ts, queries compiled by
 * query-sql.ts): a cache of the log's readable entries, rebuilt by `stele reindex`.
 * Writes are batched in transactions with synchronous=NORMAL (a crash may lose the last batches;
 * the server re-indexes from `upto` on start). Deletions scrub: secure_delete for the tables,
 * FTS5's secure-delete plus a merge for the tokens (see scrubStep), and a WAL checkpoint(TRUNCATE).
 */
export class SqliteQueryStore implements QueryStore {
  private readonly db: Database.Database;
  private readonly insertRow: Database.Statement;
  private readonly insertText: Database.Statement;
  private readonly insertGap: Database.Statement;
  private readonly setUpto: Database.Statement;
  private readonly totalChanges: Database.Statement;
  private readonly linkGaps: Database.Statement;
  private readonly terms: Terms;

  /** `cacheMiB`: the page cache's bound (default 256; a partition only searched needs less). */
  constructor(path: string, opts: { cacheMiB?: number } = {}) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = SqliteQueryStore.openFile(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('secure_delete = ON');
    this.db.pragma('busy_timeout = 5000');
    // The WAL file keeps the size of the largest batch it took unless told to shrink back after
    // a checkpoint (4 MiB: a batch of 10,000 rows writes more, so it grows and shrinks each time).
    this.db.pragma('journal_size_limit = 4194304');
    // 256 MiB of page cache (SQLite's default is 2 MiB): an insert writes a leaf page of each index
    // and of the FTS segments; at 1M entries the pages a batch touches no longer fit in 2 MiB
    // (schema 4 at 1M: 12,700 rows/s with it, 9,700 without; BENCHMARKS.md, bench:index).
    this.db.pragma(`cache_size = -${(opts.cacheMiB ?? 256) * 1024}`);
    // A new file only: reopening a partition to search it writes nothing.
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'meta'").get()) {
      this.db.exec(SCHEMA_SQL);
      this.db.prepare("INSERT INTO meta (k, v) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    }
    // Plain INSERT: each index is indexed once (callers skip what is below upto), and OR REPLACE
    // would cost 3x per row.
    this.insertRow = this.db.prepare(`INSERT INTO entries (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`);
    this.insertText = this.db.prepare('INSERT INTO fts (rowid, text) VALUES (?, ?)');
    this.insertGap = this.db.prepare(
      'INSERT OR REPLACE INTO gaps (idx, time, tier, state, key_id, erasure) VALUES (@idx, @time, @tier, @state, @key_id, @erasure)',
    );
    this.setUpto = this.db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES ('upto', ?)");
    this.totalChanges = this.db.prepare('SELECT total_changes() AS n');
    this.linkGaps = this.db.prepare('UPDATE gaps SET erasure = ? WHERE key_id = ? AND erasure IS NULL AND idx < ?');
    this.terms = new Terms(this.db);
  }

  /** `fn` in one transaction; the terms' cache and counts are dropped if it rolls back. */
  private tx<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      this.terms.reset();
      throw err;
    }
  }

  /** Rows as read (coded columns as term ids) to IndexRow. */
  private decoded(rows: unknown[]): IndexRow[] {
    return (rows as StoredRow[]).map((r) => this.terms.decode(r));
  }

  /**
   * Opens the store file; one made by another schema version is deleted first (it is a cache: the
   * server refills it from the log and the key store, as `stele reindex` would).
   */
  private static openFile(path: string): Database.Database {
    createPrivate(path);
    const db = new Database(path);
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
    const version = hasMeta
      ? (db.prepare("SELECT v FROM meta WHERE k = 'schema'").get() as { v: string } | undefined)?.v
      : undefined;
    if (version === undefined || version === String(SCHEMA_VERSION)) return db;
    db.close();
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
    createPrivate(path);
    return new Database(path);
  }

  private meta(k: string): string | undefined {
    return (this.db.prepare('SELECT v FROM meta WHERE k = ?').get(k) as { v: string } | undefined)?.v;
  }

  async upto(): Promise<number> {
    return Number(this.meta('upto') ?? 0);
  }

  /** One transaction (synchronous: the benchmark's build times it alone). */
  insertSync({ rows, gaps = [], links = [], upto }: IndexBatch): void {
    this.tx(() => {
      for (const r of rows) {
        this.insertRow.run(this.terms.values(r.row));
        this.insertText.run(r.row.idx, r.text);
        this.held?.add(r.row.tier);
      }
      if (rows.length) this.facetCache.clear();
      this.terms.flush();
      for (const g of gaps) this.insertGap.run(g);
      for (const l of links) this.link(l);
      this.setUpto.run(String(upto));
    });
  }

  async insert(batch: IndexBatch): Promise<void> {
    this.insertSync(batch);
  }

  private link(l: ErasureLink): void {
    for (const id of l.keyIds) this.linkGaps.run(l.index, id, l.index);
  }

  /** Links gaps to erasures (as insert does) without moving upto: for a partition behind the newest. */
  linkSync(links: readonly ErasureLink[]): void {
    if (!links.length) return;
    this.tx(() => {
      for (const l of links) this.link(l);
    });
  }

  /**
   * A page of matches in log order. Full text streams from FTS5 in rowid order. Field queries
   * first look at the newest (or, ascending, oldest) PROBE_ROWS entries past the cursor in log
   * order, which answers common matches (`outcome:success`, a busy actor) in a millisecond; when
   * that window holds fewer than a page, the indexes find the matching indices (a covering index
   * scan plus a sort of integers, not of whole rows) and only the page's rows are read.
   */
  searchEntries(query: CompiledQuery, page: SearchPage): IndexRow[] {
    const q = page.bound === undefined ? query : bounded(query, page.bound, page.order);
    const cols = COLUMNS.map((c) => `e.${c}`).join(', ');
    const dir = page.order === 'desc' ? 'DESC' : 'ASC';
    const after = page.cursor === undefined ? '' : page.order === 'desc' ? ' AND e.idx < ?' : ' AND e.idx > ?';
    const cursor = page.cursor === undefined ? [] : [page.cursor];
    if (q.match !== null) {
      // Ordering by the FTS rowid (the same number) lets FTS5 stream matches in order instead of sorting them.
      const sql = `SELECT ${cols} FROM fts JOIN entries e ON e.idx = fts.rowid WHERE fts MATCH ? AND (${q.where})${after} ORDER BY fts.rowid ${dir} LIMIT ?`;
      return this.decoded(this.db.prepare(sql).all(q.match, ...q.params, ...cursor, page.limit));
    }
    const probed = this.probe(q, page, cols);
    if (probed) return probed;
    const sql =
      `SELECT ${cols} FROM entries e WHERE e.idx IN ` +
      `(SELECT e.idx FROM entries e WHERE (${q.where})${after} ORDER BY e.idx ${dir} LIMIT ?) ORDER BY e.idx ${dir}`;
    return this.decoded(this.db.prepare(sql).all(...q.params, ...cursor, page.limit));
  }

  /** searchEntries merged with the gaps the query matches (compileStoreQuery says which). */
  async search(sq: StoreQuery, page: SearchPage): Promise<StoreMatch[]> {
    const c = compileStoreQuery(sq);
    if (c === null) return [];
    const rows: StoreMatch[] = this.searchEntries(c.entries, page).map((row) => ({ kind: 'entry', row }));
    const gq = c.gaps;
    if (gq === null) return rows;
    const gaps: StoreMatch[] = this.searchGaps(gq, page).map((gap) => ({ kind: 'gap', gap }));
    if (gaps.length === 0) return rows;
    const at = (m: StoreMatch) => (m.kind === 'entry' ? m.row.idx : m.gap.idx);
    const sign = page.order === 'desc' ? -1 : 1;
    return [...rows, ...gaps].sort((a, b) => sign * (at(a) - at(b))).slice(0, page.limit);
  }

  private searchGaps(gq: CompiledQuery, page: SearchPage): GapRow[] {
    const conds = [`(${gq.where})`];
    const params = [...gq.params];
    if (page.cursor !== undefined) {
      conds.push(page.order === 'desc' ? 'e.idx < ?' : 'e.idx > ?');
      params.push(page.cursor);
    }
    if (page.bound !== undefined) {
      conds.push(page.order === 'desc' ? 'e.idx >= ?' : 'e.idx < ?');
      params.push(page.bound);
    }
    const sql = `SELECT e.idx, e.time, e.tier, e.state, e.key_id, e.erasure FROM gaps e WHERE ${conds.join(' AND ')} ORDER BY e.idx ${page.order === 'desc' ? 'DESC' : 'ASC'} LIMIT ?`;
    return this.db.prepare(sql).all(...params, page.limit) as GapRow[];
  }

  async count(sq: StoreQuery): Promise<{ entries: number; gaps: number }> {
    const c = compileStoreQuery(sq);
    if (c === null) return { entries: 0, gaps: 0 };
    const gq = c.gaps;
    const gaps =
      gq === null
        ? 0
        : (this.db.prepare(`SELECT count(*) AS n FROM gaps e WHERE (${gq.where})`).get(...gq.params) as { n: number }).n;
    return { entries: this.countEntries(c.entries), gaps };
  }

  /** The page from the PROBE_ROWS entries next in log order, if they hold a whole page or are all there is. */
  private probe(q: CompiledQuery, page: SearchPage, cols: string): IndexRow[] | null {
    // Two subqueries: SQLite reads min() or max() off the end of the rowid tree only when it is
    // alone in its query (together they scan the whole table: 590 ms at 10M entries).
    const ends = this.db.prepare('SELECT (SELECT min(idx) FROM entries) AS lo, (SELECT max(idx) FROM entries) AS hi').get() as {
      lo: number | null;
      hi: number | null;
    };
    if (ends.lo === null || ends.hi === null) return [];
    let lo: number;
    let hi: number; // [lo, hi)
    if (page.order === 'desc') {
      hi = Math.min(page.cursor ?? ends.hi + 1, ends.hi + 1);
      lo = hi - PROBE_ROWS;
    } else {
      lo = Math.max(page.cursor === undefined ? ends.lo : page.cursor + 1, ends.lo);
      hi = lo + PROBE_ROWS;
    }
    // NOT INDEXED: walk the window in log order rather than let the planner pick a field index.
    const sql = `SELECT ${cols} FROM entries e NOT INDEXED WHERE (${q.where}) AND e.idx >= ? AND e.idx < ? ORDER BY e.idx ${page.order === 'desc' ? 'DESC' : 'ASC'} LIMIT ?`;
    const rows = this.decoded(this.db.prepare(sql).all(...q.params, lo, hi, page.limit));
    const whole = page.order === 'desc' ? lo <= ends.lo : hi > ends.hi;
    return rows.length === page.limit || whole ? rows : null;
  }

  /** The tiers of this file's entries (after deletions, a superset): found once, then kept up by inserts. */
  private held: Set<string> | null = null;

  /**
   * `sq` without its tier filter when every tier this file holds passes it. A tally over a whole
   * file would only pay for it: `tier IN (…)` keeps the covering indexes from answering (an
   * unfiltered 1M-entry file: 2.6 s with the filter, 0.7 s without).
   */
  private withoutNeedlessTiers(sq: StoreQuery): StoreQuery {
    if (!sq.tiers) return sq;
    this.held ??= new Set(this.db.prepare('SELECT DISTINCT tier FROM entries').pluck().all() as string[]);
    const allowed = new Set(sq.tiers);
    for (const t of this.held) if (!allowed.has(t)) return sq;
    const { tiers: _, ...all } = sq;
    return all;
  }

  /** The entries' rows a compiled query matches, as `FROM … WHERE …` and its parameters. */
  private matching(q: CompiledQuery): [string, (string | number)[]] {
    return q.match !== null
      ? [`FROM fts JOIN entries e ON e.idx = fts.rowid WHERE fts MATCH ? AND (${q.where})`, [q.match, ...q.params]]
      : [`FROM entries e WHERE (${q.where})`, q.params];
  }

  async timeSpan(sq: StoreQuery): Promise<{ min: number; max: number } | null> {
    const c = compileStoreQuery(this.withoutNeedlessTiers(sq));
    if (c === null) return null;
    const [from, params] = this.matching(c.entries);
    // Two subqueries: alone in its query, each can read its end of entries_time when the query allows.
    const r = this.db
      .prepare(`SELECT (SELECT min(e.time) ${from}) AS lo, (SELECT max(e.time) ${from}) AS hi`)
      .get(...params, ...params) as { lo: number | null; hi: number | null };
    return r.lo === null || r.hi === null ? null : { min: r.lo, max: r.hi };
  }

  /**
   * Facet counts of this file's latest tallies, by query: a file that takes no more entries (an
   * older partition) answers them again without reading its rows. Emptied by every insert and
   * deletion, so nothing erased is ever counted (or named) from here.
   */
  private readonly facetCache = new Map<string, Pick<Tally, 'entries' | 'facets'>>();

  async *tally(sq: StoreQuery, b: Buckets | null): AsyncGenerator<Tally> {
    yield this.tallySync(sq, b);
  }

  /**
   * GROUP BYs rather than one pass: actor and (outcome, action) are read off their covering
   * indexes, one scan counts source and tier, and the histogram reads entries_time (an unfiltered
   * 1M-entry file: 0.7 s, against 1.2 s for a pass over the rows in JavaScript and 1.8 s for one
   * GROUP BY of every facet together). The facets are kept (facetCache); the histogram, whose
   * buckets follow the matches' span, is counted each time.
   */
  tallySync(sq: StoreQuery, b: Buckets | null): Tally {
    const out = emptyTally();
    const c = compileStoreQuery(this.withoutNeedlessTiers(sq));
    if (c === null) return out;
    const [from, params] = this.matching(c.entries);
    const rows = (sql: string, pre: (string | number)[] = []) =>
      this.db
        .prepare(sql)
        .raw()
        .all(...pre, ...params) as number[][];
    const key = JSON.stringify([from, params]);
    let counted = this.facetCache.get(key);
    if (!counted) {
      counted = this.facets(from, rows);
      if (this.facetCache.size >= 32) this.facetCache.delete(this.facetCache.keys().next().value as string);
      this.facetCache.set(key, counted);
    }
    out.entries = counted.entries;
    out.facets = { ...counted.facets };
    if (b)
      // Integer division (better-sqlite3 binds numbers as REAL); a bucket before the origin (an
      // entry indexed after the span was taken) is -1, not truncated to 0.
      out.histogram = rows(
        `SELECT CASE WHEN e.time < ? THEN -1 ELSE (e.time - CAST(? AS INTEGER)) / CAST(? AS INTEGER) END, count(*) ${from} GROUP BY 1`,
        [b.origin, b.origin, b.width],
      ) as [number, number][];
    return out;
  }

  /** The matches (`from`: FROM … WHERE …, whose parameters `rows` binds) counted in all and by each facet's value. */
  private facets(from: string, rows: (sql: string) => unknown[][]): Pick<Tally, 'entries' | 'facets'> {
    const out = emptyTally();
    const term = (id: number) => this.terms.value(id);
    const count = (sql: string, keys: ((r: unknown[]) => string)[]) => {
      const ms = keys.map(() => new Map<string, number>());
      for (const r of rows(sql)) {
        const n = r.at(-1) as number;
        keys.forEach((k, i) => {
          const m = ms[i] as Map<string, number>;
          const v = k(r);
          m.set(v, (m.get(v) ?? 0) + n);
        });
      }
      return ms.map((m) => [...m]);
    };
    [out.facets.actor] = count(`SELECT e.actor, count(*) ${from} GROUP BY 1`, [(r) => term(r[0] as number)]) as [
      [string, number][],
    ];
    [out.facets.outcome, out.facets.action] = count(`SELECT e.outcome, e.action, count(*) ${from} GROUP BY 1, 2`, [
      (r) => term(r[0] as number),
      (r) => term(r[1] as number),
    ]) as [[string, number][], [string, number][]];
    [out.facets.source, out.facets.tier] = count(`SELECT e.source, e.tier, count(*) ${from} GROUP BY 1, 2`, [
      (r) => term(r[0] as number),
      (r) => r[1] as string,
    ]) as [[string, number][], [string, number][]];
    out.entries = out.facets.tier.reduce((n, [, c]) => n + c, 0);
    return out;
  }

  /** Number of entries a compiled query matches. */
  countEntries(q: CompiledQuery): number {
    const [from, params] = this.matching(q);
    return (this.db.prepare(`SELECT count(*) AS n ${from}`).get(...params) as { n: number }).n;
  }

  /** Data keys that seal entries of any of these actors (legal holds by actor keep them). */
  async keysOfActors(actors: readonly string[]): Promise<string[]> {
    const st = this.db
      .prepare('SELECT DISTINCT key_id FROM entries WHERE actor = (SELECT id FROM terms WHERE value = ?) AND key_id IS NOT NULL')
      .pluck();
    const out = new Set<string>();
    for (const a of actors) for (const id of st.all(a) as number[]) out.add(this.terms.value(id));
    return [...out];
  }

  async deleteByKeys(keyIds: readonly string[], state: (keyId: string) => 'expired' | 'erased'): Promise<number> {
    this.facetCache.clear();
    const select = this.db.prepare(
      `SELECT idx, received, tier, ${CODED_COLUMNS.join(', ')} FROM entries WHERE key_id = (SELECT id FROM terms WHERE value = ?) LIMIT 10000`,
    );
    const delRow = this.db.prepare('DELETE FROM entries WHERE idx = ?');
    const delText = this.db.prepare('DELETE FROM fts WHERE rowid = ?');
    let n = 0;
    for (const k of keyIds) {
      const s = state(k);
      for (;;) {
        // Bounded transactions: a day of a busy tier can be millions of rows.
        const done = this.tx(() => {
          const rows = select.all(k) as (StoredRow & { idx: number; received: number; tier: string })[];
          for (const r of rows) {
            delRow.run(r.idx);
            delText.run(r.idx);
            this.terms.release(r);
            this.insertGap.run({ idx: r.idx, time: r.received, tier: r.tier, state: s, key_id: k, erasure: null });
          }
          this.terms.flush();
          return rows.length;
        });
        n += done;
        if (done === 0) break;
      }
    }
    return n;
  }

  /**
   * One bounded step of merging the full-text index's segments; false once there is nothing left
   * to merge. FTS5's secure-delete drops a deleted row's postings but can leave a term no row uses
   * any more in its segment, so a unique word would still be on disk; merging rewrites the segments
   * without it. In steps (tens of ms each) so searches and indexing go on in between.
   */
  async scrubStep(): Promise<boolean> {
    const before = this.totalChanges.get() as { n: number };
    this.db.exec("INSERT INTO fts (fts, rank) VALUES ('merge', -200)");
    return (this.totalChanges.get() as { n: number }).n - before.n > 1;
  }

  /** Removes the WAL's old page images (after deletions, so nothing deleted survives there). */
  async scrubbed(): Promise<void> {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** Refreshes the planner's statistics (after bulk loads). */
  async optimize(): Promise<void> {
    this.optimizeSync();
  }

  optimizeSync(): void {
    this.db.pragma('optimize');
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
