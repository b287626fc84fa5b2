import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addTally, bucketsFor, emptyTally, summarize, tallyRows } from './aggregate.js';

const S = 1_000_000;
const at = (iso: string) => Date.parse(iso) * 1000;

describe('histogram buckets', () => {
  it('take the narrowest named width that covers the span in at most the asked number, aligned to it', () => {
    assert.deepEqual(bucketsFor({ min: at('2026-12-01T10:00:07Z'), max: at('2026-12-01T10:00:07Z') }, 60), {
      origin: at('2026-12-01T10:00:07Z'),
      width: S,
      count: 1,
    });
    // 90 minutes: 60 one-minute buckets are too few; two-minute ones from 10:02 fit (46 of them).
    const b = bucketsFor({ min: at('2026-12-01T10:03:00Z'), max: at('2026-12-01T11:33:00Z') }, 60);
    assert.deepEqual(b, { origin: at('2026-12-01T10:02:00Z'), width: 120 * S, count: 46 });
    const day = bucketsFor({ min: at('2026-11-01T00:00:00Z'), max: at('2026-12-01T00:00:00Z') }, 60);
    assert.equal(day.width, 86_400 * S);
    assert.equal(day.origin, at('2026-11-01T00:00:00Z'));
    assert.equal(day.count, 31);
  });

  it('a span of centuries still fits: widths grow by whole years', () => {
    const b = bucketsFor({ min: at('1970-01-01T00:00:00Z'), max: at('2999-01-01T00:00:00Z') }, 60);
    assert.ok(b.count <= 60, `${b.count}`);
    assert.equal(b.width % (365 * 86_400 * S), 0);
    assert.ok(b.origin <= at('1970-01-01T00:00:00Z'));
  });
});

describe('summaries', () => {
  const rows = [
    { time: at('2026-12-01T10:00:00Z'), actor: 'bob', action: 'git.push', source: 'git', outcome: 'success', tier: 'standard' },
    { time: at('2026-12-01T10:00:30Z'), actor: 'alice', action: 'git.push', source: 'git', outcome: 'failure', tier: 'standard' },
    {
      time: at('2026-12-01T10:02:00Z'),
      actor: 'carol',
      action: 'k8s.apply',
      source: 'kubernetes',
      outcome: 'success',
      tier: 'audit',
    },
  ];
  const b = { origin: at('2026-12-01T10:00:00Z'), width: 60 * S, count: 3 };

  it('count every bucket, even empty ones, and each facet by count, ties by value', () => {
    const s = summarize(tallyRows(rows, b), b, 2);
    assert.equal(s.entries, 3);
    assert.deepEqual(s.histogram, { origin: b.origin, width: b.width, counts: [2, 0, 1] });
    assert.deepEqual(s.facets.actor, {
      values: [
        { value: 'alice', count: 1 },
        { value: 'bob', count: 1 },
      ],
      other: 1,
      distinct: 3,
    });
    assert.deepEqual(s.facets.action.values[0], { value: 'git.push', count: 2 });
    assert.deepEqual(s.facets.tier, {
      values: [
        { value: 'standard', count: 2 },
        { value: 'audit', count: 1 },
      ],
      other: 0,
      distinct: 2,
    });
  });

  it('parts add up to the whole, and nothing matched is no histogram', () => {
    const parts = [tallyRows(rows.slice(0, 1), b), tallyRows(rows.slice(1), b)];
    const sum = parts.reduce(addTally, emptyTally());
    assert.deepEqual(summarize(sum, b, 10), summarize(tallyRows(rows, b), b, 10));
    const none = summarize(emptyTally(), null, 10);
    assert.equal(none.histogram, null);
    assert.deepEqual(none.facets.outcome, { values: [], other: 0, distinct: 0 });
  });

  it('an entry outside the buckets (indexed after the span was taken) is counted, but not in the histogram', () => {
    const late = [...rows, { ...(rows[0] as (typeof rows)[0]), time: at('2026-12-01T11:00:00Z') }];
    const s = summarize(tallyRows(late, b), b, 10);
    assert.equal(s.entries, 4);
    assert.deepEqual(s.histogram?.counts, [2, 0, 1]);
  });
});
