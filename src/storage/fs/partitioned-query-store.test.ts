import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { filesContaining } from '../../../test/helpers/stele.js';
import type { IndexRow } from '../../event/searchable.js';
import { FsBackend } from './backend.js';
import { PartitionedQueryStore } from './partitioned-query-store.js';
import { SCHEMA_VERSION } from './query-schema.js';

const dir = mkdtempSync(join(tmpdir(), 'stele-partitions-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A word only entry `idx` has. FTS5 stores a term as its difference from the term before it, so
 * each starts with its own letter and the check on disk looks for all but that letter.
 */
const word = (idx: number) => `${String.fromCharCode(97 + idx)}qzuniq${idx}z`;
const onDisk = (idx: number) => word(idx).slice(1);
const row = (idx: number): { row: IndexRow; text: string } => ({
  row: {
    idx,
    id: `e-${idx}`,
    time: 1_700_000_000_000_000 + idx,
    received: 1_700_000_000_000_000 + idx,
    actor: `zqactor${idx}x`,
    actor_type: 'human',
    on_behalf_of: null,
    verified: 1,
    action: 'emacs.file.save',
    source: 'emacs',
    host: null,
    resource_type: null,
    resource_id: null,
    outcome: 'success',
    subject: null,
    tier: 'standard',
    key_id: idx % 2 ? 'k-odd' : 'k-even',
    principal: 'p',
  },
  text: `save ${word(idx)}`,
});

test('an erasure scrubs every partition: the erased entries’ words and fields are in no file afterwards', async () => {
  const d = join(dir, 'scrub');
  const store = new PartitionedQueryStore(d, 4);
  // Batches of 5 cross the boundaries of partitions of 4.
  for (let i = 0; i < 20; i += 5) await store.insert({ rows: [5, 4, 3, 2, 1].map((k) => row(i + 5 - k)), upto: i + 5 });
  assert.equal(readdirSync(d).filter((f) => f.endsWith('.db')).length, 5);
  await store.scrubbed(); // page images out of the WALs, so the check below reads the files
  assert.ok(filesContaining(d, onDisk(7)).length > 0, 'the word is on disk before');
  assert.equal(await store.deleteByKeys(['k-odd'], () => 'erased'), 10);
  while (await store.scrubStep());
  await store.scrubbed();
  for (let i = 0; i < 20; i++) {
    const left = [...filesContaining(d, onDisk(i)), ...filesContaining(d, `zqactor${i}x`)];
    if (i % 2) assert.deepEqual(left, [], `entry ${i}`);
    else assert.ok(left.length > 0, `entry ${i} (not erased) is still there`);
  }
  assert.deepEqual(await store.count({ root: null, nowMs: 0 }), { entries: 10, gaps: 10 });
  await store.close();
});

test('reopened, the store resumes at the newest partition’s upto, across a batch that crossed a boundary', async () => {
  const d = join(dir, 'resume');
  const a = new PartitionedQueryStore(d, 4);
  await a.insert({ rows: [0, 1, 2, 3, 4, 5].map(row), upto: 6 });
  await a.insert({ rows: [], upto: 9 }); // entries 6..8 unreadable: upto moves into the third partition
  await a.close();
  const b = new PartitionedQueryStore(d, 4);
  assert.equal(await b.upto(), 9);
  const page = await b.search({ root: null, nowMs: 0 }, { limit: 4, order: 'desc' });
  assert.deepEqual(
    page.map((m) => (m.kind === 'entry' ? m.row.idx : -1)),
    [5, 4, 3, 2],
  );
  await b.close();
});

test('the fs driver deletes the single-file store of earlier versions, which erasures would no longer reach', async () => {
  const d = join(dir, 'legacy');
  mkdirSync(join(d, 'index'), { recursive: true });
  for (const f of ['stele.db', 'stele.db-wal']) writeFileSync(join(d, 'index', f), 'old rows in the clear');
  const store = new FsBackend(d).queryStore();
  assert.ok(!existsSync(join(d, 'index', 'stele.db')) && !existsSync(join(d, 'index', 'stele.db-wal')));
  assert.equal(await store.upto(), 0);
  await store.close();
});

test('partitions cut with another size or schema are dropped (rebuilt from the log); files without a record were cut with 2^20 by schema 4', async () => {
  const d = join(dir, 'resize');
  const a = new PartitionedQueryStore(d, 4);
  await a.insert({ rows: [0, 1, 2, 3, 4, 5].map(row), upto: 6 });
  await a.close();
  const same = new PartitionedQueryStore(d, 4);
  assert.equal(await same.upto(), 6, 'the same size keeps them');
  await same.close();
  const other = new PartitionedQueryStore(d, 8);
  assert.equal(await other.upto(), 0);
  assert.equal(readFileSync(join(d, 'PARTITION'), 'utf8'), `8 ${SCHEMA_VERSION}\n`);
  await other.insert({ rows: [0, 1].map(row), upto: 2 });
  await other.close();
  // Another schema version: dropped whatever the size.
  writeFileSync(join(d, 'PARTITION'), `8 ${SCHEMA_VERSION - 1}\n`);
  const older = new PartitionedQueryStore(d, 8);
  assert.equal(await older.upto(), 0);
  await older.insert({ rows: [0, 1].map(row), upto: 2 });
  await older.close();
  // Without its record: a store from before the record, cut at 2^20 by schema 4, so dropped.
  rmSync(join(d, 'PARTITION'));
  const legacy = new PartitionedQueryStore(d);
  assert.equal(await legacy.upto(), 0);
  await legacy.close();
});
