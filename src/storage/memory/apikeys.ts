/** API keys in memory (tests, and the memory backend); copied in and out. */
import type { ApiKeyRecord, ApiKeyRecords } from '../../auth/apikey-records.js';

const copy = (r: ApiKeyRecord): ApiKeyRecord => structuredClone(r);

export class MemoryApiKeyRecords implements ApiKeyRecords {
  private records: ApiKeyRecord[] = [];

  async all(): Promise<ApiKeyRecord[]> {
    return this.records.map(copy);
  }

  async add(r: ApiKeyRecord): Promise<void> {
    this.records.push(copy(r));
  }

  async revoke(id: string, revoked: NonNullable<ApiKeyRecord['revoked']>): Promise<void> {
    this.records = this.records.map((r) => (r.id === id && !r.revoked ? { ...r, revoked: { ...revoked } } : r));
  }
}
