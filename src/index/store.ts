import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { createPrivate } from '../core/durable.js';
import type { IndexRow } from './extract.js';
import type { CompiledQuery } from './query.js';
import { SCHEMA_SQL, SCHEMA_VERSION } from './schema.js';

export type Order = 'desc' | 'asc';

/** One `gaps` row (schema.ts): an entry whose data key was destroyed. */
export interface GapRow {
  idx: number;
  /** The leaf's received (µs). */
  time: number;
  tier: string;
  state: 'expired' | 'erased';
  key_id: string;
  erasure: number | null;
}

/** What a search finds in the store: a readable entry's row, or the tombstone of a destroyed one. */
export type StoreMatch = { kind: 'entry'; row: IndexRow } | { kind: 'gap'; gap: GapRow };

/** How a stele.erasure / stele.retention.run entry names the keys it destroyed (see linkErasure). */
export type ErasureLink =
  | { kind: 'erasure'; index: number; received: number; subjectHash: string }
  | { kind: 'expiry'; index: number; received: number; slots: { tier: string; day: string }[] };

/** A stele.erasure / stele.retention.run entry and the keys it destroyed (worked out from an ErasureLink). */
export interface GapLink {
  index: number;
  keyIds: readonly string[];
}

export interface SearchPage {
  /** Only entries before (desc) or after (asc) this index: the previous page's last. */
  cursor?: number;
  limit: number;
  order: Order;
  /** Only entries at or after (desc) or before (asc) this index: the end of a bounded scan. */
  bound?: number;
}

/** Entries a field query looks at in log order before it asks the indexes (about 2 ms when none match). */
export const PROBE_ROWS = 16_384;

/** `q` within a bounded scan: at or after `bound` (desc), before it (asc). */
function bounded(q: CompiledQuery, bound: number, order: Order): CompiledQuery {
  return { ...q, where: `(${q.where}) AND e.idx ${order === 'desc' ? '>=' : '<'} ?`, params: [...q.params, bound] };
}

/** The columns of `entries` (IndexRow), in schema order. */
export const COLUMNS = [
  'idx',
  'id',
  'time',
  'received',
  'actor',
  'actor_type',
  'on_behalf_of',
  'verified',
  'action',
  'source',
  'host',
  'resource_type',
  'resource_id',
  'outcome',
  'subject',
  'tier',
  'key_id',
  'principal',
] as const;

/**
 * The SQLite query store: a cache of the log's readable entries, rebuilt by `stele reindex`.
 * Writes are batched in transactions with synchronous=NORMAL (a crash may lose the last batches;
 * the server re-indexes from `upto` on start). Deletions scrub: secure_delete for the tables,
 * FTS5's secure-delete plus a merge for the tokens (see mergeStep), and a WAL checkpoint(TRUNCATE).
 */
export class IndexStore {
  private readonly db: Database.Database;
  private readonly insertRow: Database.Statement;
  private readonly insertText: Database.Statement;
  private readonly insertGap: Database.Statement;
  private readonly setUpto: Database.Statement;
  private readonly totalChanges: Database.Statement;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = IndexStore.openFile(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('secure_delete = ON');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA_SQL);
    if (this.meta('schema') === undefined) {
      this.db.prepare("INSERT INTO meta (k, v) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    }
    // Plain INSERT: each index is indexed once (callers skip what is below upto), and OR REPLACE
    // would cost 3x per row.
    this.insertRow = this.db.prepare(
      `INSERT INTO entries (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')})`,
    );
    this.insertText = this.db.prepare('INSERT INTO fts (rowid, text) VALUES (?, ?)');
    this.insertGap = this.db.prepare(
      'INSERT OR REPLACE INTO gaps (idx, time, tier, state, key_id, erasure) VALUES (@idx, @time, @tier, @state, @key_id, @erasure)',
    );
    this.setUpto = this.db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES ('upto', ?)");
    this.totalChanges = this.db.prepare('SELECT total_changes() AS n');
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

  /** Entries [0, upto) have been indexed (or were unreadable). */
  upto(): number {
    return Number(this.meta('upto') ?? 0);
  }

  /**
   * Indexes rows and tombstones, links erasures (after the rows, so gaps of the same batch are
   * linked), and records that everything before `upto` is done, in one transaction.
   */
  insert(
    rows: readonly { row: IndexRow; text: string }[],
    upto: number,
    gaps: readonly GapRow[] = [],
    links: readonly GapLink[] = [],
  ): void {
    this.db.transaction(() => {
      for (const r of rows) {
        this.insertRow.run(r.row);
        this.insertText.run(r.row.idx, r.text);
      }
      for (const g of gaps) this.insertGap.run(g);
      for (const l of links) this.link(l);
      this.setUpto.run(String(upto));
    })();
  }

  /** Records entry `l.index` as what destroyed the keys of the unlinked gaps before it. */
  private link(l: GapLink): void {
    const upd = this.db.prepare('UPDATE gaps SET erasure = ? WHERE key_id = ? AND erasure IS NULL AND idx < ?');
    for (const id of l.keyIds) upd.run(l.index, id, l.index);
  }

  /**
   * A page of matches in log order. Full text streams from FTS5 in rowid order. Field queries
   * first look at the newest (or, ascending, oldest) PROBE_ROWS entries past the cursor in log
   * order, which answers common matches (`outcome:success`, a busy actor) in a millisecond; when
   * that window holds fewer than a page, the indexes find the matching indices (a covering index
   * scan plus a sort of integers, not of whole rows) and only the page's rows are read.
   */
  search(query: CompiledQuery, page: SearchPage): IndexRow[] {
    const q = page.bound === undefined ? query : bounded(query, page.bound, page.order);
    const cols = COLUMNS.map((c) => `e.${c}`).join(', ');
    const dir = page.order === 'desc' ? 'DESC' : 'ASC';
    const after = page.cursor === undefined ? '' : page.order === 'desc' ? ' AND e.idx < ?' : ' AND e.idx > ?';
    const cursor = page.cursor === undefined ? [] : [page.cursor];
    if (q.match !== null) {
      // Ordering by the FTS rowid (the same number) lets FTS5 stream matches in order instead of sorting them.
      const sql = `SELECT ${cols} FROM fts JOIN entries e ON e.idx = fts.rowid WHERE fts MATCH ? AND (${q.where})${after} ORDER BY fts.rowid ${dir} LIMIT ?`;
      return this.db.prepare(sql).all(q.match, ...q.params, ...cursor, page.limit) as IndexRow[];
    }
    const probed = this.probe(q, page, cols);
    if (probed) return probed;
    const sql =
      `SELECT ${cols} FROM entries e WHERE e.idx IN ` +
      `(SELECT e.idx FROM entries e WHERE (${q.where})${after} ORDER BY e.idx ${dir} LIMIT ?) ORDER BY e.idx ${dir}`;
    return this.db.prepare(sql).all(...q.params, ...cursor, page.limit) as IndexRow[];
  }

  /**
   * A page of entries and gaps in log order: search() merged with the gaps `gq` matches (null: the
   * query tests the content of events, which a gap has none of, so it matches no gap).
   */
  searchWithGaps(q: CompiledQuery, gq: CompiledQuery | null, page: SearchPage): StoreMatch[] {
    const rows: StoreMatch[] = this.search(q, page).map((row) => ({ kind: 'entry', row }));
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

  /** Number of gaps a gap query matches. */
  countGaps(gq: CompiledQuery): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM gaps e WHERE (${gq.where})`).get(...gq.params) as { n: number }).n;
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
    const rows = this.db.prepare(sql).all(...q.params, lo, hi, page.limit) as IndexRow[];
    const whole = page.order === 'desc' ? lo <= ends.lo : hi > ends.hi;
    return rows.length === page.limit || whole ? rows : null;
  }

  /** Number of entries a query matches. */
  count(q: CompiledQuery): number {
    const sql =
      q.match !== null
        ? `SELECT count(*) AS n FROM fts JOIN entries e ON e.idx = fts.rowid WHERE fts MATCH ? AND (${q.where})`
        : `SELECT count(*) AS n FROM entries e WHERE (${q.where})`;
    const params = q.match !== null ? [q.match, ...q.params] : q.params;
    return (this.db.prepare(sql).get(...params) as { n: number }).n;
  }

  /** Data keys that seal entries of any of these actors (legal holds by actor keep them). */
  keysOfActors(actors: readonly string[]): string[] {
    const st = this.db.prepare('SELECT DISTINCT key_id FROM entries WHERE actor = ? AND key_id IS NOT NULL');
    const out = new Set<string>();
    for (const a of actors) for (const r of st.all(a) as { key_id: string }[]) out.add(r.key_id);
    return [...out];
  }

  /**
   * Replaces every entry sealed by these keys with its tombstone in `gaps` (then mergeStep until
   * done, and truncateWal, to scrub the searchable fields). `state` says how each key was destroyed.
   * Returns how many.
   */
  deleteByKeys(keyIds: readonly string[], state: (keyId: string) => 'expired' | 'erased' = () => 'erased'): number {
    const select = this.db.prepare('SELECT idx, received, tier FROM entries WHERE key_id = ? LIMIT 10000');
    const delRow = this.db.prepare('DELETE FROM entries WHERE idx = ?');
    const delText = this.db.prepare('DELETE FROM fts WHERE rowid = ?');
    let n = 0;
    for (const k of keyIds) {
      const s = state(k);
      for (;;) {
        // Bounded transactions: a day of a busy tier can be millions of rows.
        const done = this.db.transaction(() => {
          const idxs = select.all(k) as { idx: number; received: number; tier: string }[];
          for (const { idx, received, tier } of idxs) {
            delRow.run(idx);
            delText.run(idx);
            this.insertGap.run({ idx, time: received, tier, state: s, key_id: k, erasure: null });
          }
          return idxs.length;
        })();
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
  mergeStep(): boolean {
    const before = this.totalChanges.get() as { n: number };
    this.db.exec("INSERT INTO fts (fts, rank) VALUES ('merge', -200)");
    return (this.totalChanges.get() as { n: number }).n - before.n > 1;
  }

  /** Removes the WAL's old page images (after deletions, so nothing deleted survives there). */
  truncateWal(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** Refreshes the planner's statistics (after bulk loads). */
  optimize(): void {
    this.db.pragma('optimize');
  }

  close(): void {
    this.db.close();
  }
}
