/** The visible-only scan of searchEvents (reading.ts): what a page and its cursor say depends on nothing hidden. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Match } from '../index/thread.js';
import type { SearchRequest } from '../index/worker.js';
import { scanVisible } from './reading.js';
import type { Stele } from './stele.js';

/** A fake query store over log positions [0, size): `matches` in log order, the tier filter already applied. */
function fakeStele(size: number, matches: readonly number[], calls: { n: number }) {
  const search = async (req: SearchRequest) => {
    calls.n++;
    const desc = req.order === 'desc';
    const inRange = (i: number) =>
      (req.cursor === undefined || (desc ? i < req.cursor : i > req.cursor)) &&
      (req.bound === undefined || (desc ? i >= req.bound : i < req.bound));
    const all = (desc ? [...matches].reverse() : matches).filter(inRange);
    const hits = all.slice(0, req.limit).map((index) => ({ kind: 'entry', index }) as unknown as Match);
    return { hits, ...(hits.length === req.limit ? { next: hits.at(-1)?.index } : {}) };
  };
  return { index: { search }, log: { size } } as unknown as Pick<Stele, 'index' | 'log'>;
}

/** Every page from the start, as the client sees them: (hits, next). */
async function transcript(
  size: number,
  visible: Set<number>,
  hidden: Set<number>,
  order: 'asc' | 'desc',
  limit: number,
  span: number,
) {
  const matches = [...new Set([...visible, ...hidden])].sort((a, b) => a - b);
  const calls = { n: 0 };
  const stele = fakeStele(size, matches, calls);
  const pages: { hits: number[]; next?: number }[] = [];
  let cursor: number | undefined;
  for (let round = 0; round < 10_000; round++) {
    const p = await scanVisible(
      stele,
      { q: '', order, limit, nowMs: 0, ...(cursor === undefined ? {} : { cursor }) },
      (m) => visible.has(m.index),
      size,
      span,
    );
    pages.push({ hits: p.hits.map((h) => h.index), ...(p.next === undefined ? {} : { next: p.next }) });
    if (p.next === undefined) break;
    cursor = p.next;
  }
  return { pages, calls: calls.n };
}

test('pages and cursors are the same whatever is hidden, and list every visible match once, in order', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 300 }),
      fc.array(fc.tuple(fc.nat(299), fc.boolean()), { maxLength: 200 }),
      fc.constantFrom<'asc' | 'desc'>('asc', 'desc'),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 60 }),
      async (size, marks, order, limit, span) => {
        const visible = new Set<number>();
        const hidden = new Set<number>();
        for (const [i, v] of marks) if (i < size && !visible.has(i) && !hidden.has(i)) (v ? visible : hidden).add(i);
        const seen = await transcript(size, visible, hidden, order, limit, span);
        const without = await transcript(size, visible, new Set(), order, limit, span);
        assert.deepEqual(seen.pages, without.pages);
        const all = seen.pages.flatMap((p) => p.hits);
        const want = [...visible].sort((a, b) => a - b);
        assert.deepEqual(all, order === 'asc' ? want : want.reverse());
      },
    ),
    { numRuns: 300 },
  );
});

test('a page scans at most its span: hidden matches cost store pages, not an unbounded scan', async () => {
  const size = 10_000;
  const hidden = new Set(Array.from({ length: size - 1 }, (_, i) => i + 1)); // everything but entry 0
  const { pages, calls } = await transcript(size, new Set([0]), hidden, 'desc', 10, 2_000);
  // 10,000 positions in spans of 2,000: five pages, the first four empty with a cursor at the span's end.
  assert.deepEqual(pages, [
    { hits: [], next: 8_000 },
    { hits: [], next: 6_000 },
    { hits: [], next: 4_000 },
    { hits: [], next: 2_000 },
    { hits: [0] },
  ]);
  assert.ok(calls < 5 * 12, `${calls} store pages`);
});
