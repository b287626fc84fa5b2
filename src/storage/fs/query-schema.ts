/**
 * The query store's tables (SQLite). `entries` holds one row per readable log entry with the
 * searchable fields; the ones with few distinct values (CODED_COLUMNS: actors, actions, hosts,
 * data key ids, ...) as numbers into `terms`, which holds each value once with the number of rows
 * that use it, so a value goes when its last row does (an erased actor's name is not left behind); `fts` is a contentless FTS5 index of the event's text keyed by the same
 * index (rowid), so it never stores the text itself and deleting a row really removes its tokens
 * (secure-delete). `gaps` holds a tombstone per entry whose data key was destroyed (expired or
 * erased): only what the leaf and the key store say without the event — never a searchable field
 * of the event — so a search can show the gap without learning what the entry was. Times are
 * microseconds since the Unix epoch.
 */
export const SCHEMA_VERSION = 7; // 7: the full text leaves out the event time (searchable.ts ftsText)

/**
 * The columns of `entries` stored as `terms` ids (schema 5 on: a quarter of schema 4's bytes for the
 * table and its indexes, bench:storage). Not the event id, resource id or subject (nearly one value
 * per entry: a term would cost more than the text), nor the tier (compared with `gaps.tier`).
 */
/** An event id stored as its 16 bytes (a BLOB; 36 characters as TEXT): the canonical UUID form. */
export const UUID_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const CODED_COLUMNS = [
  'actor',
  'actor_type',
  'on_behalf_of',
  'action',
  'source',
  'host',
  'resource_type',
  'outcome',
  'key_id',
  'principal',
] as const;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS terms (
  id INTEGER PRIMARY KEY,
  value TEXT NOT NULL UNIQUE,
  refs INTEGER NOT NULL             -- entries rows that use it; deleted at 0
) STRICT;
CREATE TABLE IF NOT EXISTS entries (
  idx INTEGER PRIMARY KEY,          -- the entry's index in the log
  id ANY NOT NULL,                  -- event id: its 16 bytes when a lowercase UUID (UUID_ID), else TEXT
  time INTEGER NOT NULL,            -- event time (µs)
  received INTEGER NOT NULL,        -- server receipt time (µs)
  actor INTEGER NOT NULL,           -- term: actor.id
  actor_type INTEGER NOT NULL,      -- term: human | service | ai_agent
  on_behalf_of INTEGER,             -- term
  verified INTEGER NOT NULL,        -- actor.verified, 0/1
  action INTEGER NOT NULL,          -- term
  source INTEGER NOT NULL,          -- term: source.kind
  host INTEGER,                     -- term: source.host
  resource_type INTEGER,            -- term
  resource_id TEXT,
  outcome INTEGER NOT NULL,         -- term: success | failure | denied
  subject TEXT,
  tier TEXT NOT NULL,               -- retention tier
  key_id INTEGER,                   -- term: data key id; NULL when the tier is not encrypted
  principal INTEGER NOT NULL        -- term: ingest principal
) STRICT;
-- Four secondary indexes, no more: each one costs every insert a b-tree write (version 3 had nine
-- and indexed at under half the rate; BENCHMARKS.md, bench:index). Other fields are found by the
-- probe of the newest entries in log order (SqliteQueryStore.probe), then a scan.
CREATE INDEX IF NOT EXISTS entries_time ON entries (time);
CREATE INDEX IF NOT EXISTS entries_actor ON entries (actor, time);
-- outcome with action: "what failed in k8s.*" reads only index entries (outcome alone matches millions)
CREATE INDEX IF NOT EXISTS entries_outcome ON entries (outcome, action, time);
-- erasure and retention (deleteByKeys) and legal holds (keysOfActors reads entries_actor)
CREATE INDEX IF NOT EXISTS entries_key ON entries (key_id) WHERE key_id IS NOT NULL;
-- Column names match entries' where they mean the same, so a compiled query of only index:, tier:,
-- since:/until: runs on both; in gaps "time" is the receipt time (the event's own time is gone).
CREATE TABLE IF NOT EXISTS gaps (
  idx INTEGER PRIMARY KEY,          -- the entry's index in the log
  time INTEGER NOT NULL,            -- the leaf's received (µs)
  tier TEXT NOT NULL,               -- the destroyed key's tier
  state TEXT NOT NULL CHECK (state IN ('expired', 'erased')),
  key_id TEXT NOT NULL,             -- the destroyed key (never matched by a query; links the erasure)
  erasure INTEGER                   -- index of the stele.erasure / stele.retention.run entry, once known
) STRICT;
CREATE INDEX IF NOT EXISTS gaps_time ON gaps (time);
CREATE INDEX IF NOT EXISTS gaps_key ON gaps (key_id) WHERE erasure IS NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(text, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');
INSERT INTO fts (fts, rank) VALUES ('secure-delete', 1);
`;
