import type Database from 'better-sqlite3';
import { uuidText } from '../../core/uuid.js';
import type { IndexRow } from '../../event/searchable.js';
import { uuidBytes } from './id-index.js';
import { CODED_COLUMNS, UUID_ID } from './query-schema.js';

type Coded = (typeof CODED_COLUMNS)[number];
/** An `entries` row as stored: the coded columns as term ids, a UUID id as its bytes. */
export type StoredRow = Omit<IndexRow, Coded | 'id'> & Record<Coded, number | null> & { id: string | Buffer };

/**
 * The `terms` of one query-store file (query-schema.ts): each coded value once, with the number of
 * `entries` rows that use it. Uses are counted in memory and written once per distinct term by
 * flush(), inside the caller's transaction; a term whose count reaches 0 is deleted with it, so
 * an erased actor's or host's name does not outlive its rows (secure_delete zeroes the bytes).
 */
export class Terms {
  private readonly byValue = new Map<string, number>();
  private readonly byId = new Map<number, string>();
  /** Uses added (or, negative, removed) since the last flush, by term id. */
  private readonly delta = new Map<number, number>();
  private readonly find: Database.Statement;
  private readonly findId: Database.Statement;
  private readonly add: Database.Statement;
  private readonly count: Database.Statement;
  private readonly drop: Database.Statement;

  constructor(db: Database.Database) {
    this.find = db.prepare('SELECT id FROM terms WHERE value = ?').pluck();
    this.findId = db.prepare('SELECT value FROM terms WHERE id = ?').pluck();
    this.add = db.prepare('INSERT INTO terms (value, refs) VALUES (?, 0)');
    this.count = db.prepare('UPDATE terms SET refs = refs + ? WHERE id = ?');
    this.drop = db.prepare('DELETE FROM terms WHERE id = ? AND refs <= 0');
  }

  /** The id of `value`, made if new; counts one use. Inside a transaction. */
  private use(value: string): number {
    let id = this.byValue.get(value);
    if (id === undefined) {
      id = (this.find.get(value) as number | undefined) ?? Number(this.add.run(value).lastInsertRowid);
      this.remember(id, value);
    }
    this.delta.set(id, (this.delta.get(id) ?? 0) + 1);
    return id;
  }

  private remember(id: number, value: string): void {
    this.byValue.set(value, id);
    this.byId.set(id, value);
  }

  /** The value of term `id`. */
  value(id: number): string {
    let v = this.byId.get(id);
    if (v === undefined) {
      v = this.findId.get(id) as string | undefined;
      if (v === undefined) throw new Error(`query store: no term ${id}`);
      this.remember(id, v);
    }
    return v;
  }

  /**
   * `row` as the values of `entries`' columns (COLUMNS: idx, then NOTE_FIELDS), the coded ones as
   * term ids, counting a use of each; a lowercase UUID id as its 16 bytes. Written out field by
   * field: the index thread calls it for every entry, and a loop over column names (a spread row,
   * keyed reads and writes) cost it a sixth of its time (BENCHMARKS.md, the index thread's profile).
   */
  values(row: IndexRow): unknown[] {
    const opt = (v: string | null) => (v === null ? null : this.use(v));
    return [
      row.idx,
      UUID_ID.test(row.id) ? uuidBytes(row.id) : row.id,
      row.time,
      row.received,
      this.use(row.actor),
      this.use(row.actor_type),
      opt(row.on_behalf_of),
      row.verified,
      this.use(row.action),
      this.use(row.source),
      opt(row.host),
      opt(row.resource_type),
      row.resource_id,
      this.use(row.outcome),
      row.subject,
      row.tier,
      opt(row.key_id),
      this.use(row.principal),
    ];
  }

  /** A stored row as IndexRow (in place). */
  decode(row: StoredRow): IndexRow {
    const r = row as unknown as Record<string, unknown>;
    if (Buffer.isBuffer(r.id)) r.id = uuidText(r.id);
    for (const c of CODED_COLUMNS) {
      const id = r[c];
      if (typeof id === 'number') r[c] = this.value(id);
    }
    return r as unknown as IndexRow;
  }

  /** Counts one use fewer of each coded value of a stored row being deleted. */
  release(row: Partial<Record<Coded, number | null>>): void {
    for (const c of CODED_COLUMNS) {
      const id = row[c];
      if (typeof id === 'number') this.delta.set(id, (this.delta.get(id) ?? 0) - 1);
    }
  }

  /** Writes the counted uses; deletes the terms no row uses any more. Inside the same transaction. */
  flush(): void {
    for (const [id, d] of this.delta) {
      if (d !== 0) this.count.run(d, id);
      if (d < 0 && this.drop.run(id).changes > 0) {
        const v = this.byId.get(id);
        this.byId.delete(id);
        if (v !== undefined) this.byValue.delete(v);
      }
    }
    this.delta.clear();
  }

  /** Forgets what is cached and counted: the transaction that used them rolled back. */
  reset(): void {
    this.byValue.clear();
    this.byId.clear();
    this.delta.clear();
  }
}
