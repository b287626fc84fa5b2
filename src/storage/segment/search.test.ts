import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQuery } from '../../index/query.js';
import { assertSearches, corpus, NOW_MS, queriesFor } from './corpus.fixture.js';
import { searchSegment } from './search.js';
import { BLOCK_ROWS, encodeSegment, SegmentReader } from './segment.js';

test('a search of a segment finds what the memory store finds, page by page, in both orders, within tiers', () => {
  const rows = corpus(BLOCK_ROWS + 2500);
  const seg = new SegmentReader(encodeSegment(rows, { positions: true }));
  assertSearches(seg, rows, queriesFor(rows));
  const nowMs = NOW_MS;
  const bound = rows[5000]?.row.idx as number;
  assert.deepEqual(
    searchSegment(seg, { root: null, nowMs }, { order: 'desc', limit: 1e9, bound }).map((r) => r.idx),
    rows
      .filter((r) => r.row.idx >= bound)
      .map((r) => r.row.idx)
      .reverse(),
  );
  const noPositions = new SegmentReader(encodeSegment(rows.slice(0, 100)));
  assert.throws(
    () => searchSegment(noPositions, { root: parseQuery('"alpha beta"'), nowMs }, { order: 'desc', limit: 5 }),
    /no token positions/,
  );
});
