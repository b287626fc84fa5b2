/**
 * A lease on one PostgreSQL database: at most one holder at a time among every Stele node that
 * asks, for the integrator of a log (docs/design.md). It is a session-level advisory lock held on
 * a connection of its own, so PostgreSQL gives it up the moment that connection ends: a holder
 * that exits, crashes or is killed frees it at once (a holder cut off by the network, once the
 * server's TCP keepalives notice). The holder pings its connection every `heartbeatMs`; when the
 * connection fails it is told (`onLost`) and must stop acting as the holder. In the moment between
 * losing the lock and hearing of it, the checkpoint's compare-and-swap keeps an old holder from
 * publishing over a new one's checkpoint.
 */
import pg from 'pg';

/** The first key of Stele's advisory locks (the second names the lease): 'stel' in ASCII. */
const LEASE_CLASS = 0x7374656c;

export class PgLease {
  private lost = false;
  private readonly timer: NodeJS.Timeout;
  private readonly listeners: ((err: Error) => void)[] = [];

  private constructor(
    private readonly client: pg.Client,
    readonly name: string,
    heartbeatMs: number,
  ) {
    const fail = (err: Error) => {
      if (this.lost) return;
      this.lost = true;
      clearInterval(this.timer);
      for (const l of this.listeners) l(err);
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error('the lease connection ended')));
    this.timer = setInterval(() => {
      client.query('SELECT 1').catch((err: Error) => fail(err));
    }, heartbeatMs);
    this.timer.unref();
  }

  /**
   * Takes the lease `name` if no one holds it; null when someone does. `schema` scopes the name
   * (two logs in one database have two leases).
   */
  static async tryTake(url: string, name: string, opts: { heartbeatMs?: number } = {}): Promise<PgLease | null> {
    const client = new pg.Client({ connectionString: url, keepAlive: true, connectionTimeoutMillis: 10_000 });
    client.on('error', () => {}); // until the lease listens: a failed connect rejects below
    await client.connect();
    try {
      const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [LEASE_CLASS, name]);
      if (r.rows[0]?.ok) return new PgLease(client, name, opts.heartbeatMs ?? 1000);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    await client.end();
    return null;
  }

  /** Whether the lease is still held, as far as this process knows (false once lost or released). */
  get held(): boolean {
    return !this.lost;
  }

  /** Calls `fn` once if the lease is lost (its connection failed). */
  onLost(fn: (err: Error) => void): void {
    this.listeners.push(fn);
  }

  /** Gives the lease up (closing its connection frees the lock). */
  async release(): Promise<void> {
    if (this.lost) return;
    this.lost = true;
    clearInterval(this.timer);
    await this.client.end().catch(() => {});
  }
}
