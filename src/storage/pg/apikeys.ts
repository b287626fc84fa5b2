/** API keys in PostgreSQL (table stele_apikeys: each record as JSON, only a SHA-256 of the key), shared by every node. */
import type { ApiKeyRecord, ApiKeyRecords } from '../../auth/apikey-records.js';
import { SteleError } from '../../core/errors.js';
import type { PgDatabase } from './database.js';

/** The notification channel of added and revoked keys. */
const CHANGED = 'stele_apikeys_changed';

export class PgApiKeyRecords implements ApiKeyRecords {
  constructor(private readonly db: PgDatabase) {}

  async all(): Promise<ApiKeyRecord[]> {
    return (await this.db.query<{ record: ApiKeyRecord }>('SELECT record FROM stele_apikeys ORDER BY seq')).rows.map(
      (r) => r.record,
    );
  }

  async add(r: ApiKeyRecord): Promise<void> {
    try {
      await this.db.tx(async (c) => {
        await c.query('INSERT INTO stele_apikeys (id, record) VALUES ($1, $2)', [r.id, JSON.stringify(r)]);
        await this.db.notify(c, CHANGED, [r.id]);
      });
    } catch (err) {
      // Two nodes creating one name at once: the unique index (migration 6) keeps one.
      if ((err as { code?: string }).code === '23505')
        throw new SteleError('conflict', `an API key named "${r.name}" exists; revoke it first or choose another name`);
      throw err;
    }
  }

  async revoke(id: string, revoked: NonNullable<ApiKeyRecord['revoked']>): Promise<void> {
    await this.db.tx(async (c) => {
      // Only an active key: a second revocation keeps the first's who, when and why.
      await c.query(
        "UPDATE stele_apikeys SET record = jsonb_set(record, '{revoked}', $2::jsonb) WHERE id = $1 AND NOT record ? 'revoked'",
        [id, JSON.stringify(revoked)],
      );
      await this.db.notify(c, CHANGED, [id]);
    });
  }

  watch(fn: () => void): Promise<void> {
    return this.db.listen(CHANGED, fn, fn);
  }
}
