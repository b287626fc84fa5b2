/**
 * The key store (`keys/keystore.db`, SQLite): one data key per (retention tier, UTC day, data
 * subject or none), each wrapped by the master key. It is the source of truth beside the log —
 * unlike the query store it cannot be rebuilt — so every change is committed with a full fsync
 * before it is relied on (a key exists durably before any leaf sealed with it is acknowledged).
 *
 * Forgetting is destroying: expiry and erasure drop the wrapped key and keep a tombstone row (so
 * reading an entry can say "expired" or "erased", not "not found"). `secure_delete` zeroes the
 * freed bytes and a WAL checkpoint(TRUNCATE) removes the old page images, so the key material is
 * gone from every file, not just unreferenced.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { createPrivate } from '../core/durable.js';
import { SteleError } from '../core/errors.js';
import { type MasterKey, unwrapKey, wrapKey } from './master.js';
import { subjectHash } from './subject.js';

export type KeyState = 'active' | 'expired' | 'erased';

export interface KeyInfo {
  id: string;
  tier: string;
  /** UTC day (YYYY-MM-DD) of the receipt times of the events it seals. */
  day: string;
  /** Keyed hash of the data subject (see subjectHash), or null. */
  subject: string | null;
  created: string;
  state: KeyState;
  destroyed: string | null;
  reason: string | null;
}

export type KeyLookup = { state: 'active'; key: Buffer; info: KeyInfo } | { state: 'expired' | 'erased'; info: KeyInfo };

export interface SlotKey {
  id: string;
  key: Buffer;
}

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

interface KeyRow extends KeyInfo {
  wrapped: Buffer | null;
  master: string | null;
}

const info = (r: KeyRow): KeyInfo => ({
  id: r.id,
  tier: r.tier,
  day: r.day,
  subject: r.subject,
  created: r.created,
  state: r.state,
  destroyed: r.destroyed,
  reason: r.reason,
});

export interface KeyStoreOptions {
  /** Open for lookups only (the index thread): no keys are created or destroyed through it. */
  readonly?: boolean;
}

export class KeyStore {
  readonly db: Database.Database;
  private readonly pepper: Buffer;
  private readonly slotCache = new Map<string, SlotKey>();
  private readonly lookups = new Map<string, KeyLookup>();
  private readonly destroyedListeners: ((ids: string[]) => void)[] = [];
  /** Keys destroyed by this process (what a cache elsewhere may still hold). */
  private readonly destroyedIds = new Set<string>();

  private constructor(
    db: Database.Database,
    private readonly masters: readonly MasterKey[],
  ) {
    this.db = db;
    this.pepper = this.loadPepper();
  }

  static open(path: string, masters: readonly MasterKey[], opts: KeyStoreOptions = {}): KeyStore {
    if (!opts.readonly) createPrivate(path);
    const db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    try {
      db.pragma('busy_timeout = 5000');
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.pragma('secure_delete = ON');
        db.exec(SCHEMA);
      }
      return new KeyStore(db, masters);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The subject pepper: a random secret, so a subject's hash cannot be found by hashing guesses. */
  private loadPepper(): Buffer {
    const row = this.db.prepare("SELECT v FROM meta WHERE k = 'pepper'").get() as { v: Buffer } | undefined;
    const master = this.db.prepare("SELECT v FROM meta WHERE k = 'pepper_master'").get() as { v: string } | undefined;
    if (row && master) return unwrapKey(this.masters, master.v, 'pepper', row.v);
    if (this.db.readonly) throw new Error('the key store has no subject pepper yet');
    const pepper = randomBytes(32);
    const m = this.masters[0] as MasterKey;
    const put = this.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?)');
    this.db.transaction(() => {
      put.run('pepper', wrapKey(m, 'pepper', pepper));
      put.run('pepper_master', m.id);
    })();
    return pepper;
  }

  subjectHash(subject: string): string {
    return subjectHash(this.pepper, subject);
  }

  /** The pepper itself, for ingest workers that hash subjects off the main thread. */
  get subjectPepper(): Buffer {
    return this.pepper;
  }

  /** The active data key of a (tier, day, subject) slot, created (durably) on first use. */
  slot(tier: string, day: string, subject: string | null): SlotKey {
    const cacheKey = `${tier}\n${day}\n${subject ?? ''}`;
    const cached = this.slotCache.get(cacheKey);
    if (cached) return cached;
    const row = this.db
      .prepare("SELECT * FROM keys WHERE tier = ? AND day = ? AND ifnull(subject, '') = ? AND state = 'active'")
      .get(tier, day, subject ?? '') as KeyRow | undefined;
    let slot: SlotKey;
    if (row) slot = { id: row.id, key: this.unwrap(row) };
    else {
      if (this.db.readonly) throw new Error('cannot create data keys through a read-only key store');
      const id = randomBytes(16).toString('base64url');
      const key = randomBytes(32);
      const m = this.masters[0] as MasterKey;
      this.db
        .prepare('INSERT INTO keys (id, tier, day, subject, wrapped, master, created) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(id, tier, day, subject, wrapKey(m, id, key), m.id, new Date().toISOString());
      slot = { id, key };
    }
    this.slotCache.set(cacheKey, slot);
    return slot;
  }

  /** slot() of several slots, created (if need be) in one transaction: one fsync for a batch. */
  slots(reqs: readonly { tier: string; day: string; subject: string | null }[]): SlotKey[] {
    try {
      return this.db.transaction(() => reqs.map((r) => this.slot(r.tier, r.day, r.subject)))();
    } catch (err) {
      this.slotCache.clear(); // keys cached inside the failed transaction were never stored
      throw err;
    }
  }

  /** A data key by id: the key when active, its tombstone when destroyed, undefined when unknown. */
  lookup(id: string): KeyLookup | undefined {
    const cached = this.lookups.get(id);
    if (cached) return cached;
    const row = this.db.prepare('SELECT * FROM keys WHERE id = ?').get(id) as KeyRow | undefined;
    if (!row) return undefined;
    const l: KeyLookup =
      row.state === 'active'
        ? { state: 'active', key: this.unwrap(row), info: info(row) }
        : { state: row.state, info: info(row) };
    // Tombstones are final; active keys are cached until forget() (the writer tells readers).
    this.lookups.set(id, l);
    return l;
  }

  private unwrap(row: KeyRow): Buffer {
    if (!row.wrapped || !row.master) throw new Error(`data key ${row.id} is ${row.state}`);
    return unwrapKey(this.masters, row.master, row.id, row.wrapped);
  }

  /** Active keys of a tier for days before `beforeDay` (YYYY-MM-DD): the ones retention may expire. */
  activeBefore(tier: string, beforeDay: string): KeyInfo[] {
    return (
      this.db
        .prepare("SELECT * FROM keys WHERE state = 'active' AND tier = ? AND day < ? ORDER BY day")
        .all(tier, beforeDay) as KeyRow[]
    ).map(info);
  }

  /** Active keys of a subject (by subjectHash), in every tier and day. */
  activeForSubject(subjectHash: string): KeyInfo[] {
    return (this.db.prepare("SELECT * FROM keys WHERE state = 'active' AND subject = ?").all(subjectHash) as KeyRow[]).map(info);
  }

  /** All keys (without key material), for listing. */
  list(): KeyInfo[] {
    return (this.db.prepare('SELECT * FROM keys ORDER BY day, tier, created').all() as KeyRow[]).map(info);
  }

  /**
   * Destroys active keys for good: drops the wrapped key, keeps a tombstone saying why, and scrubs
   * the old bytes from the database and its WAL. Returns how many were active.
   */
  destroy(ids: readonly string[], state: 'expired' | 'erased', reason: string): number {
    if (ids.length === 0) return 0;
    const upd = this.db.prepare(
      "UPDATE keys SET wrapped = NULL, master = NULL, state = ?, destroyed = ?, reason = ? WHERE id = ? AND state = 'active'",
    );
    const now = new Date().toISOString();
    let n = 0;
    this.db.transaction(() => {
      for (const id of ids) n += upd.run(state, now, reason, id).changes;
    })();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    for (const id of ids) this.destroyedIds.add(id);
    this.forget(ids);
    for (const l of this.destroyedListeners) l([...ids]);
    return n;
  }

  /** Drops cached keys (a reader does this when the writer reports them destroyed). */
  forget(ids: readonly string[]): void {
    const gone = new Set(ids);
    for (const id of ids) {
      const l = this.lookups.get(id);
      if (l?.state === 'active') l.key.fill(0);
      this.lookups.delete(id);
    }
    for (const [k, s] of this.slotCache) if (gone.has(s.id)) this.slotCache.delete(k);
  }

  isDestroyed(id: string): boolean {
    return this.destroyedIds.has(id);
  }

  onDestroyed(listener: (ids: string[]) => void): void {
    this.destroyedListeners.push(listener);
  }

  /**
   * Re-wraps every live data key (and the pepper) under `next` in one transaction; the log is not
   * touched. Returns how many keys were re-wrapped.
   */
  rewrap(next: MasterKey): number {
    const rows = this.db.prepare("SELECT * FROM keys WHERE state = 'active'").all() as KeyRow[];
    const upd = this.db.prepare('UPDATE keys SET wrapped = ?, master = ? WHERE id = ?');
    const put = this.db.prepare('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)');
    this.db.transaction(() => {
      for (const r of rows) upd.run(wrapKey(next, r.id, this.unwrap(r)), next.id, r.id);
      put.run('pepper', wrapKey(next, 'pepper', this.pepper));
      put.run('pepper_master', next.id);
    })();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    return rows.length;
  }

  /** Master key ids still in use (normally one; two only mid-rotation). */
  mastersInUse(): string[] {
    const rows = this.db.prepare("SELECT DISTINCT master FROM keys WHERE state = 'active' AND master IS NOT NULL").all() as {
      master: string;
    }[];
    const pepper = this.db.prepare("SELECT v FROM meta WHERE k = 'pepper_master'").get() as { v: string } | undefined;
    return [...new Set([...rows.map((r) => r.master), ...(pepper ? [pepper.v] : [])])];
  }

  close(): void {
    for (const l of this.lookups.values()) if (l.state === 'active') l.key.fill(0);
    this.db.close();
  }
}

/** The keyed hash that stands for a data subject in the key store (never the subject itself). */

/** UTC day (YYYY-MM-DD) of a time in microseconds. */
export function utcDay(micros: bigint | number): string {
  return new Date(Number(micros) / 1000).toISOString().slice(0, 10);
}

export function keyNotReadable(index: number, l: KeyLookup | undefined, keyId: string): SteleError {
  if (!l)
    return new SteleError('key_missing', `entry ${index} is sealed with data key ${keyId}, which the key store does not have`);
  const i = l.info;
  const why = l.state === 'expired' ? `expired (tier ${i.tier}, day ${i.day})` : 'erased';
  const code = l.state === 'expired' ? 'expired' : 'erased';
  return new SteleError(code, `entry ${index} has been ${why}; its data key was destroyed at ${i.destroyed}`, {
    detail: { index, state: l.state, tier: i.tier, day: i.day, destroyed: i.destroyed },
  });
}
