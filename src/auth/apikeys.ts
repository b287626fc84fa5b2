import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeDurably } from '../core/durable.js';
import { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';

/**
 * API keys for services (`stele keys create`). Only a SHA-256 of each key is stored: a key is 256
 * random bits, so a plain hash makes the file useless to a thief; the key itself is shown once.
 * Revoked keys stay in the file (who revoked them, when, why) so `stele keys list --all` can show them.
 */
export interface ApiKeyRecord {
  /** Public identifier (not secret), shown in listings and recorded in the log. */
  id: string;
  name: string;
  roles: string[];
  /** The key may only append events whose source.kind / action match one of these globs. */
  restrict?: { sources?: string[]; actions?: string[] };
  sha256: string;
  created: string;
  created_by: string;
  revoked?: { at: string; by: string; reason: string };
}

/** A key's record without its hash: what listings and events show. */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'sha256'>;

export const API_KEY_PREFIX = 'stele_';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');
const info = ({ sha256: _h, ...rest }: ApiKeyRecord): ApiKeyInfo => rest;

export class ApiKeyStore {
  private byHash = new Map<string, ApiKeyRecord>();
  private writes: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private records: ApiKeyRecord[],
  ) {
    this.reindex();
  }

  /**
   * Reads the key file; a directory made before API keys had roles has `tokens.json` records
   * `{name, role, sha256, created}`, read as keys with that one role.
   */
  static load(path: string, legacyPath?: string): ApiKeyStore {
    if (existsSync(path)) return new ApiKeyStore(path, JSON.parse(readFileSync(path, 'utf8')) as ApiKeyRecord[]);
    if (legacyPath && existsSync(legacyPath)) {
      const old = JSON.parse(readFileSync(legacyPath, 'utf8')) as {
        name: string;
        role: string;
        sha256: string;
        created: string;
      }[];
      return new ApiKeyStore(
        path,
        old.map((t) => ({
          id: t.sha256.slice(0, 12),
          name: t.name,
          roles: [t.role],
          sha256: t.sha256,
          created: t.created,
          created_by: 'stele init',
        })),
      );
    }
    return new ApiKeyStore(path, []);
  }

  private reindex(): void {
    this.byHash = new Map(this.records.filter((r) => !r.revoked).map((r) => [r.sha256, r]));
  }

  private save(): Promise<void> {
    const text = `${JSON.stringify(this.records, null, 2)}\n`;
    // Writes in the order of the changes, so a slower earlier write never lands last.
    const w = this.writes.then(() => writeDurably(this.path, text, 0o600));
    this.writes = w.catch(() => {});
    return w;
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
    this.records = [...this.records, rec];
    this.reindex();
    await this.save();
    return { key, info: info(rec) };
  }

  async revoke(name: string, by: string, reason: string): Promise<ApiKeyInfo> {
    const rec = this.records.find((r) => r.name === name && !r.revoked);
    if (!rec) throw new SteleError('not_found', `no active API key named "${name}"`);
    const revoked: ApiKeyRecord = { ...rec, revoked: { at: new Date().toISOString(), by, reason } };
    this.records = this.records.map((r) => (r === rec ? revoked : r));
    this.reindex();
    await this.save();
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
