import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeBundle } from '../tlog/tile.js';
import { TreeReader } from './tree-reader.js';

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
