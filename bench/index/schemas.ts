/**
 * The query-store schemas the index benchmark compares: the old one (schema version 3, as it was
 * before issue 12 target 2) kept here verbatim, and variants of the new one, each measured the
 * same way (bench/index/run.ts).
 */
export const OLD_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS entries (
  idx INTEGER PRIMARY KEY,          -- the entry's index in the log
  id TEXT NOT NULL,                 -- event id
  time INTEGER NOT NULL,            -- event time (µs)
  received INTEGER NOT NULL,        -- server receipt time (µs)
  actor TEXT NOT NULL,              -- actor.id
  actor_type TEXT NOT NULL,         -- human | service | ai_agent
  on_behalf_of TEXT,
  verified INTEGER NOT NULL,        -- actor.verified, 0/1
  action TEXT NOT NULL,
  source TEXT NOT NULL,             -- source.kind
  host TEXT,                        -- source.host
  resource_type TEXT,
  resource_id TEXT,
  outcome TEXT NOT NULL,            -- success | failure | denied
  subject TEXT,
  tier TEXT NOT NULL,               -- retention tier
  key_id TEXT,                      -- data key id; NULL when the tier is not encrypted
  principal TEXT NOT NULL           -- ingest principal
) STRICT;
CREATE INDEX IF NOT EXISTS entries_time ON entries (time);
CREATE INDEX IF NOT EXISTS entries_actor ON entries (actor, time);
CREATE INDEX IF NOT EXISTS entries_action ON entries (action, time);
CREATE INDEX IF NOT EXISTS entries_source ON entries (source, time);
-- outcome with action: "what failed in k8s.*" reads only index entries (outcome alone matches millions)
CREATE INDEX IF NOT EXISTS entries_outcome ON entries (outcome, action, time);
CREATE INDEX IF NOT EXISTS entries_resource ON entries (resource_id);
CREATE INDEX IF NOT EXISTS entries_subject ON entries (subject) WHERE subject IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_key ON entries (key_id) WHERE key_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_id ON entries (id);
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

import { SCHEMA_SQL, SCHEMA_VERSION } from '../../src/storage/fs/query-schema.js';

export interface Variant {
  key: string;
  label: string;
  /** The whole schema (meta and entries at least; `fts` when it has full text). */
  sql: string;
  /** Pragmas set on open besides SqliteQueryStore's. */
  pragmas?: string[];
  /** Rows a transaction collects over several batches before it commits (default: one batch, one transaction). */
  txRows?: number;
  /** Sizes it is measured at (default: every size). */
  onlyAt?: number[];
}

const META = 'CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) STRICT;';
const ENTRIES = /CREATE TABLE IF NOT EXISTS entries \([\s\S]*?\) STRICT;/.exec(OLD_SCHEMA_SQL)?.[0] as string;
const FTS = (opts: string) =>
  `CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(text, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2'${opts});\n` +
  "INSERT INTO fts (fts, rank) VALUES ('secure-delete', 1);";
const LEAN = [
  'CREATE INDEX IF NOT EXISTS entries_time ON entries (time);',
  'CREATE INDEX IF NOT EXISTS entries_actor ON entries (actor, time);',
  'CREATE INDEX IF NOT EXISTS entries_outcome ON entries (outcome, action, time);',
  'CREATE INDEX IF NOT EXISTS entries_key ON entries (key_id) WHERE key_id IS NOT NULL;',
].join('\n');
const schema = (...parts: string[]) => `${[META, ENTRIES, ...parts].join('\n')}\n`;
const BIG_CACHE = ['cache_size = -262144'];
/** Variants measured only where their store is quick to build (the comparison is made at 1M). */
const SMALL = [0, 1_000_000];

export const VARIANTS: readonly Variant[] = [
  { key: 'raw', label: 'Raw limit: plain INSERT, no index, no FTS', sql: schema(), onlyAt: SMALL },
  { key: 'old', label: 'Old schema (v3): 9 indexes + FTS5 detail=full', sql: OLD_SCHEMA_SQL, onlyAt: SMALL },
  { key: 'old-cache', label: 'Old schema, 256 MiB page cache', sql: OLD_SCHEMA_SQL, pragmas: BIG_CACHE, onlyAt: SMALL },
  {
    key: 'lean',
    label: `Schema ${SCHEMA_VERSION} (4 indexes: time, actor+time, outcome+action+time, key; coded fields; FTS5 detail=full), 2 MiB page cache`,
    sql: SCHEMA_SQL,
    pragmas: ['cache_size = -2000'],
  },
  {
    key: 'lean-cache',
    label: `Schema ${SCHEMA_VERSION}, 256 MiB page cache (what SqliteQueryStore sets)`,
    sql: SCHEMA_SQL,
    pragmas: BIG_CACHE,
  },
  { key: 'lean-nofts', label: '4 indexes, no FTS', sql: schema(LEAN), pragmas: BIG_CACHE, onlyAt: SMALL },
  { key: 'fts-only', label: 'FTS5 detail=full only, no index', sql: schema(FTS('')), pragmas: BIG_CACHE, onlyAt: SMALL },
  {
    key: 'lean-tx',
    label: `Schema ${SCHEMA_VERSION}, 256 MiB cache, 10,240-row transactions`,
    sql: SCHEMA_SQL,
    pragmas: BIG_CACHE,
    txRows: 10_240,
  },
  {
    key: 'nofts-tx',
    label: '4 indexes, no FTS, 256 MiB cache, 10,240-row transactions',
    sql: schema(LEAN),
    pragmas: BIG_CACHE,
    txRows: 10_240,
    onlyAt: SMALL,
  },
  {
    key: 'fts-tx',
    label: 'FTS5 only, 256 MiB cache, 10,240-row transactions',
    sql: schema(FTS('')),
    pragmas: BIG_CACHE,
    txRows: 10_240,
    onlyAt: SMALL,
  },
  {
    key: 'old-tx',
    label: 'Old schema, 256 MiB cache, 10,240-row transactions',
    sql: OLD_SCHEMA_SQL,
    pragmas: BIG_CACHE,
    txRows: 10_240,
    onlyAt: SMALL,
  },
  {
    key: 'am8-tx',
    label: `Schema ${SCHEMA_VERSION}, 256 MiB cache, 10,240-row transactions, FTS5 automerge=8 (default 4)`,
    sql: `${SCHEMA_SQL}INSERT INTO fts (fts, rank) VALUES ('automerge', 8);\n`,
    pragmas: BIG_CACHE,
    txRows: 10_240,
    onlyAt: SMALL,
  },
  {
    key: 'am16-tx',
    label: `Schema ${SCHEMA_VERSION}, 256 MiB cache, 10,240-row transactions, FTS5 automerge=16, crisismerge=64`,
    sql: `${SCHEMA_SQL}INSERT INTO fts (fts, rank) VALUES ('automerge', 16);\nINSERT INTO fts (fts, rank) VALUES ('crisismerge', 64);\n`,
    pragmas: BIG_CACHE,
    txRows: 10_240,
    onlyAt: SMALL,
  },
  {
    key: 'lean-column',
    label: '4 indexes + FTS5 detail=column (no phrase queries: not usable)',
    sql: schema(LEAN, FTS(", detail='column'")),
    pragmas: BIG_CACHE,
    onlyAt: [0],
  },
];
