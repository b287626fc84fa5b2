import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { IndexRow } from './extract.js';
import { compileQuery } from './query.js';
import { IndexStore, PROBE_ROWS } from './store.js';

// More entries than the probe window, with matches common (found in the window), rare (found
// through the indexes) and absent, so both ways of answering a page are exercised.
const N = PROBE_ROWS * 2 + 123;
const T0 = Date.parse('2026-11-01T00:00:00Z') * 1000;
let dir: string;
let store: IndexStore;
const rows: IndexRow[] = [];

function row(idx: number): IndexRow {
  const rare = idx % 997 === 0;
  return {
    idx,
    id: `00000000-0000-7000-8000-${String(idx).padStart(12, '0')}`,
    time: T0 + idx * 1_000_000,
    received: T0 + idx * 1_000_000,
    actor: rare ? 'zed' : idx % 2 ? 'alice' : 'bob',
    actor_type: 'human',
    on_behalf_of: null,
    verified: 0,
    action: idx % 3 ? 'emacs.file.save' : 'k8s.pods.delete',
    source: idx % 3 ? 'emacs' : 'kubernetes',
    host: null,
    resource_type: null,
    resource_id: null,
    outcome: idx % 101 === 0 ? 'failure' : 'success',
    subject: null,
    tier: 'compliance',
    key_id: null,
    principal: 'p',
  };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'stele-store-'));
  store = new IndexStore(join(dir, 'stele.db'));
  for (let i = 0; i < N; i++) rows.push(row(i));
  // Entries the store never got (expired before indexing) leave gaps in the indices.
  const kept = rows.filter((r) => r.idx % 5000 !== 7);
  rows.length = 0;
  rows.push(...kept);
  for (let i = 0; i < kept.length; i += 5000)
    store.insert(
      kept.slice(i, i + 5000).map((r) => ({ row: r, text: r.action })),
      kept[Math.min(i + 5000, kept.length) - 1]!.idx + 1,
    );
});

after(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function pages(q: string, order: 'desc' | 'asc', limit: number): number[] {
  const c = compileQuery(q, Date.now());
  const out: number[] = [];
  let cursor: number | undefined;
  for (;;) {
    const page = store.search(c, { limit, order, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...page.map((r) => r.idx));
    if (page.length < limit) return out;
    cursor = page.at(-1)?.idx;
  }
}

test('every page of a field query is exactly the matches in log order, whether the probe window or the indexes answer it', () => {
  const cases: [string, (r: IndexRow) => boolean][] = [
    ['actor:alice', (r) => r.actor === 'alice'],
    ['actor:zed', (r) => r.actor === 'zed'],
    ['action:k8s.* outcome:failure', (r) => r.action.startsWith('k8s.') && r.outcome === 'failure'],
    ['outcome:failure actor:zed', (r) => r.outcome === 'failure' && r.actor === 'zed'],
    ['actor:nobody', () => false],
    ['', () => true],
  ];
  for (const [q, match] of cases) {
    const want = rows.filter(match).map((r) => r.idx);
    for (const limit of want.length > 2000 ? [1000] : [7, 50, 1000]) {
      assert.deepEqual(pages(q, 'asc', limit), want, `${q} asc ${limit}`);
      assert.deepEqual(pages(q, 'desc', limit), [...want].reverse(), `${q} desc ${limit}`);
    }
  }
});
