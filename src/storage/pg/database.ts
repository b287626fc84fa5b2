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

/** A NOTIFY channel's subscriber: its messages, and a call when some may have been missed (a reconnect). */
interface Subscriber {
  message(payload: string): void;
  missed(): void;
}

/** Most bytes of one NOTIFY payload (PostgreSQL's limit is 8000). */
const PAYLOAD_MAX = 7000;

export class PgDatabase {
  private readonly subscribers = new Map<string, Subscriber[]>();
  private listener: pg.Client | undefined;
  private listening: Promise<void> | undefined;
  private closed = false;

  private constructor(
    readonly pool: pg.Pool,
    private readonly url: string,
    /** The PostgreSQL schema of this log (undefined: the connection's search_path). */
    readonly schema: string | undefined,
  ) {}

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
    const db = new PgDatabase(pool, url, opts.schema);
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

  /** A channel's name for this log: notifications are per database, and a database may hold several logs. */
  private channel(name: string): string {
    return `${name}_${this.schema ?? 'public'}`;
  }

  /**
   * Tells every node's subscribers of `name` (listen) the strings `items`, on the commit of the
   * transaction `c` (NOTIFY is transactional), in as many notifications as the payload limit needs.
   */
  async notify(c: Queryable, name: string, items: readonly string[]): Promise<void> {
    let batch: string[] = [];
    let size = 0;
    const send = async () => {
      await c.query('SELECT pg_notify($1, $2)', [this.channel(name), JSON.stringify(batch)]);
      batch = [];
      size = 0;
    };
    for (const item of items) {
      if (size + item.length + 4 > PAYLOAD_MAX && batch.length) await send();
      batch.push(item);
      size += item.length + 4;
    }
    if (batch.length || items.length === 0) await send();
  }

  /**
   * Calls `message` with the items of each notification of `name` from any node (this one too),
   * and `missed` when the listening connection was lost and made again (notifications sent
   * meanwhile are gone: the subscriber must assume the worst). One connection serves every channel.
   */
  async listen(name: string, message: (items: string[]) => void, missed: () => void): Promise<void> {
    const channel = this.channel(name);
    const subs = this.subscribers.get(channel) ?? [];
    this.subscribers.set(channel, [...subs, { message: (p) => message(JSON.parse(p) as string[]), missed }]);
    if (!this.listening) this.listening = this.connectListener(false);
    await this.listening;
    if (subs.length === 0) await this.listener?.query(`LISTEN ${channel}`);
  }

  private async connectListener(again: boolean): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, keepAlive: true, connectionTimeoutMillis: 10_000 });
    const lost = () => {
      if (this.listener === client) this.relisten();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      for (const s of this.subscribers.get(n.channel) ?? []) s.message(n.payload ?? '[]');
    });
    await client.connect();
    this.listener = client;
    for (const channel of this.subscribers.keys()) await client.query(`LISTEN ${channel}`);
    if (again) for (const subs of this.subscribers.values()) for (const s of subs) s.missed();
  }

  /** Connects the listener again in a second, for as long as it takes; then tells everyone they may have missed some. */
  private relisten(): void {
    this.listener = undefined;
    if (this.closed) return;
    setTimeout(() => {
      this.listening = this.connectListener(true).catch(() => this.relisten());
    }, 1000).unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.listener?.end().catch(() => {});
    await this.pool.end();
  }
}
