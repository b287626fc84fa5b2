/**
 * What the index thread needs of a query store: the seam between the query language (query.ts,
 * a neutral AST) and a driver that stores and searches the rows (SQLite today, PostgreSQL next).
 * Async, because a driver may be across a network. Types here say nothing of how a driver stores
 * or evaluates anything; src/storage/conformance/query.ts says what every driver must do.
 */
import type { IndexRow } from '../event/searchable.js';
import type { Buckets, Tally } from './aggregate.js';
import type { QueryNode } from './query.js';

export type Order = 'desc' | 'asc';

/** A tombstone: an entry whose data key was destroyed, with nothing of what the event said. */
export interface GapRow {
  idx: number;
  /** The leaf's received (µs). */
  time: number;
  tier: string;
  state: 'expired' | 'erased';
  /** The destroyed key (never matched by a query; links the erasure). */
  key_id: string;
  /** Index of the stele.erasure / stele.retention.run entry that destroyed the key, once known. */
  erasure: number | null;
}

/** What a search finds: a readable entry's row, or the tombstone of a destroyed one. */
export type StoreMatch = { kind: 'entry'; row: IndexRow } | { kind: 'gap'; gap: GapRow };

/**
 * A stele.erasure / stele.retention.run entry and the keys it destroyed (the caller resolves them
 * from the key store): the store links every gap of those keys before `index` that is not linked yet.
 */
export interface ErasureLink {
  index: number;
  keyIds: readonly string[];
}

/** One batch for insert: applied atomically. */
export interface IndexBatch {
  /** Readable entries, each with the text full-text search sees (extract.ts). */
  rows: readonly { row: IndexRow; text: string }[];
  /** Tombstones of entries destroyed before they were indexed (replacing any of the same index). */
  gaps?: readonly GapRow[];
  /** Linked after the rows and gaps, so gaps of the same batch are linked. */
  links?: readonly ErasureLink[];
  /** Everything before this index is now indexed (or unreadable). */
  upto: number;
  /**
   * The upto this batch follows. A store several nodes write (pg) refuses the batch with
   * StaleBatch when its upto is elsewhere: another node indexed those entries meanwhile.
   */
  from?: number;
}

/** A batch that does not follow the store's upto (IndexBatch.from): nothing of it was stored. */
export class StaleBatch extends Error {
  constructor(readonly upto: number) {
    super(`the query store is at ${upto}: another node indexed these entries`);
  }
}

/** A search: a parsed query and who may see what. */
export interface StoreQuery {
  /** The parsed query (parseQuery); null matches every entry. */
  root: QueryNode | null;
  /** Anchors relative times (`since:7d`), in ms since the epoch. */
  nowMs: number;
  /** Only entries and gaps of these tiers (an empty list: nothing); absent: every tier. */
  tiers?: readonly string[];
}

export interface SearchPage {
  /** Only matches before (desc) or after (asc) this index: the previous page's last. */
  cursor?: number;
  limit: number;
  order: Order;
  /** Only matches at or after (desc) or before (asc) this index: the end of a bounded scan. */
  bound?: number;
}

/**
 * A cache of the log's readable entries and the tombstones of destroyed ones, rebuilt from the log
 * and the key store (`stele reindex`); a crash may lose the last batches, and the index thread
 * re-indexes from upto() on start.
 */
export interface QueryStore {
  /** Entries [0, upto) have been indexed (or were unreadable). */
  upto(): Promise<number>;
  /** Indexes a batch (each index once: callers skip what is below upto) and records its upto, atomically. */
  insert(batch: IndexBatch): Promise<void>;
  /**
   * A page of matches in log order: the entries the query matches, merged with the gaps it matches
   * (only a query of index:, tier: and since:/until: matches gaps: canMatchGaps).
   */
  search(q: StoreQuery, page: SearchPage): Promise<StoreMatch[]>;
  /** How many entries and gaps the query matches. */
  count(q: StoreQuery): Promise<{ entries: number; gaps: number }>;
  /** The earliest and latest event time (µs) of the entries the query matches; null when none does. */
  timeSpan(q: StoreQuery): Promise<{ min: number; max: number } | null>;
  /**
   * The entries the query matches, counted by bucket of event time (no histogram when `b` is null)
   * and by each facet's value (aggregate.ts); gaps are not counted. In parts that add up to the
   * whole (addTally), so a caller can do other work between them (a partition each).
   */
  tally(q: StoreQuery, b: Buckets | null): AsyncIterable<Tally>;
  /** Data keys that seal entries of any of these actors (legal holds by actor keep them). */
  keysOfActors(actors: readonly string[]): Promise<string[]>;
  /**
   * Replaces every entry sealed by these keys with its tombstone (`state` says how each key was
   * destroyed); returns how many. Then scrubStep until false, and scrubbed, take what was deleted
   * off the disk.
   */
  deleteByKeys(keyIds: readonly string[], state: (keyId: string) => 'expired' | 'erased'): Promise<number>;
  /**
   * One bounded step of removing deleted data from the store's files (e.g. merging full-text
   * segments); false once there is nothing left. In steps, so searches and indexing go on between.
   */
  scrubStep(): Promise<boolean>;
  /** Ends a scrub: nothing deleted before it survives anywhere on disk (e.g. a write-ahead log). */
  scrubbed(): Promise<void>;
  /** Refreshes the planner's statistics (after bulk loads). */
  optimize(): Promise<void>;
  close(): Promise<void>;
}
