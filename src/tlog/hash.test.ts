import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { emptyRoot, HASH_SIZE, leafHash, merkleRoot, nodeHash, perfectRoot, sha256 } from './hash.js';
import { LEAVES_HEX, ROOTS_HEX } from './merkle8.testdata.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ref = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** MTH exactly as RFC 6962 §2.1 defines it, recursively; the independent reference. */
function rfcRoot(d: readonly Uint8Array[]): Buffer {
  if (d.length === 0) return ref();
  if (d.length === 1) return Buffer.from(d[0] as Uint8Array);
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return ref(Buffer.of(1), rfcRoot(d.slice(0, k)), rfcRoot(d.slice(k)));
}

const LEAVES = LEAVES_HEX;
const ROOTS = ROOTS_HEX;

describe('hash', () => {
  it('empty tree root is SHA-256 of the empty string', () => {
    assert.equal(hex(emptyRoot()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(hex(merkleRoot([])), hex(emptyRoot()));
    assert.equal(HASH_SIZE, 32);
  });

  it('emptyRoot returns a fresh copy each time', () => {
    const a = emptyRoot();
    a[0] = 0;
    assert.equal(emptyRoot()[0], 0xe3);
  });

  it('leaf and node hashes use the RFC 6962 0x00 / 0x01 domain prefixes', () => {
    const e = Buffer.from('hello');
    assert.deepEqual(leafHash(e), ref(Buffer.of(0), e));
    const l = sha256(Buffer.from('l'));
    const r = sha256(Buffer.from('r'));
    assert.deepEqual(nodeHash(l, r), ref(Buffer.of(1), l, r));
    assert.deepEqual(sha256(e), ref(e));
  });

  it('leaf hash is right for entries of every size class, including beyond the scratch buffer', () => {
    for (const n of [0, 1, 31, 1023, 1024, 1025, 5000, 65_535, 65_536, 200_000]) {
      const e = Buffer.alloc(n, n % 251);
      assert.deepEqual(leafHash(e), ref(Buffer.of(0), e), `size ${n}`);
    }
  });

  it('results do not alias the reused scratch buffers', () => {
    const a = leafHash(Buffer.from('a'));
    const b = leafHash(Buffer.from('b'));
    assert.notDeepEqual(a, b);
    const n1 = nodeHash(a, b);
    const n2 = nodeHash(b, a);
    assert.notDeepEqual(n1, n2);
    assert.deepEqual(n1, ref(Buffer.of(1), a, b));
  });

  it('node hash rejects children that are not 32 bytes', () => {
    assert.throws(() => nodeHash(new Uint8Array(31), new Uint8Array(32)), RangeError);
    assert.throws(() => nodeHash(new Uint8Array(32), new Uint8Array(33)), RangeError);
  });

  it('roots of the standard 8-leaf tree match the published vectors', () => {
    const hashes = LEAVES.map((h) => leafHash(Buffer.from(h, 'hex')));
    for (let n = 1; n <= 8; n++) assert.equal(hex(merkleRoot(hashes.slice(0, n))), ROOTS[n - 1], `size ${n}`);
    assert.equal(hex(perfectRoot(hashes)), ROOTS[7]);
    assert.equal(hex(perfectRoot(hashes.slice(0, 4))), ROOTS[3]);
  });

  it('merkleRoot equals the recursive RFC definition for any number of leaves', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 600 }), fc.integer(), (n, seed) => {
        const hashes = Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`${seed}/${i}`)));
        assert.deepEqual(merkleRoot(hashes), rfcRoot(hashes));
      }),
      { numRuns: 60 },
    );
  });

  it('perfectRoot equals merkleRoot on powers of two and refuses other lengths', () => {
    for (let n = 1; n <= 512; n *= 2) {
      const hashes = Array.from({ length: n }, (_, i) => sha256(Buffer.from(String(i))));
      assert.deepEqual(perfectRoot(hashes), merkleRoot(hashes));
    }
    for (const n of [0, 3, 6, 255, 257]) {
      assert.throws(() => perfectRoot(Array.from({ length: n }, () => new Uint8Array(32))), RangeError);
    }
    assert.throws(() => perfectRoot([new Uint8Array(32), new Uint8Array(5)]), /hash 1 is 5 bytes/);
  });

  it('merkleRoot of one leaf is that leaf hash (copied, not aliased)', () => {
    const h = leafHash(Buffer.from('x'));
    const r = merkleRoot([h]);
    assert.deepEqual(r, h);
    r[0] = (r[0] as number) ^ 1;
    assert.notDeepEqual(r, h);
  });
});
