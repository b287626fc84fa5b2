import assert from 'node:assert/strict';
import { test } from 'node:test';
import { leafHash } from '../tlog/hash.js';
import { consistencyProof, inclusionProof } from '../tlog/proof.js';
import { encodeBundle, TileBuilder } from '../tlog/tile.js';
import { leafHashAt, proveConsistency, proveInclusion } from './proofs.js';
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

test("proofs from a tree's tiles equal the reference proofs from its leaves (inner tile levels, partial tiles, two tile levels)", async () => {
  const size = 65_536 + 256 * 3 + 77; // a full level-1 tile, a partial one, and a partial bundle
  const leafHashes = Array.from({ length: size }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
  const builder = TileBuilder.empty();
  const tiles = new Map<string, Buffer>();
  for (const h of leafHashes) builder.append(h);
  for (const t of builder.drain()) tiles.set(`${t.level}/${t.index}/${t.width}`, t.data);
  const reader = new TreeReader({
    readTile: async (level, index, width) => tiles.get(`${level}/${index}/${width}`) ?? null,
    readCheckpoint: async () => null,
  });
  const cases: [number, number][] = [];
  for (const n of [1, 2, 255, 256, 257, 1000, 65_535, 65_536, 65_537, 66_000, size])
    for (const i of [0, 1, 127, 128, 255, 256, 4097, 65_535, 65_536, n - 1]) if (i < n) cases.push([i, n]);
  for (const [i, n] of cases) {
    assert.deepEqual(await proveInclusion(reader, i, n, size), inclusionProof(i, n, leafHashes), `inclusion ${i} in ${n}`);
    assert.deepEqual(await leafHashAt(reader, i, size), leafHashes[i], `leaf hash ${i}`);
  }
  for (const [a, b] of [
    [1, size],
    [256, 65_536],
    [300, 66_000],
    [65_536, size],
    [65_537, size],
  ] as const)
    assert.deepEqual(await proveConsistency(reader, a, b, size), consistencyProof(a, b, leafHashes), `consistency ${a} → ${b}`);
});
