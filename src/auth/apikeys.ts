/**
 * API keys for services (`stele keys create`). Only a SHA-256 of each key is stored: a key is 256
 * random bits, so a plain hash makes the records useless to a thief; the key itself is shown once.
 * The records are read once and kept in memory, so authenticating a request touches none.
 */
import { createHash, randomBytes } from 'node:crypto';
import { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { ApiKeyRecord, ApiKeyRecords } from './apikey-records.js';

export type { ApiKeyRecord } from './apikey-records.js';

/** A key's record without its hash: what listings and events show. */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'sha256'>;

export const API_KEY_PREFIX = 'stele_';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');
const info = ({ sha256: _h, ...rest }: ApiKeyRecord): ApiKeyInfo => rest;

export class ApiKeyStore {
  private byHash = new Map<string, ApiKeyRecord>();

  private constructor(
    private readonly store: ApiKeyRecords,
    private records: ApiKeyRecord[],
  ) {
    this.reindex();
  }

  static async open(records: ApiKeyRecords): Promise<ApiKeyStore> {
    const store = new ApiKeyStore(records, await records.all());
    // Keys made or revoked through another node (a shared driver): read again.
    await records.watch?.(() => {
      records.all().then(
        (all) => {
          store.records = all;
          store.reindex();
        },
        () => {}, // the next change (or reconnect) reads again
      );
    });
    return store;
  }

  private reindex(): void {
    this.byHash = new Map(this.records.filter((r) => !r.revoked).map((r) => [r.sha256, r]));
  }

  /** Creates a key and returns it in the clear — the only time it is ever visible. */
  async create(spec: {
    name: string;
    roles: string[];
    restrict?: ApiKeyRecord['restrict'];
    by: string;
  }): Promise<{ key: string; info: ApiKeyInfo }> {
    if (!NAME.test(spec.name)) {
      throw new SteleError(
        'bad_request',
        `key name ${JSON.stringify(spec.name)}: use letters, digits, ., _, @ and - (at most 128)`,
      );
    }
    if (this.records.some((r) => r.name === spec.name && !r.revoked)) {
      throw new SteleError('conflict', `an API key named "${spec.name}" exists; revoke it first or choose another name`);
    }
    if (spec.roles.length === 0) throw new SteleError('bad_request', 'an API key needs at least one role (--role)');
    const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const rec: ApiKeyRecord = {
      id: randomBytes(6).toString('hex'),
      name: spec.name,
      roles: [...new Set(spec.roles)],
      ...(spec.restrict && (spec.restrict.sources?.length || spec.restrict.actions?.length) ? { restrict: spec.restrict } : {}),
      sha256: hashKey(key),
      created: new Date().toISOString(),
      created_by: spec.by,
    };
    // In memory first, so a second create of the name meanwhile is refused.
    this.records = [...this.records, rec];
    this.reindex();
    try {
      await this.store.add(rec);
    } catch (err) {
      this.records = this.records.filter((r) => r !== rec);
      this.reindex();
      throw err;
    }
    return { key, info: info(rec) };
  }

  async revoke(name: string, by: string, reason: string): Promise<ApiKeyInfo> {
    const rec = this.records.find((r) => r.name === name && !r.revoked);
    if (!rec) throw new SteleError('not_found', `no active API key named "${name}"`);
    const how = { at: new Date().toISOString(), by, reason };
    const revoked: ApiKeyRecord = { ...rec, revoked: how };
    // Refused at once in memory; the record follows.
    this.records = this.records.map((r) => (r === rec ? revoked : r));
    this.reindex();
    await this.store.revoke(rec.id, how);
    return info(revoked);
  }

  list(all = false): ApiKeyInfo[] {
    return this.records.filter((r) => all || !r.revoked).map(info);
  }

  /** The principal of a presented key, or why it is refused ('unknown' or 'revoked'). */
  authenticate(key: string): Principal | 'unknown' | 'revoked' {
    const h = hashKey(key);
    const r = this.byHash.get(h);
    if (!r) return this.records.some((x) => x.sha256 === h) ? 'revoked' : 'unknown';
    return {
      kind: 'apikey',
      id: r.name,
      method: 'apikey',
      groups: [],
      roles: r.roles,
      ...(r.restrict ? { restrict: r.restrict } : {}),
    };
  }
}
