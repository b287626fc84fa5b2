/**
 * One PostgreSQL database shared by every Stele node of a log (`pg` pool). Opening it creates the
 * schema (schema.ts) under an advisory lock, so nodes starting together do not race, and refuses a
 * database made by a newer Stele. Every statement is a prepared one with bound parameters.
 */
import pg from 'pg';
import { SteleError } from '../../core/errors.js';
import { MIGRATIONS } from './schema.js';

/** The advisory lock that serialises schema changes (an arbitrary constant: 'stele' in ASCII). */
const MIGRATION_LOCK = 0x7374656c65;

export type Queryable = Pick<pg.PoolClient, 'query'>;

export class PgDatabase {
  private constructor(readonly pool: pg.Pool) {}

  /**
   * Connects to `url` and brings the schema up to date. `schema`: the PostgreSQL schema Stele's
   * tables live in (created if need be; default: the connection's search_path, usually public),
   * so one database can hold several logs.
   */
  static async open(url: string, opts: { max?: number; schema?: string } = {}): Promise<PgDatabase> {
    if (opts.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(opts.schema))
      throw new SteleError('bad_option', `schema name ${JSON.stringify(opts.schema)}: use a-z, 0-9 and _ (not first a digit)`);
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      connectionTimeoutMillis: 10_000,
      ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    });
    // An idle client's error (the server restarted) must not crash the process: the pool drops it.
    pool.on('error', () => {});
    const db = new PgDatabase(pool);
    try {
      await db.migrate(opts.schema);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return db;
  }

  private async migrate(schema: string | undefined): Promise<void> {
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      // Under the lock: CREATE SCHEMA IF NOT EXISTS is not safe against a node starting beside this one.
      if (schema) await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await c.query('CREATE TABLE IF NOT EXISTS stele_schema (version integer NOT NULL)');
      const r = await c.query<{ version: number }>('SELECT version FROM stele_schema');
      const at = r.rows[0]?.version ?? 0;
      if (at > MIGRATIONS.length)
        throw new SteleError(
          'bad_data_dir',
          `the database's Stele schema is version ${at}, newer than this Stele's (${MIGRATIONS.length})`,
        );
      for (let v = at; v < MIGRATIONS.length; v++) await c.query(MIGRATIONS[v] as string);
      if (r.rows.length === 0) await c.query('INSERT INTO stele_schema (version) VALUES ($1)', [MIGRATIONS.length]);
      else await c.query('UPDATE stele_schema SET version = $1', [MIGRATIONS.length]);
    });
  }

  query<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(sql, params);
  }

  /** `fn` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  /**
   * Rewrites `table` (VACUUM FULL) so that the old versions of changed rows leave its files:
   * PostgreSQL keeps a row's old version in the table file after an UPDATE or DELETE, and a plain
   * VACUUM only marks the space free, never zeroes it. Takes the table's exclusive lock briefly.
   */
  async rewrite(table: 'stele_keys' | 'stele_meta' | 'stele_holds'): Promise<void> {
    await this.pool.query(`VACUUM FULL ${table}`);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
