import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { HASH_SIZE, leafHash, merkleRoot, perfectRoot, sha256 } from './hash.js';
import {
  decodeBundle,
  encodeBundle,
  entriesPath,
  nodeLocation,
  parseTilePath,
  rightEdge,
  storedCount,
  TILE_HEIGHT,
  TILE_WIDTH,
  TileBuilder,
  tileLevels,
  tilePath,
  tileRoot,
  tilesBetween,
  tileWidth,
} from './tile.js';

/** Leaf hashes used throughout; distinct, deterministic, computed once. */
const LEAF_POOL: Buffer[] = [];
function leaves(n: number): Buffer[] {
  while (LEAF_POOL.length < n) LEAF_POOL.push(leafHash(Buffer.from(`entry ${LEAF_POOL.length}`)));
  return LEAF_POOL.slice(0, n);
}

/** All hash tiles of a tree, computed from scratch from the leaf hashes: key "L/N" → data. */
function scratchTiles(leafHashes: readonly Buffer[]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let row: Buffer[] = [...leafHashes];
  for (let L = 0; row.length > 0; L++) {
    const next: Buffer[] = [];
    for (let i = 0; i < row.length; i += TILE_WIDTH) {
      const data = Buffer.concat(row.slice(i, i + TILE_WIDTH));
      out.set(`${L}/${i / TILE_WIDTH}`, data);
      if (data.length === TILE_WIDTH * HASH_SIZE) next.push(tileRoot(data));
    }
    row = next;
  }
  return out;
}

describe('tile paths', () => {
  it('encodes the spec example 1234067 as x001/x234/067', () => {
    assert.equal(tilePath(0, 1234067), 'tile/0/x001/x234/067');
    assert.equal(entriesPath(1234067), 'tile/entries/x001/x234/067');
  });

  it('adds .p/<W> only for partial tiles', () => {
    assert.equal(tilePath(1, 5, 17), 'tile/1/005.p/17');
    assert.equal(tilePath(2, 0, 1), 'tile/2/000.p/1');
    assert.equal(tilePath(0, 0, 256), 'tile/0/000');
    assert.equal(entriesPath(1000, 255), 'tile/entries/x001/000.p/255');
    assert.equal(tilePath(63, 999), 'tile/63/999');
    assert.equal(tilePath(0, 1000), 'tile/0/x001/000');
  });

  it('refuses out-of-range levels, indexes and widths', () => {
    assert.throws(() => tilePath(64, 0), RangeError);
    assert.throws(() => tilePath(-1, 0), RangeError);
    assert.throws(() => tilePath(0, -1), RangeError);
    assert.throws(() => tilePath(0, 1.5), RangeError);
    assert.throws(() => tilePath(0, 0, 0), RangeError);
    assert.throws(() => tilePath(0, 0, 257), RangeError);
    assert.throws(() => entriesPath(0, 0), RangeError);
    assert.throws(() => entriesPath(2 ** 53), RangeError);
  });

  it('parseTilePath is the exact inverse of tilePath and entriesPath', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: 63 }), fc.constant('entries' as const)),
        fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.maxSafeNat()),
        fc.integer({ min: 1, max: 256 }),
        (level, index, width) => {
          const path = level === 'entries' ? entriesPath(index, width) : tilePath(level, index, width);
          assert.deepEqual(parseTilePath(path), { level, index, width });
        },
      ),
    );
  });

  it('parseTilePath rejects every non-canonical or out-of-range path', () => {
    const bad = [
      '',
      'tile/0/000/',
      '/tile/0/000',
      'prefix/tile/0/000',
      'tile/0/0',
      'tile/0/12',
      'tile/0/0000',
      'tile/0/x000/005', // leading zero group
      'tile/0/x000/x001/005',
      'tile/0/001/234', // missing x
      'tile/0/x001/x234', // x on the last group
      'tile/0/X001/234',
      'tile/00/000', // leading zero level
      'tile/01/000',
      'tile/64/000',
      'tile/-1/000',
      'tile/x/000',
      'tile/0/000.p/0',
      'tile/0/000.p/256',
      'tile/0/000.p/017',
      'tile/0/000.p/',
      'tile/0/000.p',
      'tile/0/000.p/1/',
      'tile/entries/000.p/256',
      'tile/entry/000',
      'tile/0/x009/x007/x199/x254/x740/993', // 2^53 + 1: beyond safe integers
      'tile/0/００1',
      'tile/0/000\n',
    ];
    for (const p of bad) assert.equal(parseTilePath(p), null, JSON.stringify(p));
    // The largest safe index still parses.
    assert.deepEqual(parseTilePath('tile/0/x009/x007/x199/x254/x740/991'), {
      level: 0,
      index: Number.MAX_SAFE_INTEGER,
      width: 256,
    });
  });
});

describe('tile geometry', () => {
  it('matches the spec example: a tree of 70,000 leaves', () => {
    const size = 70_000;
    assert.equal(storedCount(0, size), 70_000);
    assert.equal(Math.floor(storedCount(0, size) / 256), 273); // full level-0 tiles
    assert.equal(tileWidth(0, 272, size), 256);
    assert.equal(tileWidth(0, 273, size), 112);
    assert.equal(tileWidth(0, 274, size), 0);
    assert.equal(tileWidth(1, 0, size), 256);
    assert.equal(tileWidth(1, 1, size), 17);
    assert.equal(tileWidth(1, 2, size), 0);
    assert.equal(tileWidth(2, 0, size), 1);
    assert.equal(tileWidth(3, 0, size), 0);
    assert.equal(tileLevels(size), 3);
  });

  it('a tree of 256 leaves is one full level-0 tile and a level-1 tile of width 1', () => {
    assert.equal(tileWidth(0, 0, 256), 256);
    assert.equal(tileWidth(0, 1, 256), 0);
    assert.equal(tileWidth(1, 0, 256), 1);
    assert.equal(tileLevels(256), 2);
  });

  it('counts levels and stored hashes at the boundaries', () => {
    assert.equal(tileLevels(0), 0);
    assert.equal(tileLevels(1), 1);
    assert.equal(tileLevels(255), 1);
    assert.equal(tileLevels(65_535), 2);
    assert.equal(tileLevels(65_536), 3);
    assert.equal(tileLevels(Number.MAX_SAFE_INTEGER), 7);
    assert.equal(storedCount(1, 65_535), 255);
    assert.equal(storedCount(2, 65_535), 0);
    assert.equal(storedCount(6, Number.MAX_SAFE_INTEGER), 31);
    assert.equal(TILE_HEIGHT, 8);
    assert.equal(TILE_WIDTH, 256);
  });

  it('nodeLocation points at the tile hashes whose perfect root is the node', () => {
    assert.deepEqual(nodeLocation(0, 1234), { tileLevel: 0, tileIndex: 4, offset: 210, count: 1 });
    assert.deepEqual(nodeLocation(3, 40), { tileLevel: 0, tileIndex: 1, offset: 64, count: 8 });
    assert.deepEqual(nodeLocation(8, 3), { tileLevel: 1, tileIndex: 0, offset: 3, count: 1 });
    assert.deepEqual(nodeLocation(15, 1), { tileLevel: 1, tileIndex: 0, offset: 128, count: 128 });
    assert.throws(() => nodeLocation(-1, 0), RangeError);

    const size = 3000;
    const ls = leaves(size);
    const tiles = scratchTiles(ls);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 11 }), fc.nat(), (level, r) => {
        const perLevel = Math.floor(size / 2 ** level);
        fc.pre(perLevel > 0);
        const index = r % perLevel;
        const { tileLevel, tileIndex, offset, count } = nodeLocation(level, index);
        const tile = tiles.get(`${tileLevel}/${tileIndex}`);
        assert.ok(tile, `tile ${tileLevel}/${tileIndex} exists`);
        const hashes = [];
        for (let i = offset; i < offset + count; i++) hashes.push(tile.subarray(i * 32, i * 32 + 32));
        const want = merkleRoot(ls.slice(index * 2 ** level, (index + 1) * 2 ** level));
        assert.deepEqual(perfectRoot(hashes), want);
      }),
    );
  });

  it('tileRoot is the Merkle root of the tile hashes and needs a full tile', () => {
    const hs = leaves(256);
    assert.deepEqual(tileRoot(Buffer.concat(hs)), merkleRoot(hs));
    assert.throws(() => tileRoot(Buffer.alloc(8191)), /8192 bytes/);
  });
});

describe('entry bundles', () => {
  it('round-trip any entries', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 40 }), (entries) => {
        const enc = encodeBundle(entries);
        assert.equal(
          enc.length,
          entries.reduce((n, e) => n + 2 + e.length, 0),
        );
        const dec = decodeBundle(enc, entries.length);
        assert.deepEqual(
          dec.map((b) => Buffer.from(b)),
          entries.map((e) => Buffer.from(e)),
        );
        assert.equal(decodeBundle(enc).length, entries.length);
      }),
    );
  });

  it('encodes lengths as big-endian uint16 and allows up to 65,535 bytes', () => {
    assert.deepEqual(encodeBundle([Buffer.from('ab'), Buffer.alloc(0)]), Buffer.from([0, 2, 0x61, 0x62, 0, 0]));
    const big = Buffer.alloc(65_535, 7);
    const enc = encodeBundle([big]);
    assert.deepEqual(enc.subarray(0, 2), Buffer.from([0xff, 0xff]));
    assert.deepEqual(decodeBundle(enc, 1)[0], big);
    assert.throws(() => encodeBundle([Buffer.alloc(1), Buffer.alloc(65_536)]), /entry 1 is 65536 bytes; the limit is 65535/);
  });

  it('decoding a bundle from a subarray reads only that view and returns copies', () => {
    const enc = encodeBundle([Buffer.from('xyz')]);
    const outer = Buffer.concat([Buffer.from([9, 9]), enc, Buffer.from([9])]);
    const [e] = decodeBundle(outer.subarray(2, 2 + enc.length), 1);
    assert.deepEqual(e, Buffer.from('xyz'));
    outer[4] = 0;
    assert.deepEqual(e, Buffer.from('xyz'));
  });

  it('malformed bundles throw precise errors', () => {
    assert.throws(() => decodeBundle(Buffer.from([0, 1, 0x41, 0])), /length prefix of entry 1 at byte 3 is cut off/);
    assert.throws(() => decodeBundle(Buffer.from([0, 5, 1, 2])), /entry 0 at byte 0 declares 5 bytes but only 2 remain/);
    assert.throws(() => decodeBundle(Buffer.from([0, 0, 0, 0]), 1), /2 trailing bytes at byte 2, after the expected 1 entries/);
    assert.throws(() => decodeBundle(Buffer.from([0, 0]), 2), /bundle has 1 entries, expected 2/);
    assert.throws(() => decodeBundle(Buffer.alloc(0), 1), /bundle has 0 entries, expected 1/);
    assert.deepEqual(decodeBundle(Buffer.alloc(0), 0), []);
  });

  it('any truncation or extension of a bundle is detected when the count is known', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 100 }), { minLength: 1, maxLength: 20 }),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 10 }),
        (entries, cut, extra) => {
          const enc = encodeBundle(entries);
          const short = enc.subarray(0, cut % enc.length);
          assert.throws(() => decodeBundle(short, entries.length));
          assert.throws(() => decodeBundle(Buffer.concat([enc, extra]), entries.length));
        },
      ),
    );
  });
});

describe('TileBuilder', () => {
  it('an empty builder has the empty root, no tiles and no partials', () => {
    const b = TileBuilder.empty();
    assert.equal(b.size, 0);
    assert.deepEqual(b.root(), merkleRoot([]));
    assert.deepEqual(b.drain(), []);
    assert.deepEqual(b.partials(), []);
  });

  it('drains exactly the tiles of the spec example (70,000 leaves) and computes its root', () => {
    const ls = leaves(70_000);
    const b = TileBuilder.empty();
    for (const h of ls) b.append(h);
    const drained = b.drain();
    const paths = drained.map((t) => tilePath(t.level, t.index, t.width));
    assert.equal(paths.length, 273 + 1 + 1 + 1 + 1);
    assert.equal(drained.filter((t) => t.level === 0 && t.width === 256).length, 273);
    assert.deepEqual(paths.slice(-4), ['tile/0/273.p/112', 'tile/1/000', 'tile/1/001.p/17', 'tile/2/000.p/1']);
    const want = scratchTiles(ls);
    for (const t of drained) assert.deepEqual(t.data, want.get(`${t.level}/${t.index}`));
    assert.deepEqual(b.root(), merkleRoot(ls));
    assert.deepEqual(b.drain(), [], 'nothing changed since the last drain');
    assert.deepEqual(
      b.partials().map((p) => p.length / 32),
      [112, 17, 1],
    );
  });

  it('reports a tile that filled once, as full, and feeds its root to the level above', () => {
    const b = TileBuilder.empty();
    const ls = leaves(257);
    for (const h of ls.slice(0, 255)) b.append(h);
    assert.deepEqual(
      b.drain().map((t) => [t.level, t.index, t.width]),
      [[0, 0, 255]],
    );
    b.append(ls[255] as Buffer);
    const d = b.drain();
    assert.deepEqual(
      d.map((t) => [t.level, t.index, t.width]),
      [
        [0, 0, 256],
        [1, 0, 1],
      ],
    );
    assert.deepEqual(d[1]?.data, tileRoot(Buffer.concat(ls.slice(0, 256))));
    b.append(ls[256] as Buffer);
    assert.deepEqual(
      b.drain().map((t) => [t.level, t.index, t.width]),
      [[0, 1, 1]],
    );
  });

  it('drained data is never mutated by later appends', () => {
    const b = TileBuilder.empty();
    const ls = leaves(300);
    b.append(ls[0] as Buffer);
    const [t] = b.drain();
    const copy = Buffer.from(t?.data ?? []);
    for (const h of ls.slice(1)) b.append(h);
    assert.deepEqual(t?.data, copy);
  });

  it('after random appends and drains: root is right, drained tiles rebuild the tree, a builder resumed from partials continues identically', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            n: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 700 })),
            drain: fc.boolean(),
            resume: fc.boolean(),
          }),
          { maxLength: 12 },
        ),
        (ops) => {
          let a = TileBuilder.empty(); // never resumed
          let b = TileBuilder.empty(); // resumed from partials() at random points
          const store = new Map<string, Buffer>();
          const collect = (tiles: ReturnType<TileBuilder['drain']>): void => {
            for (const t of tiles) {
              assert.equal(t.data.length, t.width * 32);
              assert.ok(t.width >= 1 && t.width <= 256);
              store.set(`${t.level}/${t.index}`, t.data);
            }
          };
          let size = 0;
          for (const op of ops) {
            for (const h of leaves(size + op.n).slice(size)) {
              a.append(h);
              b.append(h);
            }
            size += op.n;
            assert.equal(a.size, size);
            assert.equal(b.size, size);
            if (op.drain || op.resume) {
              const da = a.drain();
              assert.deepEqual(b.drain(), da);
              const want = scratchTiles(leaves(size));
              for (const t of da) assert.deepEqual(t.data, want.get(`${t.level}/${t.index}`));
              collect(da);
            }
            if (op.resume) {
              b = new TileBuilder(b.size, b.partials());
              assert.deepEqual(b.partials(), a.partials());
            }
            assert.deepEqual(b.root(), a.root());
          }
          collect(a.drain());
          b.drain();
          // Reassembled drained tiles equal the tiles of the final tree, with nothing extra.
          const want = scratchTiles(leaves(size));
          assert.deepEqual([...store.keys()].sort(), [...want.keys()].sort());
          for (const [k, v] of want) assert.deepEqual(store.get(k), v, k);
          assert.deepEqual(a.root(), merkleRoot(leaves(size)));
          // A builder resumed from the final partials keeps going identically.
          a = new TileBuilder(a.size, a.partials());
          const more = leaves(size + 300).slice(size);
          for (const h of more) {
            a.append(h);
            b.append(h);
          }
          assert.deepEqual(a.drain(), b.drain());
          assert.deepEqual(a.root(), merkleRoot(leaves(size + 300)));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('a builder resumed across a level-2 boundary continues correctly', () => {
    const ls = leaves(70_000);
    const a = TileBuilder.empty();
    for (const h of ls.slice(0, 65_530)) a.append(h);
    a.drain();
    const b = new TileBuilder(a.size, a.partials());
    for (const h of ls.slice(65_530, 65_540)) b.append(h);
    const d = b.drain();
    assert.deepEqual(
      d.map((t) => tilePath(t.level, t.index, t.width)),
      ['tile/0/255', 'tile/0/256.p/4', 'tile/1/000', 'tile/2/000.p/1'],
    );
    assert.deepEqual(b.root(), merkleRoot(ls.slice(0, 65_540)));
  });

  it('the constructor rejects partials inconsistent with the size', () => {
    const h = sha256(Buffer.from('x'));
    assert.throws(() => new TileBuilder(1, []), /level 0 for size 1 must be 32 bytes \(1 hashes\), got 0/);
    assert.throws(() => new TileBuilder(0, [h]), /level 0 for size 0 must be 0 bytes/);
    assert.throws(() => new TileBuilder(2, [h]), /must be 64 bytes/);
    assert.throws(() => new TileBuilder(256, [new Uint8Array(0)]), /level 1 for size 256 must be 32 bytes/);
    assert.throws(() => new TileBuilder(256, [new Uint8Array(0), h, h]), /level 2/);
    assert.throws(() => new TileBuilder(-1, []), RangeError);
    assert.throws(() => new TileBuilder(1.5, []), RangeError);
    // Width-0 levels may be given as empty arrays or omitted.
    new TileBuilder(256, [new Uint8Array(0), h]);
    const sparse: Uint8Array[] = [];
    sparse[1] = h;
    new TileBuilder(256, sparse);
  });

  it('append refuses a leaf hash that is not 32 bytes', () => {
    assert.throws(() => TileBuilder.empty().append(new Uint8Array(31)), RangeError);
  });
});

describe('rightEdge', () => {
  it("is the rightmost tile of every level: the spec's 70,000 and 256 examples", () => {
    assert.deepEqual(rightEdge(70000), [
      { level: 0, index: 273, width: 112 },
      { level: 1, index: 1, width: 17 },
      { level: 2, index: 0, width: 1 },
    ]);
    assert.deepEqual(rightEdge(256), [
      { level: 0, index: 1, width: 0 },
      { level: 1, index: 0, width: 1 },
    ]);
    assert.deepEqual(rightEdge(0), []);
  });
});

describe('tilesBetween', () => {
  it("is every tile and bundle whose width differs between the two trees, at the larger tree's width", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300_000 }), fc.integer({ min: 0, max: 70_000 }), (from, more) => {
        const to = from + more;
        const want: string[] = [];
        for (let level = 0; level < tileLevels(to); level++) {
          for (let index = 0; tileWidth(level, index, to) > 0; index++) {
            const w = tileWidth(level, index, to);
            if (tileWidth(level, index, from) === w) continue;
            want.push(`${level}/${index}/${w}`);
            if (level === 0) want.push(`entries/${index}/${w}`);
          }
        }
        const got = tilesBetween(from, to).map((t) => `${t.level}/${t.index}/${t.width}`);
        assert.deepEqual(got.sort(), want.sort());
      }),
      { numRuns: 200 },
    );
  });

  it('names the tiles of the spec example when a tree grows from 65,536 to 70,000', () => {
    assert.deepEqual(
      tilesBetween(65_536, 70_000).filter((t) => t.level !== 0 && t.level !== 'entries'),
      [{ level: 1, index: 1, width: 17 }],
    );
    assert.equal(tilesBetween(70_000, 70_000).length, 0);
    assert.equal(tilesBetween(5, 3).length, 0);
  });
});
