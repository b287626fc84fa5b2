import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { IndexRow } from './extract.js';
import type { CompiledQuery } from './query.js';
import { SCHEMA_SQL, SCHEMA_VERSION } from './schema.js';

export type Order = 'desc' | 'asc';

export interface SearchPage {
  /** Only entries before (desc) or after (asc) this index: the previous page's last. */
  cursor?: number;
  limit: number;
  order: Order;
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
  private readonly setUpto: Database.Statement;
  private readonly totalChanges: Database.Statement;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('secure_delete = ON');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA_SQL);
    const version = this.meta('schema');
    if (version === undefined) this.db.prepare("INSERT INTO meta (k, v) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    else if (version !== String(SCHEMA_VERSION)) {
      throw new Error(`${path}: query store schema ${version}, expected ${SCHEMA_VERSION}; run "stele reindex"`);
    }
    // Plain INSERT: each index is indexed once (callers skip what is below upto), and OR REPLACE
    // would cost 3x per row.
    this.insertRow = this.db.prepare(
      `INSERT INTO entries (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')})`,
    );
    this.insertText = this.db.prepare('INSERT INTO fts (rowid, text) VALUES (?, ?)');
    this.setUpto = this.db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES ('upto', ?)");
    this.totalChanges = this.db.prepare('SELECT total_changes() AS n');
  }

  private meta(k: string): string | undefined {
    return (this.db.prepare('SELECT v FROM meta WHERE k = ?').get(k) as { v: string } | undefined)?.v;
  }

  /** Entries [0, upto) have been indexed (or were unreadable). */
  upto(): number {
    return Number(this.meta('upto') ?? 0);
  }

  /** Indexes rows and records that everything before `upto` is done, in one transaction. */
  insert(rows: readonly { row: IndexRow; text: string }[], upto: number): void {
    this.db.transaction(() => {
      for (const r of rows) {
        this.insertRow.run(r.row);
        this.insertText.run(r.row.idx, r.text);
      }
      this.setUpto.run(String(upto));
    })();
  }

  search(q: CompiledQuery, page: SearchPage): IndexRow[] {
    const params: unknown[] = [];
    let sql: string;
    const cols = COLUMNS.map((c) => `e.${c}`).join(', ');
    if (q.match !== null) {
      sql = `SELECT ${cols} FROM fts JOIN entries e ON e.idx = fts.rowid WHERE fts MATCH ? AND (${q.where})`;
      params.push(q.match);
    } else sql = `SELECT ${cols} FROM entries e WHERE (${q.where})`;
    params.push(...q.params);
    if (page.cursor !== undefined) {
      sql += page.order === 'desc' ? ' AND e.idx < ?' : ' AND e.idx > ?';
      params.push(page.cursor);
    }
    // Ordering by the FTS rowid (the same number) lets FTS5 stream matches in order instead of sorting them.
    const by = q.match !== null ? 'fts.rowid' : 'e.idx';
    sql += ` ORDER BY ${by} ${page.order === 'desc' ? 'DESC' : 'ASC'} LIMIT ?`;
    params.push(page.limit);
    return this.db.prepare(sql).all(...params) as IndexRow[];
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

  /** Removes every entry sealed by these keys (then mergeStep until done, and truncateWal, to scrub). Returns how many. */
  deleteByKeys(keyIds: readonly string[]): number {
    const select = this.db.prepare('SELECT idx FROM entries WHERE key_id = ? LIMIT 10000');
    const delRow = this.db.prepare('DELETE FROM entries WHERE idx = ?');
    const delText = this.db.prepare('DELETE FROM fts WHERE rowid = ?');
    let n = 0;
    for (const k of keyIds) {
      for (;;) {
        // Bounded transactions: a day of a busy tier can be millions of rows.
        const done = this.db.transaction(() => {
          const idxs = select.all(k) as { idx: number }[];
          for (const { idx } of idxs) {
            delRow.run(idx);
            delText.run(idx);
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
