/** API keys in PostgreSQL (table stele_apikeys: each record as JSON, only a SHA-256 of the key), shared by every node. */
import type { ApiKeyRecord, ApiKeyRecords } from '../../auth/apikey-records.js';
import type { PgDatabase } from './database.js';

export class PgApiKeyRecords implements ApiKeyRecords {
  constructor(private readonly db: PgDatabase) {}

  async all(): Promise<ApiKeyRecord[]> {
    return (await this.db.query<{ record: ApiKeyRecord }>('SELECT record FROM stele_apikeys ORDER BY seq')).rows.map(
      (r) => r.record,
    );
  }

  async add(r: ApiKeyRecord): Promise<void> {
    await this.db.query('INSERT INTO stele_apikeys (id, record) VALUES ($1, $2)', [r.id, JSON.stringify(r)]);
  }

  async revoke(id: string, revoked: NonNullable<ApiKeyRecord['revoked']>): Promise<void> {
    // Only an active key: a second revocation keeps the first's who, when and why.
    await this.db.query(
      "UPDATE stele_apikeys SET record = jsonb_set(record, '{revoked}', $2::jsonb) WHERE id = $1 AND NOT record ? 'revoked'",
      [id, JSON.stringify(revoked)],
    );
  }
}
