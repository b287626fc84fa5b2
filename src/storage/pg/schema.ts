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
  // 2: the query store (query-store.ts): entries partitioned by index range, full text as a
  // tsvector of FTS5's unicode61 tokens with positions, tombstones of destroyed entries.
  `
CREATE TABLE stele_q_meta (k text PRIMARY KEY, v text NOT NULL);
CREATE TABLE stele_q_entries (
  idx bigint NOT NULL,
  id text NOT NULL,
  time bigint NOT NULL,
  received bigint NOT NULL,
  actor text NOT NULL,
  actor_type text NOT NULL,
  on_behalf_of text,
  verified smallint NOT NULL,
  action text NOT NULL,
  source text NOT NULL,
  host text,
  resource_type text,
  resource_id text,
  outcome text NOT NULL,
  subject text,
  tier text NOT NULL,
  key_id text,
  principal text NOT NULL,
  tokens tsvector NOT NULL,
  PRIMARY KEY (idx)
) PARTITION BY RANGE (idx);
CREATE INDEX stele_q_entries_time ON stele_q_entries (time);
CREATE INDEX stele_q_entries_actor ON stele_q_entries (actor, time);
CREATE INDEX stele_q_entries_outcome ON stele_q_entries (outcome, action, time);
CREATE INDEX stele_q_entries_key ON stele_q_entries (key_id) WHERE key_id IS NOT NULL;
CREATE INDEX stele_q_entries_tokens ON stele_q_entries USING gin (tokens);
CREATE TABLE stele_q_gaps (
  idx bigint PRIMARY KEY,
  time bigint NOT NULL,
  tier text NOT NULL,
  state text NOT NULL CHECK (state IN ('expired', 'erased')),
  key_id text NOT NULL,
  erasure bigint
);
CREATE INDEX stele_q_gaps_time ON stele_q_gaps (time);
CREATE INDEX stele_q_gaps_key ON stele_q_gaps (key_id) WHERE erasure IS NULL;
`,
  // 3: the log's tiles, entry bundles and state (the checkpoint, compared and swapped; the synced size).
  `
CREATE TABLE stele_tiles (
  level smallint NOT NULL,          -- 0..63 for hash tiles, -1 for entry bundles
  idx bigint NOT NULL,
  width smallint NOT NULL,          -- 256: full (never changes); less: a partial tile
  data bytea NOT NULL,
  PRIMARY KEY (level, idx, width)
);
CREATE TABLE stele_log_state (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  checkpoint text,
  synced bigint NOT NULL DEFAULT 0
);
`,
  // 4: sequencing shared by every node: the next index, every id with its index and content
  // digest (deduplication), and the write-ahead log of entries not yet in the tiles.
  `
ALTER TABLE stele_log_state ADD COLUMN next bigint NOT NULL DEFAULT 0;
CREATE TABLE stele_ids (
  id text PRIMARY KEY,
  idx bigint NOT NULL UNIQUE,
  digest bytea
);
CREATE TABLE stele_wal (
  idx bigint PRIMARY KEY,
  leaf bytea NOT NULL,
  note bytea
);
`,
  // 5: query-store partitions that lost rows and are not yet rewritten (scrubStep), kept with the
  // deletion itself, so a crash between the two cannot leave erased rows in a table file for good.
  `
CREATE TABLE stele_q_scrub (part integer PRIMARY KEY);
`,
  // 6: one active API key per name across nodes creating keys at once.
  `
CREATE UNIQUE INDEX stele_apikeys_name ON stele_apikeys ((record->>'name')) WHERE NOT record ? 'revoked';
`,
  // 7: the write-ahead log keeps leaves only (index notes are plaintext an erasure could not scrub from it).
  `
ALTER TABLE stele_wal DROP COLUMN note;
`,
];
