/**
 * API keys on a file system: one JSON file (`auth/apikeys.json`), rewritten whole and durably on
 * every change. A directory made before API keys had roles has `auth/tokens.json` instead, with
 * records `{name, role, sha256, created}`: read as keys with that one role, and written to
 * apikeys.json on the first change.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ApiKeyRecord, ApiKeyRecords } from '../../auth/apikey-records.js';
import { writeDurably } from '../../core/durable.js';

export class FsApiKeyRecords implements ApiKeyRecords {
  private records: ApiKeyRecord[] | undefined;
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly legacyPath?: string,
  ) {}

  private load(): ApiKeyRecord[] {
    this.records ??= readKeys(this.path, this.legacyPath);
    return this.records;
  }

  async all(): Promise<ApiKeyRecord[]> {
    return structuredClone(this.load());
  }

  add(r: ApiKeyRecord): Promise<void> {
    this.records = [...this.load(), structuredClone(r)];
    return this.save();
  }

  revoke(id: string, revoked: NonNullable<ApiKeyRecord['revoked']>): Promise<void> {
    this.records = this.load().map((r) => (r.id === id && !r.revoked ? { ...r, revoked } : r));
    return this.save();
  }

  private save(): Promise<void> {
    const text = `${JSON.stringify(this.records, null, 2)}\n`;
    // Writes in the order of the changes, so a slower earlier write never lands last.
    const w = this.writes.then(async () => {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await writeDurably(this.path, text, 0o600);
    });
    this.writes = w.catch(() => {});
    return w;
  }
}

function readKeys(path: string, legacyPath: string | undefined): ApiKeyRecord[] {
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as ApiKeyRecord[];
  if (!legacyPath || !existsSync(legacyPath)) return [];
  const old = JSON.parse(readFileSync(legacyPath, 'utf8')) as { name: string; role: string; sha256: string; created: string }[];
  return old.map((t) => ({
    id: t.sha256.slice(0, 12),
    name: t.name,
    roles: [t.role],
    sha256: t.sha256,
    created: t.created,
    created_by: 'stele init',
  }));
}
