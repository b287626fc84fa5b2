/**
 * Legal holds in PostgreSQL (table stele_holds), shared by every node. Forgetting a subject in
 * released holds rewrites the table (VACUUM FULL), so the old row versions naming it leave the
 * table file.
 */
import type { Hold, HoldRecords } from '../../keys/hold-records.js';
import type { PgDatabase } from './database.js';

const COLS = [
  'id',
  'reason',
  'tier',
  'actor',
  'subject',
  'subject_hash',
  'since',
  'until',
  'created',
  'created_by',
  'released',
  'released_by',
  'release_reason',
] as const;

/** A row as Hold: bigint columns come back from pg as text. */
function hold(r: Record<string, unknown>): Hold {
  const h = Object.fromEntries(COLS.map((c) => [c, r[c] ?? null])) as unknown as Hold;
  return { ...h, since: h.since === null ? null : Number(h.since), until: h.until === null ? null : Number(h.until) };
}

export class PgHoldRecords implements HoldRecords {
  constructor(private readonly db: PgDatabase) {}

  async insert(h: Hold): Promise<void> {
    await this.db.query(
      `INSERT INTO stele_holds (${COLS.join(', ')}) VALUES (${COLS.map((_, i) => `$${i + 1}`).join(', ')})`,
      COLS.map((c) => h[c]),
    );
  }

  async get(id: string): Promise<Hold | undefined> {
    const r = await this.db.query(`SELECT ${COLS.join(', ')} FROM stele_holds WHERE id = $1`, [id]);
    return r.rows[0] ? hold(r.rows[0]) : undefined;
  }

  async list(includeReleased: boolean): Promise<Hold[]> {
    const where = includeReleased ? '' : 'WHERE released IS NULL';
    const r = await this.db.query(`SELECT ${COLS.join(', ')} FROM stele_holds ${where} ORDER BY created, seq`);
    return r.rows.map(hold);
  }

  async release(id: string, at: string, by: string, reason: string): Promise<boolean> {
    const r = await this.db.query(
      'UPDATE stele_holds SET released = $1, released_by = $2, release_reason = $3 WHERE id = $4 AND released IS NULL',
      [at, by, reason, id],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async forgetReleased(subject: string, actorAs: string): Promise<number> {
    const n = await this.db.tx(async (c) => {
      const a = await c.query('UPDATE stele_holds SET subject = NULL WHERE subject = $1 AND released IS NOT NULL', [subject]);
      const b = await c.query('UPDATE stele_holds SET actor = $1 WHERE actor = $2 AND released IS NOT NULL', [actorAs, subject]);
      return (a.rowCount ?? 0) + (b.rowCount ?? 0);
    });
    if (n > 0) await this.db.rewrite('stele_holds');
    return n;
  }

  async close(): Promise<void> {}
}
