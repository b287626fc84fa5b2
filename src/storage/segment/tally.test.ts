import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spanOf, type Tally, tallyRows } from '../../index/aggregate.js';
import { predicate } from '../../index/match.js';
import { parseQuery } from '../../index/query.js';
import { tokenize } from '../../index/unicode61.js';
import { corpus, NOW_MS, queriesFor } from './corpus.fixture.js';
import { BLOCK_ROWS, encodeSegment, SegmentReader } from './segment.js';
import { countSegment, keysOfActorsSegment, tallySegment, timeSpanSegment } from './tally.js';

test('counts, time spans, tallies and the keys of actors agree with the rows the matcher finds', () => {
  const rows = corpus(BLOCK_ROWS + 2500);
  const seg = new SegmentReader(encodeSegment(rows, { positions: true }));
  const subjects = rows.map(({ row, text }) => ({ row: row as unknown as Record<string, unknown>, tokens: tokenize(text) }));
  const t0 = rows[0]?.row.time as number;
  const buckets = { origin: t0 - 3_600_000_000, width: 600_000_000, count: 60 };
  const sorted = (t: Tally) => ({
    entries: t.entries,
    histogram: [...t.histogram].sort((a, b) => a[0] - b[0]),
    facets: Object.fromEntries(Object.entries(t.facets).map(([f, vs]) => [f, [...vs].sort((a, b) => a[0].localeCompare(b[0]))])),
  });
  for (const q of [...queriesFor(rows).slice(0, 12), 'nothing-at-all', 'since:2000-01-01T00:00:00Z']) {
    const root = parseQuery(q);
    const test = root ? predicate(root, NOW_MS) : () => true;
    for (const tiers of [undefined, ['compliance'], []]) {
      const want = rows.filter(
        (r, i) => test(subjects[i] as (typeof subjects)[number]) && (!tiers || tiers.includes(r.row.tier)),
      );
      const sq = { root, nowMs: NOW_MS, ...(tiers ? { tiers } : {}) };
      assert.equal(countSegment(seg, sq), want.length, q);
      assert.deepEqual(timeSpanSegment(seg, sq), spanOf(want.map((r) => r.row)), q);
      for (const b of [buckets, null])
        assert.deepEqual(
          sorted(tallySegment(seg, sq, b)),
          sorted(
            tallyRows(
              want.map((r) => r.row),
              b,
            ),
          ),
          `${q} ${b ? 'with' : 'without'} buckets`,
        );
    }
  }
  const actors = ['user3@acme.test', 'user7@acme.test', 'nobody@acme.test'];
  assert.deepEqual(
    keysOfActorsSegment(seg, actors).sort(),
    [...new Set(rows.filter((r) => actors.includes(r.row.actor) && r.row.key_id !== null).map((r) => r.row.key_id))].sort(),
  );
  assert.deepEqual(keysOfActorsSegment(seg, ['nobody@acme.test']), []);
});
