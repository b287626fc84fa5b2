/**
 * The PostgreSQL driver's tables, as migrations: MIGRATIONS[v] takes a database from schema
 * version v to v + 1 (database.ts applies them in order, in one transaction). A released
 * migration never changes; a new one is appended.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the state stores (data keys, the subject pepper, legal holds, API keys).
  `
CREATE TABLE stele_meta (k text PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE stele_keys (
  id text PRIMARY KEY,
  tier text NOT NULL,
  day text NOT NULL,
  subject text,
  wrapped bytea,                    -- NULL once destroyed
  master text,
  created text NOT NULL,
  state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'expired', 'erased')),
  destroyed text,
  reason text
);
CREATE UNIQUE INDEX stele_keys_slot ON stele_keys (tier, day, coalesce(subject, '')) WHERE state = 'active';
CREATE INDEX stele_keys_subject ON stele_keys (subject) WHERE subject IS NOT NULL;
CREATE INDEX stele_keys_expiry ON stele_keys (state, tier, day);
CREATE TABLE stele_holds (
  seq bigserial,                    -- insertion order (holds list oldest first)
  id text PRIMARY KEY,
  reason text NOT NULL,
  tier text,
  actor text,
  subject text,
  subject_hash text,
  since bigint,
  until bigint,
  created text NOT NULL,
  created_by text NOT NULL,
  released text,
  released_by text,
  release_reason text
);
CREATE TABLE stele_apikeys (
  seq bigserial,
  id text PRIMARY KEY,
  record jsonb NOT NULL             -- the ApiKeyRecord (only a SHA-256 of the key)
);
`,
];
