/**
 * Legal holds on a file system: a table of `keys/keystore.db` (fs/keys.ts), beside the keys they
 * guard and over the same connection.
 */
import type Database from 'better-sqlite3';
import type { Hold, HoldRecords } from '../../keys/hold-records.js';
import type { KeystoreDb } from './keys.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS holds (
  id TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  tier TEXT,
  actor TEXT,
  subject TEXT,
  subject_hash TEXT,
  since INTEGER,
  until INTEGER,
  created TEXT NOT NULL,
  created_by TEXT NOT NULL,
  released TEXT,
  released_by TEXT,
  release_reason TEXT
);
`;

const COLS =
  'id, reason, tier, actor, subject, subject_hash, since, until, created, created_by, released, released_by, release_reason';

const PARAMS = COLS.split(', ')
  .map((c) => `@${c}`)
  .join(', ');

export class FsHoldRecords implements HoldRecords {
  private readonly db: Database.Database;

  constructor(private readonly conn: KeystoreDb) {
    this.db = conn.db;
    this.db.exec(SCHEMA);
  }

  async insert(h: Hold): Promise<void> {
    this.db.prepare(`INSERT INTO holds (${COLS}) VALUES (${PARAMS})`).run(h);
  }

  async get(id: string): Promise<Hold | undefined> {
    return this.db.prepare(`SELECT ${COLS} FROM holds WHERE id = ?`).get(id) as Hold | undefined;
  }

  async list(includeReleased: boolean): Promise<Hold[]> {
    const where = includeReleased ? '' : 'WHERE released IS NULL';
    return this.db.prepare(`SELECT ${COLS} FROM holds ${where} ORDER BY created, rowid`).all() as Hold[];
  }

  async release(id: string, at: string, by: string, reason: string): Promise<boolean> {
    return (
      this.db
        .prepare('UPDATE holds SET released = ?, released_by = ?, release_reason = ? WHERE id = ? AND released IS NULL')
        .run(at, by, reason, id).changes > 0
    );
  }

  async forgetReleased(subject: string, actorAs: string): Promise<number> {
    let n = this.db.prepare('UPDATE holds SET subject = NULL WHERE subject = ? AND released IS NOT NULL').run(subject).changes;
    n += this.db.prepare('UPDATE holds SET actor = ? WHERE actor = ? AND released IS NOT NULL').run(actorAs, subject).changes;
    if (n > 0) this.db.pragma('wal_checkpoint(TRUNCATE)'); // the old row images go from the WAL too
    return n;
  }

  async close(): Promise<void> {
    this.conn.release();
  }
}
