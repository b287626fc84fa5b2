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
import { CODED, type Coded, type Column, type SegmentReader } from './segment.js';

/** A block's matches: every row, none, or one byte per row. */
export type Bits = Uint8Array | 'all' | 'none';
type Block = (b: number) => Bits;

/** Which rows of each block `q` matches (within its tiers). */
export function matcher(seg: SegmentReader, q: StoreQuery): (b: number) => Bits {
  if (q.tiers?.length === 0) return () => 'none';
  const query = q.root ? compile(seg, q.root, q.nowMs) : () => 'all' as const;
  const tiers = q.tiers ? codedTest(seg, 'tier', (v) => (q.tiers as readonly string[]).includes(v as string)) : undefined;
  return tiers ? (b: number) => and(tiers(b), () => query(b)) : query;
}

/** The rows of `seg` that `q` matches, a page of them in the page's order. */
export function searchSegment(seg: SegmentReader, q: StoreQuery, page: SearchPage): IndexRow[] {
  if (q.tiers?.length === 0) return [];
  const match = matcher(seg, q);
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
    const idx = seg.numbers('idx', b);
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
      let words: Word[] | undefined; // looked up in the vocabulary on first use
      return (b) => {
        words ??= want.map((w, k) => wordOf(seg, w, k === want.length - 1 && node.prefix));
        return want.length > 0 && words.every((w) => w.blocks.has(b)) ? phrase(seg, b, words) : 'none';
      };
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
export function codedTest(seg: SegmentReader, c: Coded, test: (v: unknown) => boolean): Block {
  // Only the values this column uses: the dictionary also holds every other coded field's.
  const dict = seg.dictionary();
  const ok = new Uint8Array(dict.length + 1);
  for (const n of seg.used(c)) ok[n] = test(n === 0 ? null : dict[n - 1]) ? 1 : 0;
  return (b) => {
    const used = seg.block(b).codes[c];
    const passing = used.filter((n) => ok[n] === 1).length;
    if (passing === 0) return 'none';
    if (passing === used.length) return 'all';
    const pass = used.map((n) => ok[n] as number);
    const local = seg.localCodes(c, b);
    const out = new Uint8Array(local.length);
    for (let i = 0; i < local.length; i++) out[i] = pass[local[i] as number] as number;
    return out;
  };
}

/** A word of a phrase: the tokens it stands for (itself, or with a prefix every token it begins), each with its blocks. */
interface Word {
  tokens: { id: number; blocks: Set<number> }[];
  blocks: Set<number>;
}

function wordOf(seg: SegmentReader, w: string, prefix: boolean): Word {
  const tokens: Word['tokens'] = [];
  seg.forVocabulary(w, (t, id, blocks) => {
    const hit = prefix ? t.startsWith(w) : t === w;
    if (hit) tokens.push({ id, blocks: new Set(blocks) });
    return hit && prefix;
  });
  return { tokens, blocks: new Set(tokens.flatMap((t) => [...t.blocks])) };
}

/** Rows of block `b` holding the words at consecutive positions. */
function phrase(seg: SegmentReader, b: number, words: Word[]): Bits {
  // Each word's postings in the block, merged over its tokens.
  const lists = words.map((w) => {
    const merged = new Map<number, number[]>();
    for (const t of w.tokens) {
      if (!t.blocks.has(b)) continue;
      for (const p of seg.postingsOf(b, t.id)) merged.set(p.row, [...(merged.get(p.row) ?? []), ...(p.positions ?? [])]);
    }
    return merged;
  });
  const out = new Uint8Array(seg.blockSize(b));
  const [first, ...rest] = lists as [Map<number, number[]>, ...Map<number, number[]>[]];
  if (rest.length === 0) {
    for (const row of first.keys()) out[row] = 1;
    return out;
  }
  if (!seg.positions) throw new Error('this segment keeps no token positions: it cannot answer a phrase');
  // Rows with every word, then a start position where word k sits at start + k.
  const at = lists.map((m) => new Map([...m].map(([row, ps]) => [row, new Set(ps)])));
  for (const [row, starts] of first) {
    if (!at.every((m) => m.has(row))) continue;
    if (starts.some((s) => at.every((m, k) => m.get(row)?.has(s + k)))) out[row] = 1;
  }
  return out;
}
