/**
 * Counting what a query matches, for the console's time histogram and facets: every store tallies
 * the entries it holds (QueryStore.tally), tallies of partitions or pages add up (addTally), and
 * summarize turns the whole into the API's answer. Gaps (expired or erased entries) are not counted:
 * they have no event time, actor or action left to count by.
 */
import type { IndexRow } from '../event/searchable.js';

/** The fields facets count by. */
export const FACETS = ['actor', 'action', 'source', 'outcome', 'tier'] as const;
export type Facet = (typeof FACETS)[number];

/** Buckets of event time: bucket k (0 ≤ k < count) holds [origin + k·width, origin + (k+1)·width), in µs. */
export interface Buckets {
  origin: number;
  width: number;
  count: number;
}

/** What a store counts of the entries a query matches. */
export interface Tally {
  entries: number;
  /** [bucket, count] of every non-empty bucket, in any order. */
  histogram: [number, number][];
  /** Every value of each facet with its count, in any order. */
  facets: Record<Facet, [string, number][]>;
}

export const emptyTally = (): Tally => ({
  entries: 0,
  histogram: [],
  facets: { actor: [], action: [], source: [], outcome: [], tier: [] },
});

const S = 1_000_000;
/** Bucket widths a histogram uses (µs), each a whole step a reader can name. */
const WIDTHS = [
  1,
  2,
  5,
  10,
  15,
  30,
  60,
  120,
  300,
  600,
  900,
  1800,
  3600,
  2 * 3600,
  3 * 3600,
  6 * 3600,
  12 * 3600,
  86_400,
  2 * 86_400,
  7 * 86_400,
  14 * 86_400,
  30 * 86_400,
  91 * 86_400,
  365 * 86_400,
].map((s) => s * S);

/** Buckets at most `max` of which cover event times [min, max] (µs): the narrowest named width, aligned to it. */
export function bucketsFor(span: { min: number; max: number }, most: number): Buckets {
  const fit = (width: number) => {
    const origin = Math.floor(span.min / width) * width;
    return { origin, width, count: Math.floor((span.max - origin) / width) + 1 };
  };
  for (const width of WIDTHS) {
    const b = fit(width);
    if (b.count <= most) return b;
  }
  const year = 365 * 86_400 * S;
  return fit(Math.ceil((span.max - span.min + 1) / most / year + 1) * year);
}

/** The bucket of event time `time` (µs). */
export const bucketOf = (time: number, b: Buckets): number => Math.floor((time - b.origin) / b.width);

/** Adds `more` into `into` (partitions of one store, pages of one scan). */
export function addTally(into: Tally, more: Tally): Tally {
  const add = (a: [string | number, number][], b: [string | number, number][]) => {
    const m = new Map(a);
    for (const [k, n] of b) m.set(k, (m.get(k) ?? 0) + n);
    return [...m];
  };
  into.entries += more.entries;
  into.histogram = add(into.histogram, more.histogram) as [number, number][];
  for (const f of FACETS) into.facets[f] = add(into.facets[f], more.facets[f]) as [string, number][];
  return into;
}

/** The fields a tally counts, as a store row has them. */
export type TallyRow = Pick<IndexRow, 'time' | Facet>;

/** The earliest and latest event time of rows; null when there are none. */
export function spanOf(rows: Iterable<Pick<TallyRow, 'time'>>): { min: number; max: number } | null {
  let span: { min: number; max: number } | null = null;
  for (const { time } of rows)
    span = span ? { min: Math.min(span.min, time), max: Math.max(span.max, time) } : { min: time, max: time };
  return span;
}

/** The tally of rows, counted one by one (the memory store; a scan that checks each entry's access). */
export function tallyRows(rows: Iterable<TallyRow>, b: Buckets | null): Tally {
  let entries = 0;
  const hist = new Map<number, number>();
  const facets = new Map<Facet, Map<string, number>>(FACETS.map((f) => [f, new Map()]));
  for (const r of rows) {
    entries++;
    if (b) {
      const k = bucketOf(r.time, b);
      hist.set(k, (hist.get(k) ?? 0) + 1);
    }
    for (const f of FACETS) {
      const m = facets.get(f) as Map<string, number>;
      m.set(r[f], (m.get(r[f]) ?? 0) + 1);
    }
  }
  const out = emptyTally();
  out.entries = entries;
  out.histogram = [...hist];
  for (const f of FACETS) out.facets[f] = [...(facets.get(f) as Map<string, number>)];
  return out;
}

/** One facet as answered: its most frequent values, and how many matches the rest account for. */
export interface FacetSummary {
  values: { value: string; count: number }[];
  /** Matches whose value is not among `values`. */
  other: number;
  /** How many different values the matches have. */
  distinct: number;
}

export interface Summary {
  entries: number;
  /** Counts of consecutive buckets from `origin` (µs), each `width` µs; null when nothing matched. */
  histogram: { origin: number; width: number; counts: number[] } | null;
  facets: Record<Facet, FacetSummary>;
}

/**
 * The answer: every bucket's count (an entry a store indexed after the span was taken, outside the
 * buckets, is left out of the histogram only), each facet's `top` values by count (ties by value, so
 * the answer does not depend on the store's order).
 */
export function summarize(t: Tally, b: Buckets | null, top: number): Summary {
  let histogram: Summary['histogram'] = null;
  if (b) {
    const counts = new Array<number>(b.count).fill(0);
    for (const [k, n] of t.histogram) if (k >= 0 && k < b.count) counts[k] = (counts[k] ?? 0) + n;
    histogram = { origin: b.origin, width: b.width, counts };
  }
  const facets = {} as Record<Facet, FacetSummary>;
  for (const f of FACETS) {
    const all = [...t.facets[f]].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const values = all.slice(0, top).map(([value, count]) => ({ value, count }));
    const shown = values.reduce((s, v) => s + v.count, 0);
    facets[f] = { values, other: t.entries - shown, distinct: all.length };
  }
  return { entries: t.entries, histogram, facets };
}
