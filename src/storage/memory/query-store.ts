/**
 * The in-memory query store: the same answers as the SQLite store (the conformance suite runs
 * both, and compares them on random data), by walking the query's AST over every row (src/index/match.ts). Full text
 * uses FTS5's tokenizer rebuilt in JavaScript (src/index/unicode61.ts). For tests and the memory backend:
 * every search is a scan.
 */
import type { IndexRow } from '../../event/searchable.js';
import { type Buckets, spanOf, type Tally, tallyRows } from '../../index/aggregate.js';
import { predicate } from '../../index/match.js';
import { canMatchGaps } from '../../index/query.js';
import type { GapRow, IndexBatch, QueryStore, SearchPage, StoreMatch, StoreQuery } from '../../index/query-store.js';
import { tokenize } from '../../index/unicode61.js';

interface Entry {
  row: IndexRow;
  tokens: string[];
}

/** Indices in log order, kept sorted (inserts come in order; deletions are rare). */
class Sorted<T> {
  readonly byIdx = new Map<number, T>();
  private order: number[] = [];
  private sorted = true;
  private stale = false;

  set(idx: number, v: T): void {
    if (!this.byIdx.has(idx)) {
      if (this.order.length > 0 && idx < (this.order.at(-1) as number)) this.sorted = false;
      this.order.push(idx);
    }
    this.byIdx.set(idx, v);
  }

  delete(idx: number): void {
    if (this.byIdx.delete(idx)) this.stale = true;
  }

  /** The indices, ascending. */
  indices(): readonly number[] {
    if (this.stale) {
      // A deleted index set again is in the list twice.
      this.order = [...new Set(this.order)].filter((i) => this.byIdx.has(i));
      this.stale = false;
    }
    if (!this.sorted) {
      this.order.sort((a, b) => a - b);
      this.sorted = true;
    }
    return this.order;
  }
}

/** What a memory query store holds: kept by its backend, so the store opened again finds it. */
export class QueryData {
  readonly entries = new Sorted<Entry>();
  readonly gaps = new Sorted<GapRow>();
  done = 0;
}

export class MemoryQueryStore implements QueryStore {
  private closed = false;

  constructor(private readonly data = new QueryData()) {}

  private check(): void {
    if (this.closed) throw new Error('the query store is closed');
  }

  async upto(): Promise<number> {
    this.check();
    return this.data.done;
  }

  async insert({ rows, gaps = [], links = [], upto }: IndexBatch): Promise<void> {
    this.check();
    // All or nothing, as the SQLite store's transaction: check before changing anything.
    const seen = new Set<number>();
    for (const { row } of rows) {
      if (this.data.entries.byIdx.has(row.idx) || seen.has(row.idx)) throw new Error(`entry ${row.idx} is already indexed`);
      seen.add(row.idx);
    }
    for (const { row, text } of rows) this.data.entries.set(row.idx, { row: { ...row }, tokens: tokenize(text) });
    for (const g of gaps) this.data.gaps.set(g.idx, { ...g });
    for (const l of links) {
      const ids = new Set(l.keyIds);
      for (const g of this.data.gaps.byIdx.values()) {
        if (g.erasure === null && g.idx < l.index && ids.has(g.key_id)) g.erasure = l.index;
      }
    }
    this.data.done = upto;
  }

  /** The matching entries and gaps, in page order, with at most `limit` (undefined: all) of them. */
  private matches(q: StoreQuery, page: Omit<SearchPage, 'limit'>, limit?: number): StoreMatch[] {
    this.check();
    if (q.tiers?.length === 0) return [];
    const tiers = q.tiers ? new Set(q.tiers) : null;
    const test = q.root ? predicate(q.root, q.nowMs) : () => true;
    const inPage = (idx: number) =>
      page.order === 'desc'
        ? (page.cursor === undefined || idx < page.cursor) && (page.bound === undefined || idx >= page.bound)
        : (page.cursor === undefined || idx > page.cursor) && (page.bound === undefined || idx < page.bound);
    const walk = <T>(s: Sorted<T>, hit: (v: T) => StoreMatch | null): StoreMatch[] => {
      const out: StoreMatch[] = [];
      const idxs = s.indices();
      const n = idxs.length;
      for (let k = 0; k < n && (limit === undefined || out.length < limit); k++) {
        const idx = idxs[page.order === 'desc' ? n - 1 - k : k] as number;
        if (!inPage(idx)) continue;
        const m = hit(s.byIdx.get(idx) as T);
        if (m) out.push(m);
      }
      return out;
    };
    const found = walk(this.data.entries, (e) =>
      (!tiers || tiers.has(e.row.tier)) && test({ row: e.row as unknown as Record<string, unknown>, tokens: e.tokens })
        ? { kind: 'entry', row: { ...e.row } }
        : null,
    );
    if (!canMatchGaps(q.root)) return found;
    const gaps = walk(this.data.gaps, (g) =>
      (!tiers || tiers.has(g.tier)) && test({ row: g as unknown as Record<string, unknown>, tokens: [] })
        ? { kind: 'gap', gap: { ...g } }
        : null,
    );
    const at = (m: StoreMatch) => (m.kind === 'entry' ? m.row.idx : m.gap.idx);
    const sign = page.order === 'desc' ? -1 : 1;
    const all = [...found, ...gaps].sort((a, b) => sign * (at(a) - at(b)));
    return limit === undefined ? all : all.slice(0, limit);
  }

  async search(q: StoreQuery, page: SearchPage): Promise<StoreMatch[]> {
    return this.matches(q, page, page.limit);
  }

  async count(q: StoreQuery): Promise<{ entries: number; gaps: number }> {
    const all = this.matches(q, { order: 'asc' });
    const gaps = all.filter((m) => m.kind === 'gap').length;
    return { entries: all.length - gaps, gaps };
  }

  private entryRows(q: StoreQuery): IndexRow[] {
    return this.matches(q, { order: 'asc' }).flatMap((m) => (m.kind === 'entry' ? [m.row] : []));
  }

  async timeSpan(q: StoreQuery): Promise<{ min: number; max: number } | null> {
    return spanOf(this.entryRows(q));
  }

  async *tally(q: StoreQuery, b: Buckets | null): AsyncGenerator<Tally> {
    yield tallyRows(this.entryRows(q), b);
  }

  async keysOfActors(actors: readonly string[]): Promise<string[]> {
    this.check();
    const want = new Set(actors);
    const out = new Set<string>();
    for (const { row } of this.data.entries.byIdx.values()) if (want.has(row.actor) && row.key_id !== null) out.add(row.key_id);
    return [...out];
  }

  async deleteByKeys(keyIds: readonly string[], state: (keyId: string) => 'expired' | 'erased'): Promise<number> {
    this.check();
    const keys = new Set(keyIds);
    let n = 0;
    for (const { row } of [...this.data.entries.byIdx.values()]) {
      if (row.key_id === null || !keys.has(row.key_id)) continue;
      this.data.entries.delete(row.idx);
      this.data.gaps.set(row.idx, {
        idx: row.idx,
        time: row.received,
        tier: row.tier,
        state: state(row.key_id),
        key_id: row.key_id,
        erasure: null,
      });
      n++;
    }
    return n;
  }

  /** Nothing is on a disk: deleted rows are gone once deleteByKeys returns. */
  async scrubStep(): Promise<boolean> {
    this.check();
    return false;
  }

  async scrubbed(): Promise<void> {
    this.check();
  }

  async optimize(): Promise<void> {
    this.check();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
