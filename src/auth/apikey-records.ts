/**
 * API keys as records: the seam between the key rules (src/auth/apikeys.ts: hashing, names,
 * authentication) and a storage driver (src/storage/<driver>/apikeys.ts). Writes are durable
 * before their promise resolves and land in the order they were made; see the conformance suite
 * (src/storage/conformance/apikeys.ts).
 */

/**
 * One API key as stored: only a SHA-256 of the key itself. Revoked keys stay (who revoked them,
 * when, why) so `stele keys list --all` can show them.
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

export interface ApiKeyRecords {
  /** Every key, revoked ones too, oldest first. */
  all(): Promise<ApiKeyRecord[]>;
  add(r: ApiKeyRecord): Promise<void>;
  /** Marks key `id` revoked. */
  revoke(id: string, revoked: NonNullable<ApiKeyRecord['revoked']>): Promise<void>;
  /** A driver shared by several processes (pg) calls `fn` after any of them adds or revokes a key (or may have). */
  watch?(fn: () => void): Promise<void>;
}
