import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeBundle } from '../tlog/tile.js';
import { Lru, TreeReader } from './tree-reader.js';

test('a reader of an older tree size reads the full tile once its partial was deleted (partials only grow into it)', async () => {
  const leaves = Array.from({ length: 256 }, (_, i) => Buffer.from(`leaf ${i}`));
  const hashes = Buffer.alloc(256 * 32);
  for (let i = 0; i < hashes.length; i++) hashes[i] = i % 251;
  // Only the full tiles exist: the integrator deleted the partials of width 172 after syncing.
  const reader = new TreeReader({
    async readTile(level, index, width) {
      if (index !== 0 || width !== 256) return null;
      return level === 'entries' ? encodeBundle(leaves) : hashes;
    },
    readCheckpoint: async () => null,
  });
  assert.deepEqual(await reader.bundle(0, 172), leaves.slice(0, 172));
  assert.deepEqual(await reader.entry(171, 172), leaves[171]);
  assert.deepEqual(await reader.tile(0, 0, 172), hashes.subarray(0, 172 * 32));
  await assert.rejects(
    reader.bundle(1, 300),
    /missing entry bundle 1 of width 44/,
    'a tile absent at every width is still an error',
  );
});

test('Lru keeps what was used recently and holds at most its bound', () => {
  const c = new Lru<number, string>(4); // two generations of 2
  c.set(1, 'a');
  c.set(2, 'b');
  c.set(3, 'c'); // 1 and 2 are now the old generation
  assert.equal(c.get(1), 'a', 'an old entry is still found, and moves to the young generation');
  c.set(4, 'd'); // young {3, 1} is full: it becomes the old one, 2 is dropped
  assert.equal(c.get(2), undefined);
  assert.equal(c.get(1), 'a');
  assert.equal(c.get(3), 'c');
  for (let i = 10; i < 1000; i++) c.set(i, String(i));
  const kept = [...Array(1000).keys()].filter((i) => c.get(i) !== undefined);
  assert.ok(kept.length <= 4, `at most 4 kept, not ${kept.length}`);
  assert.ok(kept.includes(999), 'the newest is kept');
});
