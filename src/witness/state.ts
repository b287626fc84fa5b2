/**
 * A witness's checkpoints in SQLite (witness.db): one row per log, replaced inside an immediate
 * transaction, so the check and the update are atomic across threads and processes, and durable
 * (synchronous=FULL) before the cosignature is returned.
 */
import Database from 'better-sqlite3';
import type { Cosigned, WitnessState } from './witness.js';

export class SqliteWitnessState implements WitnessState {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS logs (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL)',
    );
  }

  update<T>(origin: string, step: (latest: Cosigned | undefined) => { store: Cosigned; result: T }): T {
    const run = this.db.transaction(() => {
      const row = this.db.prepare('SELECT size, root, note FROM logs WHERE origin = ?').get(origin) as
        | { size: number; root: Buffer; note: string }
        | undefined;
      const { store, result } = step(row);
      this.db
        .prepare(
          'INSERT INTO logs (origin, size, root, note) VALUES (?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, note = excluded.note',
        )
        .run(origin, store.size, store.root, store.note);
      return result;
    });
    return run.immediate();
  }

  /** The latest cosigned checkpoint of every log, by origin. */
  all(): Record<string, { size: number }> {
    const rows = this.db.prepare('SELECT origin, size FROM logs ORDER BY origin').all() as { origin: string; size: number }[];
    return Object.fromEntries(rows.map((r) => [r.origin, { size: r.size }]));
  }

  close(): void {
    this.db.close();
  }
}
