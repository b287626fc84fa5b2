import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { initDataDir, loadDataDir } from '../app/datadir.js';
import { openStele } from '../app/stele.js';
import { writeDurably } from '../core/durable.js';
import { buildLeaf } from '../event/record.js';
import type { Event } from '../event/types.js';
import { DirTileSource } from '../storage/fs/tile-source.js';
import { formatCheckpoint, parseCheckpoint } from '../tlog/checkpoint.js';
import { openNote, signNote } from '../tlog/note.js';
import { verifyLog } from '../tlog/verify.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function fresh() {
  const dir = mkdtempSync(join(tmpdir(), 'stele-log-'));
  dirs.push(dir);
  await initDataDir(dir, 'log.test/x');
  return dir;
}

// Real (plain) leaf records: the query store indexes whatever the log sequences.
const leaf = (i: number) => {
  const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const event: Event = {
    id,
    time: '2026-11-22T10:00:00Z',
    actor: { id: 'log.test', type: 'service', verified: false },
    action: 'test.append',
    source: { kind: 'test' },
    outcome: 'success',
    data: { n: i },
  };
  return { id, leaf: buildLeaf(event, { principal: 'log.test', method: 'local' }, 1_795_000_000_000_000n) };
};
const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => leaf(from + i));

test('appends are acknowledged in order, integrated into a signed checkpoint, and survive a restart', async () => {
  const dir = await fresh();
  let s = await openStele(dir, { checkpointIntervalMs: 5 });
  const results = await Promise.all([s.log.append(batch(0, 300)), s.log.append(batch(300, 5)), s.log.append([leaf(305)])]);
  assert.deepEqual(
    results.flat(),
    Array.from({ length: 306 }, (_, i) => i),
  );
  const cp = await s.log.waitForCheckpoint(306);
  assert.equal(cp.size, 306);
  await s.close();
  s = await openStele(dir);
  assert.equal(s.log.size, 306);
  assert.equal(s.log.checkpoint.note, cp.note);
  assert.deepEqual(await s.log.append([leaf(7)]), [7], 'ids are still known after a restart');
  assert.deepEqual(await s.log.entry(305), leaf(305).leaf);
  await s.close();
  const dd = loadDataDir(dir);
  await verifyLog(new DirTileSource(join(dir, 'log')), dd.verifier);
});

test('verify reads an older checkpoint whose partial tiles the log dropped from the full tiles, and still catches a bad one', async () => {
  const dir = await fresh();
  const s = await openStele(dir, { checkpointIntervalMs: 5 });
  await s.log.append(batch(0, 300));
  const old = (await s.log.waitForCheckpoint(300)).note;
  await s.log.append(batch(300, 300));
  await s.log.waitForCheckpoint(600);
  await s.close();
  const dd = loadDataDir(dir);
  const files = new DirTileSource(join(dir, 'log'));
  // The old tree's right edge (tile 0/001 and bundle 001 at width 44) is only in the full tiles now.
  const dropped = (tamper = false) => ({
    readCheckpoint: async () => old,
    readTile: async (level: number | 'entries', index: number, width: number) => {
      if (width < 256 && (await files.readTile(level, index, 256))) return null;
      const t = await files.readTile(level, index, width);
      if (t && tamper && level === 0 && index === 1) t[5] = (t[5] as number) ^ 1;
      return t;
    },
  });
  const r = await verifyLog(dropped(), dd.verifier);
  assert.equal(r.checkpoint.size, 300);
  await assert.rejects(verifyLog(dropped(true), dd.verifier), /tile\/0\/001\.p\/44/);
});

test('verify can resume from a checkpoint it verified: it checks only what came after, and catches a change there', async () => {
  const dir = await fresh();
  const s = await openStele(dir, { checkpointIntervalMs: 5 });
  await s.log.append(batch(0, 300));
  const old = (await s.log.waitForCheckpoint(300)).note;
  await s.log.append(batch(300, 400));
  await s.log.waitForCheckpoint(700);
  await s.close();
  const dd = loadDataDir(dir);
  const files = new DirTileSource(join(dir, 'log'));
  let reads = 0;
  const counted = {
    readCheckpoint: () => files.readCheckpoint(),
    readTile: (l: number | 'entries', i: number, w: number) => {
      if (l === 'entries') reads++;
      return files.readTile(l, i, w);
    },
  };
  assert.equal((await verifyLog(counted, dd.verifier, { since: old, resume: true })).checkpoint.size, 700);
  assert.equal(reads, 2, 'only the bundles past entry 299 are read (1 and 2)');
  // An entry after the old checkpoint, altered: caught. One before it is the full verification's to find.
  const bundle = join(dir, 'log', 'tile', 'entries', '002.p', String(700 - 512));
  const bytes = readFileSync(bundle);
  bytes[10] = (bytes[10] as number) ^ 1;
  writeFileSync(bundle, bytes);
  await assert.rejects(verifyLog(files, dd.verifier, { since: old, resume: true }), /entry 5\d\d .* does not match/);
});

test('recovery rebuilds tiles that were never made durable, from the write-ahead log', async () => {
  const dir = await fresh();
  let s = await openStele(dir, { checkpointIntervalMs: 5 });
  await s.log.append(batch(0, 600));
  const cp = await s.log.waitForCheckpoint(600);
  await s.close();
  // As after a power cut before the periodic sync: the tiles past the synced size are gone.
  rmSync(join(dir, 'log', 'tile'), { recursive: true });
  await writeDurably(join(dir, 'state', 'synced.json'), '{"size":0}\n');
  s = await openStele(dir);
  assert.equal(s.log.checkpoint.note, cp.note);
  await s.close();
  await verifyLog(new DirTileSource(join(dir, 'log')), loadDataDir(dir).verifier);
});

test('recovery refuses to go on when the entries do not reproduce the signed checkpoint (no fork)', async () => {
  const dir = await fresh();
  const s = await openStele(dir, { checkpointIntervalMs: 5 });
  await s.log.append(batch(0, 10));
  await s.log.waitForCheckpoint(10);
  await s.close();
  // A checkpoint for a different tree at the same size, validly signed: replaying must not accept it.
  const dd = loadDataDir(dir);
  const note = readFileSync(join(dir, 'log', 'checkpoint'), 'utf8');
  const c = parseCheckpoint(openNote(note, [dd.verifier]).text);
  const forged = signNote(formatCheckpoint({ ...c, root: Buffer.alloc(32, 7) }), [dd.signer]);
  await writeDurably(join(dir, 'log', 'checkpoint'), forged);
  await writeDurably(join(dir, 'state', 'synced.json'), '{"size":0}\n');
  await assert.rejects(openStele(dir), /refusing to fork/);
});

test('a second writer on the same data directory is refused', async () => {
  const dir = await fresh();
  const s = await openStele(dir);
  await assert.rejects(openStele(dir), /in use by process/);
  await s.close();
});

test('a storage failure on the integrator thread stops the log: waiters are told, appends get 503', async () => {
  const dir = await fresh();
  const s = await openStele(dir, { checkpointIntervalMs: 5 });
  await s.log.append(batch(0, 3));
  await s.log.waitForCheckpoint(3);
  // Tile folders can no longer be created: the next integration fails.
  rmSync(join(dir, 'log', 'tile'), { recursive: true });
  writeFileSync(join(dir, 'log', 'tile'), 'not a folder');
  await s.log.append(batch(3, 1));
  await assert.rejects(s.log.waitForCheckpoint(4), /ENOTDIR|not a directory/);
  assert.match(String(s.log.failure?.message), /ENOTDIR|not a directory/);
  await assert.rejects(s.log.append(batch(10, 1)), (e: { status?: number }) => e.status === 503);
  await s.close();
});

test('with default options, new data is in a signed checkpoint within a second', async () => {
  const dir = await fresh();
  const s = await openStele(dir);
  try {
    for (let round = 0; round < 3; round++) {
      const [last] = (await s.log.append(batch(round * 100, 100))).slice(-1);
      // waitForCheckpoint rejects after its timeout: here, the one second the design promises.
      const cp = await s.log.waitForCheckpoint((last as number) + 1, 1000);
      assert.ok(cp.size >= (last as number) + 1);
    }
  } finally {
    await s.close();
  }
});

test('a repeated id with another content digest is refused (409) with the first index, in the log, in flight and in one batch; the WAL keeps digests across a restart', async () => {
  const dir = await fresh();
  const d = (n: number) => Buffer.alloc(16, n);
  const withDigest = (i: number, n: number) => ({ ...leaf(i), digest: d(n) });
  let s = await openStele(dir, { checkpointIntervalMs: 5 });
  assert.deepEqual(await s.log.append([withDigest(0, 1), withDigest(1, 1)]), [0, 1]);
  assert.deepEqual(await s.log.append([withDigest(0, 1)]), [0], 'the same content: a retry');
  await assert.rejects(s.log.append([withDigest(2, 2), withDigest(0, 9)]), (e: Error & { status?: number; detail?: unknown }) => {
    assert.equal(e.status, 409);
    assert.match(e.message, /event 1: id \S+ is already in the log at index 0, with different content/);
    assert.deepEqual(e.detail, { id: leaf(0).id, index: 0, batchIndex: 1 });
    return true;
  });
  assert.equal(s.log.size, 2, 'all or nothing: the fresh event of the refused batch was not appended');
  await assert.rejects(
    s.log.append([withDigest(3, 1), withDigest(3, 2)]),
    /event 1: id \S+ is also the id of event 0 of this request/,
  );
  // In flight: two calls at once, the second claims the first's id with other content.
  const [a, b] = await Promise.allSettled([s.log.append([withDigest(4, 1)]), s.log.append([withDigest(4, 2)])]);
  assert.deepEqual(a, { status: 'fulfilled', value: [2] });
  assert.equal(b.status, 'rejected');
  assert.match(String((b as PromiseRejectedResult).reason.message), /at index 2, with different content/);
  await s.close();
  // The id index is rebuilt from the write-ahead log past its durable mark: remove the mark.
  rmSync(join(dir, 'state', 'ids.journal.json'));
  s = await openStele(dir);
  assert.deepEqual(await s.log.append([withDigest(1, 1)]), [1]);
  await assert.rejects(s.log.append([withDigest(1, 7)]), /at index 1, with different content/);
  await s.close();
});
