/**
 * The data keys on a file system: SQLite at `keys/keystore.db`, shared with the legal holds
 * (holds.ts) over one connection. Every change is committed with synchronous=FULL before its
 * promise resolves. Destroying a key sets its wrapped bytes to NULL with `secure_delete` on
 * (the freed bytes are zeroed) and then checkpoints the WAL with TRUNCATE (the old page images go),
 * so the key material is gone from every file, not just unreferenced.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { createPrivate } from '../../core/durable.js';
import {
  type KeyFilter,
  type KeyInfo,
  type KeyRecord,
  type KeyRecords,
  keyFilterConditions,
  type SlotName,
  type WrappedSecret,
} from '../../keys/key-records.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
  id TEXT PRIMARY KEY,
  tier TEXT NOT NULL,
  day TEXT NOT NULL,
  subject TEXT,
  wrapped BLOB,
  master TEXT,
  created TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'expired', 'erased')),
  destroyed TEXT,
  reason TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS keys_slot ON keys (tier, day, ifnull(subject, '')) WHERE state = 'active';
CREATE INDEX IF NOT EXISTS keys_subject ON keys (subject) WHERE subject IS NOT NULL;
CREATE INDEX IF NOT EXISTS keys_expiry ON keys (state, tier, day);
`;

/** One open keystore.db, counted by the records using it (keys and holds share it). */
export interface KeystoreDb {
  readonly db: Database.Database;
  /** Drops one user; the last closes the connection. */
  release(): void;
}

const opened = new Map<string, { db: Database.Database; users: number }>();

/**
 * The connection to the keystore.db at `path` (read-only: lookups beside a writer, as the index
 * thread and `stele subject-hash` do; the file must exist then). One per path and mode per thread.
 */
export function keystoreDb(path: string, readonly: boolean): KeystoreDb {
  const name = `${readonly ? 'r' : 'w'}:${path}`;
  let o = opened.get(name);
  if (!o) {
    o = { db: openDb(path, readonly), users: 0 };
    opened.set(name, o);
  }
  const entry = o;
  entry.users++;
  let released = false;
  return {
    db: entry.db,
    release() {
      if (released) return;
      released = true;
      if (--entry.users > 0) return;
      opened.delete(name);
      entry.db.close();
    },
  };
}

function openDb(path: string, readonly: boolean): Database.Database {
  if (!readonly) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    createPrivate(path);
  }
  const db = new Database(path, { readonly, fileMustExist: readonly });
  try {
    db.pragma('busy_timeout = 5000');
    if (!readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('secure_delete = ON');
      db.exec(SCHEMA);
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

const INFO = 'id, tier, day, subject, created, state, destroyed, reason';

export class FsKeyRecords implements KeyRecords {
  private readonly db: Database.Database;

  constructor(private readonly conn: KeystoreDb) {
    this.db = conn.db;
  }

  get readonly(): boolean {
    return this.db.readonly;
  }

  async pepper(): Promise<WrappedSecret | undefined> {
    const row = this.db.prepare("SELECT v FROM meta WHERE k = 'pepper'").get() as { v: Buffer } | undefined;
    const master = this.db.prepare("SELECT v FROM meta WHERE k = 'pepper_master'").get() as { v: string } | undefined;
    return row && master ? { wrapped: row.v, master: master.v } : undefined;
  }

  async setPepper(p: WrappedSecret): Promise<void> {
    this.db.transaction(() => this.putPepper(p))();
  }

  private putPepper(p: WrappedSecret): void {
    const put = this.db.prepare('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)');
    put.run('pepper', p.wrapped);
    put.run('pepper_master', p.master);
  }

  async activeSlots(slots: readonly SlotName[]): Promise<(KeyRecord | undefined)[]> {
    const st = this.db.prepare("SELECT * FROM keys WHERE tier = ? AND day = ? AND ifnull(subject, '') = ? AND state = 'active'");
    return slots.map((s) => st.get(s.tier, s.day, s.subject ?? '') as KeyRecord | undefined);
  }

  async insert(keys: readonly KeyRecord[]): Promise<void> {
    const st = this.db.prepare(
      'INSERT INTO keys (id, tier, day, subject, wrapped, master, created, state, destroyed, reason) VALUES (@id, @tier, @day, @subject, @wrapped, @master, @created, @state, @destroyed, @reason)',
    );
    this.db.transaction(() => {
      for (const k of keys) st.run(k);
    })();
  }

  async get(ids: readonly string[]): Promise<(KeyRecord | undefined)[]> {
    const st = this.db.prepare('SELECT * FROM keys WHERE id = ?');
    return ids.map((id) => st.get(id) as KeyRecord | undefined);
  }

  async select(f: KeyFilter): Promise<KeyInfo[]> {
    const conds = keyFilterConditions(f);
    const where = conds.length ? `WHERE ${conds.map((c) => c.cond).join(' AND ')}` : '';
    const sql = `SELECT ${INFO} FROM keys ${where} ORDER BY day, tier, created`;
    return this.db.prepare(sql).all(...conds.map((c) => c.value)) as KeyInfo[];
  }

  async destroy(ids: readonly string[], state: 'expired' | 'erased', reason: string, at: string): Promise<number> {
    const upd = this.db.prepare(
      "UPDATE keys SET wrapped = NULL, master = NULL, state = ?, destroyed = ?, reason = ? WHERE id = ? AND state = 'active'",
    );
    let n = 0;
    this.db.transaction(() => {
      for (const id of ids) n += upd.run(state, at, reason, id).changes;
    })();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    return n;
  }

  async active(): Promise<KeyRecord[]> {
    return this.db.prepare("SELECT * FROM keys WHERE state = 'active'").all() as KeyRecord[];
  }

  async rewrap(keys: readonly { id: string; wrapped: Buffer; master: string }[], pepper: WrappedSecret): Promise<void> {
    const upd = this.db.prepare("UPDATE keys SET wrapped = ?, master = ? WHERE id = ? AND state = 'active'");
    this.db.transaction(() => {
      for (const k of keys) upd.run(k.wrapped, k.master, k.id);
      this.putPepper(pepper);
    })();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  async mastersInUse(): Promise<string[]> {
    const rows = this.db.prepare("SELECT DISTINCT master FROM keys WHERE state = 'active' AND master IS NOT NULL").all() as {
      master: string;
    }[];
    const pepper = this.db.prepare("SELECT v FROM meta WHERE k = 'pepper_master'").get() as { v: string } | undefined;
    return [...new Set([...rows.map((r) => r.master), ...(pepper ? [pepper.v] : [])])];
  }

  async close(): Promise<void> {
    this.conn.release();
  }
}
