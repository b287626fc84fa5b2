import Database from 'better-sqlite3';

/**
 * Event id → log index, so a repeated id returns its first index instead of appending twice.
 *
 * It is rebuildable: `upto` records how many log entries it covers, in the same transaction as
 * their ids, and the sequencer replays entries after `upto` on start. Commits therefore need not
 * fsync (synchronous=NORMAL); `flush` makes everything so far durable before the log lets go of
 * the entries it would replay.
 */
export interface IdIndex {
  /** Index of each id already in the log (ids not found are absent). */
  lookup(ids: readonly string[]): Map<string, number>;
  /** Records the ids of entries `first`, `first + 1`, ... and that the index now covers them. */
  add(first: number, ids: readonly string[]): void;
  /** Number of log entries whose ids are recorded. */
  upto(): number;
  /** Makes every `add` so far durable. */
  flush(): void;
  close(): void;
}

export class SqliteIdIndex implements IdIndex {
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement<[string], { idx: number }>;
  private readonly insertStmt: Database.Statement<[string, number]>;
  private readonly setUpto: Database.Statement<[number]>;
  private readonly addTx: (first: number, ids: readonly string[]) => void;
  private covered: number;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS ids (id TEXT PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
    `);
    this.getStmt = this.db.prepare('SELECT idx FROM ids WHERE id = ?');
    // OR IGNORE: replaying entries after a crash may meet ids the index already has.
    this.insertStmt = this.db.prepare('INSERT OR IGNORE INTO ids (id, idx) VALUES (?, ?)');
    this.setUpto = this.db.prepare("INSERT INTO meta (k, v) VALUES ('upto', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v");
    const row = this.db.prepare("SELECT v FROM meta WHERE k = 'upto'").get() as { v: number } | undefined;
    this.covered = row?.v ?? 0;
    this.addTx = this.db.transaction((first: number, ids: readonly string[]) => {
      for (let i = 0; i < ids.length; i++) this.insertStmt.run(ids[i] as string, first + i);
      this.setUpto.run(first + ids.length);
    });
  }

  lookup(ids: readonly string[]): Map<string, number> {
    const found = new Map<string, number>();
    for (const id of ids) {
      const row = this.getStmt.get(id);
      if (row) found.set(id, row.idx);
    }
    return found;
  }

  add(first: number, ids: readonly string[]): void {
    if (first + ids.length <= this.covered) return;
    this.addTx(first, ids);
    this.covered = first + ids.length;
  }

  upto(): number {
    return this.covered;
  }

  flush(): void {
    // With synchronous=NORMAL a checkpoint syncs the SQLite WAL and then the database file.
    this.db.pragma('wal_checkpoint(FULL)');
  }

  close(): void {
    this.db.close();
  }
}
