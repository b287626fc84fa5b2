/**
 * What counts and summaries need of a segment, from the same per-block matches a search uses
 * (search.ts): how many rows match, their time span, and their tally by time bucket and facet
 * (src/index/aggregate.ts) — each read from the columns it needs, a facet as counts of the
 * block's codes rather than row by row. And which data keys seal the rows of some actors (legal
 * holds by actor).
 */
import { type Buckets, bucketOf, emptyTally, FACETS, type Facet, type Tally } from '../../index/aggregate.js';
import type { StoreQuery } from '../../index/query-store.js';
import { type Bits, codedTest, matcher } from './search.js';
import type { SegmentReader } from './segment.js';

/** Each block with rows `q` matches, with which (all of them, or one byte a row). */
function* matches(seg: SegmentReader, q: StoreQuery): Generator<[number, Exclude<Bits, 'none'>]> {
  const match = matcher(seg, q);
  for (let b = 0; b < seg.blocks; b++) {
    const bits = match(b);
    if (bits !== 'none') yield [b, bits];
  }
}

const has = (bits: Exclude<Bits, 'none'>, i: number) => bits === 'all' || bits[i] === 1;

/** How many rows `q` matches. */
export function countSegment(seg: SegmentReader, q: StoreQuery): number {
  let n = 0;
  for (const [b, bits] of matches(seg, q)) {
    if (bits === 'all') n += seg.blockSize(b);
    else for (const x of bits) n += x;
  }
  return n;
}

/** The earliest and latest event time (µs) of the rows `q` matches; null when none does. */
export function timeSpanSegment(seg: SegmentReader, q: StoreQuery): { min: number; max: number } | null {
  let min = Infinity;
  let max = -Infinity;
  for (const [b, bits] of matches(seg, q)) {
    if (bits === 'all') {
      // The directory has it: every row of the block matches.
      const [lo, hi] = seg.block(b).time;
      min = Math.min(min, lo);
      max = Math.max(max, hi);
      continue;
    }
    const time = seg.numbers('time', b);
    for (let i = 0; i < time.length; i++)
      if (bits[i] === 1) {
        min = Math.min(min, time[i] as number);
        max = Math.max(max, time[i] as number);
      }
  }
  return min <= max ? { min, max } : null;
}

/** The rows `q` matches counted by bucket of event time (none when `buckets` is null) and by each facet's value. */
export function tallySegment(seg: SegmentReader, q: StoreQuery, buckets: Buckets | null): Tally {
  const dict = seg.dictionary();
  const hist = new Map<number, number>();
  const facets = new Map<Facet, Map<string, number>>(FACETS.map((f) => [f, new Map()]));
  let entries = 0;
  for (const [b, bits] of matches(seg, q)) {
    const n = seg.blockSize(b);
    const time = buckets ? seg.numbers('time', b) : null;
    for (let i = 0; i < n; i++) {
      if (!has(bits, i)) continue;
      entries++;
      if (time && buckets) {
        const k = bucketOf(time[i] as number, buckets);
        hist.set(k, (hist.get(k) ?? 0) + 1);
      }
    }
    for (const f of FACETS) {
      // Counts per place in the block's code list, then one addition per value the block uses.
      const used = seg.block(b).codes[f];
      const local = seg.localCodes(f, b);
      const counts = new Array<number>(used.length).fill(0);
      for (let i = 0; i < n; i++) {
        const k = local[i] as number;
        if (has(bits, i)) counts[k] = (counts[k] as number) + 1;
      }
      const m = facets.get(f) as Map<string, number>;
      counts.forEach((c, k) => {
        if (c === 0) return;
        const value = dict[(used[k] as number) - 1] as string; // facet fields are never null
        m.set(value, (m.get(value) ?? 0) + c);
      });
    }
  }
  const out = emptyTally();
  out.entries = entries;
  out.histogram = [...hist];
  for (const f of FACETS) out.facets[f] = [...(facets.get(f) as Map<string, number>)];
  return out;
}

/** The data keys that seal rows of any of `actors`. */
export function keysOfActorsSegment(seg: SegmentReader, actors: readonly string[]): string[] {
  const wanted = new Set(actors);
  const ofActors = codedTest(seg, 'actor', (v) => wanted.has(v as string));
  const dict = seg.dictionary();
  const keys = new Set<string>();
  for (let b = 0; b < seg.blocks; b++) {
    const bits = ofActors(b);
    if (bits === 'none') continue;
    const used = seg.block(b).codes.key_id;
    const local = seg.localCodes('key_id', b);
    for (let i = 0; i < local.length; i++) {
      const n = used[local[i] as number] as number;
      if (n !== 0 && has(bits, i)) keys.add(dict[n - 1] as string);
    }
  }
  return [...keys];
}
