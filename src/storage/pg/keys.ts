/**
 * Data keys in PostgreSQL (table stele_keys; the pepper in stele_meta), shared by every node.
 * Each change is one committed transaction before its promise resolves. Destroying a key sets its
 * wrapped bytes to NULL and then rewrites the table (VACUUM FULL), since PostgreSQL would keep the
 * old row version, wrapped key and all, in the table file; what stays in the write-ahead log and in
 * backups is the operator's to bound (docs/operations.md).
 */
import {
  type KeyFilter,
  type KeyInfo,
  type KeyRecord,
  type KeyRecords,
  keyFilterConditions,
  keyInfo,
  type SlotName,
  SlotTaken,
  type WrappedSecret,
} from '../../keys/key-records.js';
import type { PgDatabase, Queryable } from './database.js';

/** The advisory lock under which the first node makes the subject pepper ('pepr'). */
const PEPPER_LOCK = 0x70657072;

/** The notification channel of destroyed keys. */
const DESTROYED = 'stele_keys_destroyed';

const INFO = 'id, tier, day, subject, created, state, destroyed, reason';
const ALL = `${INFO}, wrapped, master`;

/** A row as KeyRecord, in the interface's field order. */
const record = (r: KeyRecord): KeyRecord => ({
  id: r.id,
  tier: r.tier,
  day: r.day,
  subject: r.subject,
  wrapped: r.wrapped,
  master: r.master,
  created: r.created,
  state: r.state,
  destroyed: r.destroyed,
  reason: r.reason,
});

export class PgKeyRecords implements KeyRecords {
  constructor(
    private readonly db: PgDatabase,
    readonly readonly = false,
  ) {}

  private writable(): void {
    if (this.readonly) throw new Error('this key store was opened read-only');
  }

  async pepper(): Promise<WrappedSecret | undefined> {
    const r = await this.db.query<{ k: string; v: Buffer }>("SELECT k, v FROM stele_meta WHERE k IN ('pepper', 'pepper_master')");
    const get = (k: string) => r.rows.find((x) => x.k === k)?.v;
    const wrapped = get('pepper');
    const master = get('pepper_master');
    return wrapped && master ? { wrapped, master: master.toString('utf8') } : undefined;
  }

  async setPepper(p: WrappedSecret): Promise<void> {
    this.writable();
    await this.db.tx((c) => putPepper(c, p));
    // The old pepper's row version would stay in the table file.
    await this.db.rewrite('stele_meta');
  }

  async initPepper(p: WrappedSecret): Promise<WrappedSecret> {
    this.writable();
    return this.db.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [PEPPER_LOCK]);
      const r = await c.query<{ k: string; v: Buffer }>("SELECT k, v FROM stele_meta WHERE k IN ('pepper', 'pepper_master')");
      const get = (k: string) => r.rows.find((x) => x.k === k)?.v;
      const wrapped = get('pepper');
      const master = get('pepper_master');
      if (wrapped && master) return { wrapped, master: master.toString('utf8') };
      await putPepper(c, p);
      return p;
    });
  }

  async activeSlots(slots: readonly SlotName[]): Promise<(KeyRecord | undefined)[]> {
    if (slots.length === 0) return [];
    const r = await this.db.query<KeyRecord & { n: number }>(
      `SELECT s.n, k.* FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS s(tier, day, subject, n)
       JOIN stele_keys k ON k.tier = s.tier AND k.day = s.day AND coalesce(k.subject, '') = s.subject AND k.state = 'active'`,
      [slots.map((s) => s.tier), slots.map((s) => s.day), slots.map((s) => s.subject ?? '')],
    );
    const out: (KeyRecord | undefined)[] = slots.map(() => undefined);
    for (const row of r.rows) out[Number(row.n) - 1] = record(row);
    return out;
  }

  async insert(keys: readonly KeyRecord[]): Promise<void> {
    this.writable();
    if (keys.length === 0) return;
    await this.db
      .tx(async (c) => {
        for (const k of keys)
          await c.query(
            'INSERT INTO stele_keys (id, tier, day, subject, wrapped, master, created, state, destroyed, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
            [k.id, k.tier, k.day, k.subject, k.wrapped, k.master, k.created, k.state, k.destroyed, k.reason],
          );
      })
      .catch((err: unknown) => {
        // Two nodes made the same slot's key at once: the other one's stands (the key store reads it).
        const e = err as { code?: string; constraint?: string };
        throw e.code === '23505' && e.constraint === 'stele_keys_slot' ? new SlotTaken() : err;
      });
  }

  async get(ids: readonly string[]): Promise<(KeyRecord | undefined)[]> {
    if (ids.length === 0) return [];
    const r = await this.db.query<KeyRecord>(`SELECT ${ALL} FROM stele_keys WHERE id = ANY($1::text[])`, [ids]);
    const by = new Map(r.rows.map((row) => [row.id, record(row)]));
    return ids.map((id) => by.get(id));
  }

  async select(f: KeyFilter): Promise<KeyInfo[]> {
    const conds = keyFilterConditions(f);
    const where = conds.length ? `WHERE ${conds.map((c, i) => c.cond.replace('?', `$${i + 1}`)).join(' AND ')}` : '';
    const sql = `SELECT ${INFO} FROM stele_keys ${where} ORDER BY day, tier, created`;
    return (
      await this.db.query<KeyRecord>(
        sql,
        conds.map((c) => c.value),
      )
    ).rows.map(keyInfo);
  }

  async destroy(ids: readonly string[], state: 'expired' | 'erased', reason: string, at: string): Promise<number> {
    this.writable();
    if (ids.length === 0) return 0;
    const n = await this.db.tx(async (c) => {
      const r = await c.query<{ id: string }>(
        "UPDATE stele_keys SET wrapped = NULL, master = NULL, state = $1, destroyed = $2, reason = $3 WHERE id = ANY($4::text[]) AND state = 'active' RETURNING id",
        [state, at, reason, ids],
      );
      // Every node's caches drop them on this commit (watchDestroyed).
      if (r.rows.length)
        await this.db.notify(
          c,
          DESTROYED,
          r.rows.map((k) => k.id),
        );
      return r.rows.length;
    });
    if (n > 0) await this.db.rewrite('stele_keys');
    return n;
  }

  watchDestroyed(fn: (ids: string[] | null) => void): Promise<void> {
    return this.db.listen(DESTROYED, fn, () => fn(null));
  }

  async active(): Promise<KeyRecord[]> {
    return (await this.db.query<KeyRecord>(`SELECT ${ALL} FROM stele_keys WHERE state = 'active' ORDER BY created, id`)).rows.map(
      record,
    );
  }

  async rewrap(keys: readonly { id: string; wrapped: Buffer; master: string }[], pepper: WrappedSecret): Promise<void> {
    this.writable();
    await this.db.tx(async (c) => {
      for (const k of keys)
        await c.query("UPDATE stele_keys SET wrapped = $1, master = $2 WHERE id = $3 AND state = 'active'", [
          k.wrapped,
          k.master,
          k.id,
        ]);
      await putPepper(c, pepper);
    });
    // Keys wrapped by the old master would stay in the old row versions.
    await this.db.rewrite('stele_keys');
    await this.db.rewrite('stele_meta');
  }

  async mastersInUse(): Promise<string[]> {
    const rows = await this.db.query<{ master: string }>(
      "SELECT DISTINCT master FROM stele_keys WHERE state = 'active' AND master IS NOT NULL",
    );
    const pepper = await this.pepper();
    return [...new Set([...rows.rows.map((r) => r.master), ...(pepper ? [pepper.master] : [])])];
  }

  async close(): Promise<void> {}
}

async function putPepper(c: Queryable, p: WrappedSecret): Promise<void> {
  const put = 'INSERT INTO stele_meta (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v';
  await c.query(put, ['pepper', p.wrapped]);
  await c.query(put, ['pepper_master', Buffer.from(p.master)]);
}
