import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { KeyInfo } from '../keys/key-records.js';
import { MemoryKeyRecords } from '../storage/memory/keys.js';
import type { IndexRow } from './extract.js';
import { gapLink } from './gap-links.js';
import { type CompiledQuery, compileGapQuery, compileQuery } from './query.js';
import { IndexStore, type StoreMatch } from './store.js';

const NOW = Date.UTC(2026, 10, 20, 12);
const T0 = Date.parse('2026-11-01T00:00:00Z') * 1000;
const dir = mkdtempSync(join(tmpdir(), 'stele-gaps-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function row(idx: number, key: string): IndexRow {
  return {
    idx,
    id: `id-${idx}`,
    time: T0 + idx,
    received: T0 + idx * 1_000_000,
    actor: 'erin',
    actor_type: 'human',
    on_behalf_of: null,
    verified: 0,
    action: 'emacs.file.save',
    source: 'emacs',
    host: null,
    resource_type: null,
    resource_id: `secret-${idx}`,
    outcome: 'success',
    subject: key === 'k-erin' ? 'h-erin' : null,
    tier: 'compliance',
    key_id: key,
    principal: 'p',
  };
}

function key(
  id: string,
  tier: string,
  day: string,
  subject: string | null,
  state: 'expired' | 'erased',
  destroyed: string,
): KeyInfo {
  return { id, tier, day, subject, created: `${day}T00:00:00.000Z`, state, destroyed, reason: 'test' };
}

/** Key records holding a few tombstones (what gapLink selects from). */
async function keyStore(all: KeyInfo[]): Promise<MemoryKeyRecords> {
  const records = new MemoryKeyRecords();
  await records.insert(all.map((k) => ({ ...k, wrapped: null, master: null })));
  return records;
}

const at = (m: StoreMatch) => (m.kind === 'entry' ? `e${m.row.idx}` : `g${m.gap.idx}`);

test('only queries of index:, tier: and since:/until: may match gaps, even through NOT', () => {
  for (const q of [
    '',
    'index:3',
    'index:1..9 tier:compliance',
    '-tier:operational',
    'since:7d',
    'NOT (index:4 OR until:2026-01-01)',
  ]) {
    assert.notEqual(compileGapQuery(q, NOW), null, q);
  }
  for (const q of [
    'word',
    'index:3 actor:erin',
    '-actor:erin',
    'NOT "secret"',
    'key:k',
    'principal:p',
    'subject:*',
    'index:1 OR outcome:success',
  ]) {
    assert.equal(compileGapQuery(q, NOW), null, q);
  }
});

test('erasing keys turns rows into tombstones: gone from content queries, found by place, linked to the erasure', async () => {
  const store = new IndexStore(join(dir, 'a.db'));
  store.insert(
    [0, 1, 2, 3, 4].map((i) => ({ row: row(i, i % 2 ? 'k-erin' : 'k-day'), text: `secret-${i} word` })),
    5,
  );
  assert.equal(
    store.deleteByKeys(['k-erin'], () => 'erased'),
    2,
  );
  const q = (s: string) => compileQuery(s, NOW);
  const g = (s: string) => compileGapQuery(s, NOW);
  assert.deepEqual(store.searchWithGaps(q(''), g(''), { limit: 10, order: 'asc' }).map(at), ['e0', 'g1', 'e2', 'g3', 'e4']);
  assert.deepEqual(store.searchWithGaps(q(''), g(''), { limit: 3, order: 'desc' }).map(at), ['e4', 'g3', 'e2']);
  assert.deepEqual(store.searchWithGaps(q(''), g(''), { limit: 3, order: 'desc', cursor: 2 }).map(at), ['g1', 'e0']);
  assert.deepEqual(store.searchWithGaps(q(''), g(''), { limit: 10, order: 'desc', cursor: 4, bound: 2 }).map(at), ['g3', 'e2']);
  assert.deepEqual(store.searchWithGaps(q('word'), g('word'), { limit: 10, order: 'asc' }).map(at), ['e0', 'e2', 'e4']);
  assert.deepEqual(store.searchWithGaps(q('-actor:x'), g('-actor:x'), { limit: 10, order: 'asc' }).map(at), ['e0', 'e2', 'e4']);
  assert.equal(store.count(q('')) + store.countGaps(g('') as CompiledQuery), 5);
  // since: on a gap is its receipt time (entry 3 was received at T0 + 3 s).
  const since = compileGapQuery(`since:${new Date((T0 + 3_000_000) / 1000).toISOString()}`, NOW);
  assert.deepEqual(store.searchWithGaps(q('index:99'), since, { limit: 10, order: 'asc' }).map(at), ['g3']);

  // The erasure entry (index 5) links the gaps of keys of its subject destroyed before it was received.
  const keys = await keyStore([key('k-erin', 'compliance', '2026-11-01', 'h-erin', 'erased', '2026-11-02T00:00:00.000Z')]);
  const received = Date.parse('2026-11-02T00:00:01Z') * 1000;
  store.insert([], 6, [], [await gapLink(keys, { kind: 'erasure', index: 5, received, subjectHash: 'h-erin' })]);
  const gaps = store.searchWithGaps(q(''), g(''), { limit: 10, order: 'asc' }).filter((m) => m.kind === 'gap');
  assert.deepEqual(
    gaps.map((m) => (m.kind === 'gap' ? [m.gap.idx, m.gap.state, m.gap.erasure, m.gap.tier] : [])),
    [
      [1, 'erased', 5, 'compliance'],
      [3, 'erased', 5, 'compliance'],
    ],
  );
  // A later erasure of the same subject does not take them over.
  store.insert([], 7, [], [await gapLink(keys, { kind: 'erasure', index: 6, received: received + 1, subjectHash: 'h-erin' })]);
  assert.ok(
    store.searchWithGaps(q(''), g(''), { limit: 10, order: 'asc' }).every((m) => m.kind === 'entry' || m.gap.erasure === 5),
  );
  store.close();
});

test('an expiry run links only keys destroyed no later than it was received', async () => {
  const store = new IndexStore(join(dir, 'b.db'));
  store.insert([], 3, [
    { idx: 0, time: T0, tier: 'operational', state: 'expired', key_id: 'k1', erasure: null },
    { idx: 1, time: T0, tier: 'operational', state: 'expired', key_id: 'k2', erasure: null },
  ]);
  const keys = await keyStore([
    key('k1', 'operational', '2026-08-01', null, 'expired', '2026-11-02T00:00:00.000Z'),
    // k2: same slot day but held until a later run
    key('k2', 'operational', '2026-08-01', 'h', 'expired', '2026-11-09T00:00:00.000Z'),
  ]);
  const slots = [{ tier: 'operational', day: '2026-08-01' }];
  const received = (t: string) => Date.parse(t) * 1000;
  store.insert([], 4, [], [await gapLink(keys, { kind: 'expiry', index: 2, received: received('2026-11-02T00:00:01Z'), slots })]);
  store.insert([], 5, [], [await gapLink(keys, { kind: 'expiry', index: 4, received: received('2026-11-09T00:00:01Z'), slots })]);
  const g = compileGapQuery('', NOW);
  const links = store
    .searchWithGaps(compileQuery('index:99', NOW), g, { limit: 10, order: 'asc' })
    .map((m) => (m.kind === 'gap' ? m.gap.erasure : -1));
  assert.deepEqual(links, [2, 4]);
  store.close();
});
