import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { defaultOf } from '../../core/config/resolve.js';
import type { Buckets, Tally } from '../../index/aggregate.js';
import type { GapRow, IndexBatch, QueryStore, SearchPage, StoreMatch, StoreQuery } from '../../index/query-store.js';
import { SCHEMA_VERSION } from './query-schema.js';
import { SqliteQueryStore } from './query-store.js';

/**
 * Entries per partition. Inserting into a store gets slower as it grows (FTS5 merges more segment
 * levels, index pages fall out of the cache: bench:index, 64,000 rows/s at 0 entries and 50,000 at
 * 1M); a bounded partition keeps the cost of an insert what it is in the first million, whatever
 * the log's size, and bounds what an erasure's scrub rewrites.
 */
export const PARTITION_ENTRIES = defaultOf('queryPartition'); // 2^20
/** Partitions behind the newest are only searched (and erased from): a smaller page cache each. */
const OLD_CACHE_MIB = 16;
/** Partitions behind the newest kept open at once (least recently used closed first). */
const OLD_OPEN = 32;

const FILE = /^p(\d{15})\.db$/;
/** The file that records how the files on disk were made: `<partition size> <schema version>`. */
const CUT_FILE = 'PARTITION';

/**
 * Partitions cut with another size than `size`, or made by another schema version, cannot be
 * walked with this code: they are all deleted (the store is a cache, rebuilt from the log) and the
 * new cut recorded, so no rebuild ever mixes files of two kinds. Files without a record were cut
 * with PARTITION_ENTRIES by schema 4, the last before the record existed.
 */
function dropIfCutDifferently(dir: string, size: number): void {
  const cutFile = join(dir, CUT_FILE);
  const cut = `${size} ${SCHEMA_VERSION}`;
  const files = readdirSync(dir).filter((f) => /^p\d{15}\.db(-wal|-shm)?$/.test(f));
  const was = existsSync(cutFile) ? readFileSync(cutFile, 'utf8').trim() : files.length ? `${PARTITION_ENTRIES} 4` : cut;
  if (was !== cut) for (const f of files) rmSync(join(dir, f), { force: true });
  if (was === cut && existsSync(cutFile)) return;
  // Durable before any partition is cut the new way, so no file is read as another kind.
  const fd = openSync(cutFile, 'w', 0o600);
  try {
    writeSync(fd, `${cut}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** What one batch puts into one partition. */
type PartBatch = { rows: IndexBatch['rows'][number][]; gaps: GapRow[] };
const fileName = (first: number) => `p${String(first).padStart(15, '0')}.db`;

/**
 * The fs driver's query store: the log's index range cut into partitions of PARTITION_ENTRIES
 * entries, one SQLite file each (SqliteQueryStore, `index/query/p<first entry>.db`). Only the
 * newest takes inserts; a search walks the partitions in log order until its page is full, so
 * cursors and results are those of one store. A batch that crosses a boundary is written to the
 * older partition first (its upto then says it is complete), so a crash between the two leaves
 * upto — the newest partition's — where indexing must resume.
 */
export class PartitionedQueryStore implements QueryStore {
  /** First entry index of every partition on disk, ascending. */
  private readonly firsts: number[];
  private readonly open = new Map<number, SqliteQueryStore>();
  /** Partitions that may hold deleted text not yet merged away (all of them after a restart). */
  private readonly dirty: Set<number>;
  private readonly scrubbing = new Set<number>();

  constructor(
    private readonly dir: string,
    private readonly size = PARTITION_ENTRIES,
  ) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`partition size ${size} is not a positive integer`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    dropIfCutDifferently(dir, size);
    this.firsts = readdirSync(dir)
      .flatMap((f) => {
        const m = FILE.exec(f);
        return m ? [Number(m[1])] : [];
      })
      .sort((a, b) => a - b);
    this.dirty = new Set(this.firsts);
  }

  private firstOf(idx: number): number {
    return Math.floor(idx / this.size) * this.size;
  }

  /** The partition starting at `first`, opened (and created) if need be. */
  private part(first: number): SqliteQueryStore {
    const got = this.open.get(first);
    if (got) {
      this.open.delete(first); // most recently used last
      this.open.set(first, got);
      return got;
    }
    const previous = this.firsts.at(-1);
    const newest = previous === undefined || first >= previous;
    const s = new SqliteQueryStore(join(this.dir, fileName(first)), newest ? {} : { cacheMiB: OLD_CACHE_MIB });
    if (!this.firsts.includes(first)) {
      this.firsts.push(first);
      this.firsts.sort((a, b) => a - b);
      // The partition that was the newest is complete: its statistics for the planner, and its
      // large page cache given back (reopened with a small one when searched).
      const old = previous === undefined ? undefined : this.open.get(previous);
      if (old && previous !== undefined && first > previous && !this.scrubbing.has(previous)) {
        old.optimizeSync();
        this.open.delete(previous);
        void old.close();
      }
    }
    this.open.set(first, s);
    this.closeIdle();
    return s;
  }

  /** Closes the least recently used partitions past OLD_OPEN (never the newest). */
  private closeIdle(): void {
    const newest = this.firsts.at(-1);
    let old = this.open.size - (newest !== undefined && this.open.has(newest) ? 1 : 0);
    for (const [first, s] of this.open) {
      if (old <= OLD_OPEN) break;
      if (first === newest || this.scrubbing.has(first)) continue;
      this.open.delete(first);
      void s.close();
      old--;
    }
  }

  async upto(): Promise<number> {
    const newest = this.firsts.at(-1);
    return newest === undefined ? 0 : this.part(newest).upto();
  }

  async insert(batch: IndexBatch): Promise<void> {
    const last = this.firstOf(Math.max(0, batch.upto - 1));
    const byPart = new Map<number, PartBatch>();
    const of = (idx: number) => {
      const first = this.firstOf(idx);
      const got = byPart.get(first);
      if (got) return got;
      const p: PartBatch = { rows: [], gaps: [] };
      byPart.set(first, p);
      return p;
    };
    for (const r of batch.rows) of(r.row.idx).rows.push(r);
    for (const g of batch.gaps ?? []) of(g.idx).gaps.push(g);
    // Older partitions first, each complete to its end; links into partitions behind the batch's
    // last (an erasure's gaps may be anywhere before it) before the last, which records upto.
    for (const [first, p] of [...byPart].sort((a, b) => a[0] - b[0]))
      if (first < last) this.part(first).insertSync({ ...p, upto: first + this.size });
    const links = batch.links ?? [];
    if (links.length)
      for (const first of [...this.firsts]) if (first < last) this.part(first).linkSync(links.filter((l) => l.index > first));
    this.part(last).insertSync({ ...(byPart.get(last) ?? { rows: [], gaps: [] }), links, upto: batch.upto });
  }

  /** The partitions a page walks, in its order, from its cursor to its bound. */
  private walk(page: SearchPage): number[] {
    const size = this.size;
    const inRange = (first: number) => {
      if (page.order === 'desc')
        return (page.cursor === undefined || first < page.cursor) && (page.bound === undefined || first + size > page.bound);
      return (page.cursor === undefined || first + size > page.cursor + 1) && (page.bound === undefined || first < page.bound);
    };
    const fs = this.firsts.filter(inRange);
    return page.order === 'desc' ? fs.reverse() : fs;
  }

  async search(q: StoreQuery, page: SearchPage): Promise<StoreMatch[]> {
    const out: StoreMatch[] = [];
    for (const first of this.walk(page)) {
      const got = await this.part(first).search(q, { ...page, limit: page.limit - out.length });
      out.push(...got);
      if (out.length >= page.limit) break;
    }
    return out;
  }

  async count(q: StoreQuery): Promise<{ entries: number; gaps: number }> {
    const n = { entries: 0, gaps: 0 };
    for (const first of [...this.firsts]) {
      const c = await this.part(first).count(q);
      n.entries += c.entries;
      n.gaps += c.gaps;
    }
    return n;
  }

  async timeSpan(q: StoreQuery): Promise<{ min: number; max: number } | null> {
    let span: { min: number; max: number } | null = null;
    for (const first of [...this.firsts]) {
      const s = await this.part(first).timeSpan(q);
      if (s) span = span ? { min: Math.min(span.min, s.min), max: Math.max(span.max, s.max) } : s;
    }
    return span;
  }

  async *tally(q: StoreQuery, b: Buckets | null): AsyncGenerator<Tally> {
    for (const first of [...this.firsts]) yield this.part(first).tallySync(q, b);
  }

  async keysOfActors(actors: readonly string[]): Promise<string[]> {
    const out = new Set<string>();
    for (const first of [...this.firsts]) for (const k of await this.part(first).keysOfActors(actors)) out.add(k);
    return [...out];
  }

  async deleteByKeys(keyIds: readonly string[], state: (keyId: string) => 'expired' | 'erased'): Promise<number> {
    let n = 0;
    for (const first of [...this.firsts]) {
      const d = await this.part(first).deleteByKeys(keyIds, state);
      if (d > 0) this.dirty.add(first);
      n += d;
    }
    return n;
  }

  /** One merge step in the oldest partition with deletions not yet merged away. */
  async scrubStep(): Promise<boolean> {
    for (const first of [...this.dirty].sort((a, b) => a - b)) {
      this.scrubbing.add(first);
      if (await this.part(first).scrubStep()) return true;
      this.dirty.delete(first);
    }
    return false;
  }

  /** Ends the scrub in every partition it merged (their WALs truncated). */
  async scrubbed(): Promise<void> {
    for (const first of this.scrubbing) await this.part(first).scrubbed();
    this.scrubbing.clear();
    this.closeIdle();
  }

  /** The newest partition's statistics (older ones were optimized when they were the newest). */
  async optimize(): Promise<void> {
    const newest = this.firsts.at(-1);
    if (newest !== undefined) await this.part(newest).optimize();
  }

  async close(): Promise<void> {
    for (const s of this.open.values()) await s.close();
    this.open.clear();
  }
}
