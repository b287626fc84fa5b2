/**
 * A query (src/index/query.ts AST) evaluated on a segment one block at a time, from the end the
 * page starts at, until the page is full. In a block: fields by scanning their column (a coded
 * field tests each dictionary value once, then maps numbers), words and phrases from the block's
 * postings (a phrase by its tokens' positions; a segment written without them cannot answer
 * phrases and says so). The directory's ranges and codes answer many tests for a whole block
 * without reading it: a block entirely inside `since:` is all matches, one that has no row of the
 * wanted actor none. Answers as src/index/match.ts does on the same rows and text
 * (segment.test.ts holds the two together).
 */
import type { IndexRow } from '../../event/searchable.js';
import { predicate } from '../../index/match.js';
import { fieldKey, type QueryNode, timeMicros } from '../../index/query.js';
import type { SearchPage, StoreQuery } from '../../index/query-store.js';
import { tokenize } from '../../index/unicode61.js';
import { CODED, type Coded, type Column, type Posting, type SegmentReader } from './segment.js';

/** A block's matches: every row, none, or one byte per row. */
type Bits = Uint8Array | 'all' | 'none';
type Block = (b: number) => Bits;

/** The rows of `seg` that `q` matches, a page of them in the page's order. */
export function searchSegment(seg: SegmentReader, q: StoreQuery, page: SearchPage): IndexRow[] {
  if (q.tiers?.length === 0) return [];
  const query = q.root ? compile(seg, q.root, q.nowMs) : () => 'all' as const;
  const tiers = q.tiers ? codedTest(seg, 'tier', (v) => (q.tiers as readonly string[]).includes(v as string)) : undefined;
  const match = tiers ? (b: number) => and(tiers(b), () => query(b)) : query;
  const desc = page.order === 'desc';
  const out: IndexRow[] = [];
  for (let k = 0; k < seg.blocks && out.length < page.limit; k++) {
    const b = desc ? seg.blocks - 1 - k : k;
    const [lo, hi] = seg.block(b).idx;
    if (page.cursor !== undefined && (desc ? lo >= page.cursor : hi <= page.cursor)) continue;
    if (page.bound !== undefined && (desc ? hi < page.bound : lo >= page.bound)) break;
    const bits = match(b);
    if (bits === 'none') continue;
    // Which rows of the block are on the page, by their idx alone; then only those rows are built.
    const idx = seg.column('idx', b) as number[];
    const n = idx.length;
    const take: number[] = [];
    for (let j = 0; j < n && out.length + take.length < page.limit; j++) {
      const i = desc ? n - 1 - j : j;
      if (bits !== 'all' && bits[i] !== 1) continue;
      const x = idx[i] as number;
      if (page.cursor !== undefined && (desc ? x >= page.cursor : x <= page.cursor)) continue;
      if (page.bound !== undefined && (desc ? x < page.bound : x >= page.bound)) continue;
      take.push(i);
    }
    if (take.length > 0) out.push(...seg.rowsAt(b, take));
  }
  return out;
}

/** `a` and `b`, `b` not evaluated when `a` rules the block out. */
function and(a: Bits, b: () => Bits): Bits {
  if (a === 'none') return 'none';
  const y = b();
  if (y === 'none' || a === 'all') return y;
  if (y === 'all') return a;
  const out = a.slice();
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) & (y[i] as number);
  return out;
}

function or(a: Bits, b: Bits): Bits {
  if (a === 'all' || b === 'none') return a;
  if (b === 'all' || a === 'none') return b;
  const out = a.slice();
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) | (b[i] as number);
  return out;
}

function not(a: Bits): Bits {
  if (a === 'all') return 'none';
  if (a === 'none') return 'all';
  return a.map((x) => x ^ 1);
}

function compile(seg: SegmentReader, node: QueryNode, nowMs: number): Block {
  switch (node.kind) {
    case 'and': {
      // Cheapest first: a later child is not evaluated in a block an earlier one ruled out.
      const cs = [...node.children].sort((x, y) => cost(x) - cost(y)).map((c) => compile(seg, c, nowMs));
      return (b) => cs.reduce<Bits>((acc, c) => and(acc, () => c(b)), 'all');
    }
    case 'or': {
      const cs = node.children.map((c) => compile(seg, c, nowMs));
      return (b) => cs.reduce<Bits>((acc, c) => (acc === 'all' ? acc : or(acc, c(b))), 'none');
    }
    case 'not': {
      const c = compile(seg, node.child, nowMs);
      return (b) => not(c(b));
    }
    case 'text': {
      const want = tokenize(node.text);
      return (b) => phrase(seg, b, want, node.prefix);
    }
    case 'field': {
      // The memory store's test of this one field, given each value alone.
      const test = predicate(node, nowMs);
      const key = fieldKey(node.field) as Column;
      const one = (v: unknown) => test({ row: { [key]: v }, tokens: [] });
      if ((CODED as readonly string[]).includes(key)) return codedTest(seg, key as Coded, one);
      const range = (key === 'time' || key === 'idx') && rangeOf(node, nowMs);
      if (range) {
        const { min, max } = range;
        return (b) => {
          const [lo, hi] = seg.block(b)[key as 'time' | 'idx'];
          if (lo >= min && hi <= max) return 'all';
          if (hi < min || lo > max) return 'none';
          const vs = seg.column(key, b) as number[];
          const out = new Uint8Array(vs.length);
          for (let i = 0; i < vs.length; i++) out[i] = (vs[i] as number) >= min && (vs[i] as number) <= max ? 1 : 0;
          return out;
        };
      }
      return (b) => {
        const vs = seg.column(key, b);
        const out = new Uint8Array(vs.length);
        for (let i = 0; i < vs.length; i++) out[i] = one(vs[i]) ? 1 : 0;
        return out;
      };
    }
  }
}

/** A rough order of what a node costs a block: ranges the directory mostly answers, then coded fields, text, the rest. */
function cost(node: QueryNode): number {
  if (node.kind !== 'field') return node.kind === 'text' ? 2 : 4;
  const key = fieldKey(node.field);
  if ((key === 'time' || key === 'idx') && node.test.op !== 'eq' && node.test.op !== 'glob' && node.test.op !== 'present')
    return 0;
  return (CODED as readonly string[]).includes(key) ? 1 : 3;
}

/** The inclusive range a time or index test admits, when it is one. */
function rangeOf(node: QueryNode & { kind: 'field' }, nowMs: number): { min: number; max: number } | null {
  const t = node.test;
  if (t.op === 'range') return { min: t.min ?? -Infinity, max: t.max ?? Infinity };
  if (t.op === 'since') return { min: timeMicros(t.time, nowMs), max: Infinity };
  if (t.op === 'until') return { min: -Infinity, max: timeMicros(t.time, nowMs) - 1 };
  return null;
}

/** A coded column's test: each dictionary value tested once; a block none or all of whose codes pass is not read. */
function codedTest(seg: SegmentReader, c: Coded, test: (v: unknown) => boolean): Block {
  const ok = Uint8Array.from([null, ...seg.dictionary()], (v) => (test(v) ? 1 : 0));
  return (b) => {
    const used = seg.block(b).codes[c];
    const passing = used.filter((n) => ok[n] === 1).length;
    if (passing === 0) return 'none';
    if (passing === used.length) return 'all';
    const codes = seg.codes(c, b);
    const out = new Uint8Array(codes.length);
    for (let i = 0; i < codes.length; i++) out[i] = ok[codes[i] as number] as number;
    return out;
  };
}

/** Rows of block `b` holding the phrase `want` (its last token a prefix when `prefix`). */
function phrase(seg: SegmentReader, b: number, want: string[], prefix: boolean): Bits {
  if (want.length === 0) return 'none';
  const last = want.length - 1;
  const lists: Posting[][] = [];
  for (let k = 0; k < want.length; k++) {
    const w = want[k] as string;
    let list: Posting[];
    if (k === last && prefix) {
      // Merged over every token the last word begins.
      const merged = new Map<number, number[]>();
      seg.forTokens(b, w, (t, ps) => {
        if (!t.startsWith(w)) return false;
        for (const p of ps) merged.set(p.row, [...(merged.get(p.row) ?? []), ...(p.positions ?? [])]);
        return true;
      });
      list = [...merged].map(([row, positions]) => ({ row, positions: positions.sort((x, y) => x - y) }));
    } else list = seg.postings(b, w);
    if (list.length === 0) return 'none';
    lists.push(list);
  }
  const out = new Uint8Array(seg.blockSize(b));
  if (want.length === 1) {
    for (const p of lists[0] as Posting[]) out[p.row] = 1;
    return out;
  }
  if (!seg.positions) throw new Error('this segment keeps no token positions: it cannot answer a phrase');
  // Rows with every word, then a start position where word k sits at start + k.
  const at = lists.map((l) => new Map(l.map((p) => [p.row, new Set(p.positions)])));
  for (const p of lists[0] as Posting[]) {
    if (!at.every((m) => m.has(p.row))) continue;
    if (p.positions?.some((s) => at.every((m, k) => m.get(p.row)?.has(s + k)))) out[p.row] = 1;
  }
  return out;
}
