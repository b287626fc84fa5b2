import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { emptyRoot, leafHash, merkleRoot, sha256 } from './hash.js';
import { LEAVES_HEX, ROOTS_HEX } from './merkle8.testdata.js';
import {
  consistencyPlan,
  consistencyProof,
  inclusionPlan,
  inclusionProof,
  ProofError,
  type ProofPlan,
  rehash,
  rootFromInclusionProof,
  rootFromNodes,
  rootPlan,
  verifyConsistency,
  verifyInclusion,
} from './proof.js';

const dh = (h: string): Buffer => Buffer.from(h, 'hex');
const hexes = (bs: readonly Uint8Array[]): string[] => bs.map((b) => Buffer.from(b).toString('hex'));

// transparency-dev/merkle's standard 8-leaf tree, its roots and known proofs.
const LEAVES8 = LEAVES_HEX.map((h) => leafHash(dh(h)));
const ROOTS8 = ROOTS_HEX.map(dh);
const root8 = (size: number): Buffer => ROOTS8[size - 1] as Buffer;

// {index (0-based), size, proof}
const INCLUSION_VECTORS: [number, number, string[]][] = [
  [0, 1, []],
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    1,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];
const CONSISTENCY_VECTORS: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
  [
    6,
    7,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
];

/** Distinct leaf hashes (so no two subtrees share a hash and swaps are always detectable). */
const POOL = Array.from({ length: 2048 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));

/** Build a proof the way a tiled log does: fetch the plan's node hashes, then rehash. */
function viaPlan(plan: ProofPlan, leafHashes: readonly Buffer[]): Buffer[] {
  const hashes = plan.ids.map(({ level, index }) => {
    const begin = index * 2 ** level;
    const end = (index + 1) * 2 ** level;
    assert.ok(end <= leafHashes.length, `node (${level}, ${index}) lies inside the tree`);
    return merkleRoot(leafHashes.slice(begin, end));
  });
  return rehash(plan, hashes);
}

const flipBit = (proof: readonly Buffer[], i: number, bit: number): Buffer[] =>
  proof.map((h, j) => {
    if (j !== i) return h;
    const c = Buffer.from(h);
    c[bit >> 3] = (c[bit >> 3] as number) ^ (1 << (bit & 7));
    return c;
  });

/** Every truncated, extended and reordered variant of a proof, with a description. */
function structuralMutations(proof: readonly Buffer[], extras: readonly Buffer[]): [string, Buffer[]][] {
  const out: [string, Buffer[]][] = [];
  for (let i = 0; i < proof.length; i++) out.push([`removed [${i}]`, proof.filter((_, j) => j !== i)]);
  for (const x of extras) {
    out.push(['appended', [...proof, x]]);
    out.push(['prepended', [x, ...proof]]);
    if (proof.length > 1) out.push(['inserted', [proof[0] as Buffer, x, ...proof.slice(1)]]);
  }
  for (let i = 0; i < proof.length; i++) {
    for (let j = i + 1; j < proof.length; j++) {
      const s = [...proof];
      [s[i], s[j]] = [s[j] as Buffer, s[i] as Buffer];
      out.push([`swapped [${i}] and [${j}]`, s]);
    }
  }
  return out;
}

function assertProofError(f: () => void, desc: string): void {
  assert.throws(f, ProofError, desc);
}

describe('inclusion proofs', () => {
  it('match the published vectors for the 8-leaf tree, by plan and by the RFC definition', () => {
    for (const [index, size, want] of INCLUSION_VECTORS) {
      const leaves = LEAVES8.slice(0, size);
      assert.deepEqual(hexes(inclusionProof(index, size, leaves)), want, `ref ${index}/${size}`);
      assert.deepEqual(hexes(viaPlan(inclusionPlan(index, size), leaves)), want, `plan ${index}/${size}`);
      verifyInclusion(LEAVES8[index] as Buffer, index, size, want.map(dh), root8(size));
      assert.deepEqual(rootFromInclusionProof(LEAVES8[index] as Buffer, index, size, want.map(dh)), root8(size));
    }
  });

  it('every corruption of the published vectors is rejected', () => {
    const some = dh('abacaba000000000000000000000000000000000000000000060061e00123456');
    for (const [index, size, hexProof] of INCLUSION_VECTORS) {
      const proof = hexProof.map(dh);
      const leaf = LEAVES8[index] as Buffer;
      const root = root8(size);
      const bad: [string, () => void][] = [
        ['index - 1', () => verifyInclusion(leaf, index - 1, size, proof, root)],
        ['index + 1', () => verifyInclusion(leaf, index + 1, size, proof, root)],
        ['index ^ 2', () => verifyInclusion(leaf, index ^ 2, size, proof, root)],
        ['size * 2', () => verifyInclusion(leaf, index, size * 2, proof, root)],
        ['size / 2', () => verifyInclusion(leaf, index, Math.floor(size / 2), proof, root)],
        ['wrong leaf', () => verifyInclusion(sha256(Buffer.from('WrongLeaf')), index, size, proof, root)],
        ['short leaf', () => verifyInclusion(Buffer.from('WrongLeaf'), index, size, proof, root)],
        ['empty root', () => verifyInclusion(leaf, index, size, proof, emptyRoot())],
        ['random root', () => verifyInclusion(leaf, index, size, proof, some)],
        ['empty hash appended', () => verifyInclusion(leaf, index, size, [...proof, Buffer.alloc(0)], root)],
      ];
      for (const [desc, mutated] of structuralMutations(proof, [root, some])) {
        bad.push([desc, () => verifyInclusion(leaf, index, size, mutated, root)]);
      }
      for (let i = 0; i < proof.length; i++) {
        for (let bit = 0; bit < 256; bit++) {
          bad.push([`bit ${bit} of [${i}]`, () => verifyInclusion(leaf, index, size, flipBit(proof, i, bit), root)]);
        }
      }
      for (const [desc, f] of bad) {
        // index - 1 = -1 is an argument error rather than a failed proof.
        if (index === 0 && desc === 'index - 1') assert.throws(f, RangeError);
        else assertProofError(f, `${index}/${size}: ${desc}`);
      }
    }
  });

  it('plans refuse out-of-range arguments with a clear message', () => {
    assert.throws(() => inclusionPlan(0, 0), { name: 'RangeError', message: 'leaf index 0 is out of range for tree size 0' });
    assert.throws(() => inclusionPlan(5, 5), /leaf index 5 is out of range for tree size 5/);
    assert.throws(() => inclusionPlan(-1, 5), RangeError);
    assert.throws(() => inclusionPlan(0.5, 5), RangeError);
    assert.throws(() => inclusionProof(3, 3, POOL), RangeError);
    assert.throws(() => inclusionProof(0, 4, POOL.slice(0, 3)), /need the 4 leaf hashes/);
  });

  it('verification reports why it failed', () => {
    const leaves = POOL.slice(0, 5);
    const proof = inclusionProof(1, 5, leaves);
    const root = merkleRoot(leaves);
    assert.throws(() => verifyInclusion(leaves[1] as Buffer, 1, 5, proof.slice(1), root), {
      name: 'ProofError',
      message: 'inclusion proof for leaf 1 in tree size 5 must have 3 hashes, got 2',
    });
    assert.throws(() => verifyInclusion(leaves[2] as Buffer, 1, 5, proof, root), /leads to root [0-9a-f]{64}, not the expected/);
    assert.throws(() => verifyInclusion(leaves[1] as Buffer, 5, 5, proof, root), /leaf index 5 is out of range for tree size 5/);
    assert.throws(() => verifyInclusion(leaves[1] as Buffer, 1, 5, proof, root.subarray(1)), /root is 31 bytes/);
    assert.throws(
      () => verifyInclusion(leaves[1] as Buffer, 1, 5, [proof[0] as Buffer, Buffer.alloc(3), proof[2] as Buffer], root),
      /proof hash 1 is 3 bytes/,
    );
  });

  it('for random trees up to 2000 leaves, plan+rehash equals the RFC proof, verifies, and no corruption verifies', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2000 }).chain((size) => fc.tuple(fc.constant(size), fc.integer({ min: 0, max: size - 1 }))),
        fc.integer({ min: 0, max: 255 }),
        ([size, index], bit) => {
          const leaves = POOL.slice(0, size);
          const root = merkleRoot(leaves);
          const leaf = leaves[index] as Buffer;
          const plan = inclusionPlan(index, size);
          const proof = inclusionProof(index, size, leaves);
          assert.deepEqual(viaPlan(plan, leaves), proof);
          verifyInclusion(leaf, index, size, proof, root);
          for (let i = 0; i < proof.length; i++) {
            assertProofError(() => verifyInclusion(leaf, index, size, flipBit(proof, i, bit), root), `bit ${bit} of [${i}]`);
          }
          for (const [desc, mutated] of structuralMutations(proof, [root, leaf])) {
            assertProofError(() => verifyInclusion(leaf, index, size, mutated, root), desc);
          }
          for (const other of [index - 1, index + 1, index ^ 2]) {
            if (other >= 0 && other < size && other !== index) {
              assertProofError(() => verifyInclusion(leaf, other, size, proof, root), `index ${other}`);
            }
          }
          assertProofError(() => verifyInclusion(POOL[size] as Buffer, index, size, proof, root), 'other leaf');
        },
      ),
      { numRuns: 150 },
    );
  });

  it('every single-bit change anywhere in a proof is detected (exhaustive over a few trees)', () => {
    for (const [index, size] of [
      [0, 1000],
      [999, 1000],
      [517, 1000],
      [1023, 1024],
      [300, 301],
    ] as const) {
      const leaves = POOL.slice(0, size);
      const root = merkleRoot(leaves);
      const proof = inclusionProof(index, size, leaves);
      for (let i = 0; i < proof.length; i++) {
        for (let bit = 0; bit < 256; bit++) {
          assertProofError(
            () => verifyInclusion(leaves[index] as Buffer, index, size, flipBit(proof, i, bit), root),
            `${i}/${bit}`,
          );
        }
      }
    }
  });

  it('plans name only perfect nodes inside the tree and fold at most one ephemeral node', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.maxSafeNat(), (a, b) => {
        const size = Math.max(a, b, 1);
        const index = Math.min(a, b) % size;
        const plan = inclusionPlan(index, size);
        for (const { level, index: i } of plan.ids) {
          assert.ok((i + 1) * 2 ** level <= size, `node (${level}, ${i}) inside size ${size}`);
        }
        assert.ok(plan.begin <= plan.end && plan.end <= plan.ids.length);
        assert.ok(plan.ids.length <= 2 * 53);
      }),
    );
  });
});

describe('consistency proofs', () => {
  it('match the published vectors for the 8-leaf tree, by plan and by the RFC definition', () => {
    for (const [size1, size2, want] of CONSISTENCY_VECTORS) {
      const leaves = LEAVES8.slice(0, size2);
      assert.deepEqual(hexes(consistencyProof(size1, size2, leaves)), want, `ref ${size1}->${size2}`);
      assert.deepEqual(hexes(viaPlan(consistencyPlan(size1, size2), leaves)), want, `plan ${size1}->${size2}`);
      verifyConsistency(size1, size2, want.map(dh), root8(size1), root8(size2));
    }
  });

  it('trivial cases: equal sizes need equal roots and an empty proof; the empty tree is a prefix of all', () => {
    const r = POOL[0] as Buffer;
    const s = POOL[1] as Buffer;
    verifyConsistency(1, 1, [], r, r);
    assert.throws(() => verifyConsistency(1, 1, [], r, s), {
      name: 'ProofError',
      message: /two different roots for the same tree size 1/,
    });
    assert.throws(() => verifyConsistency(3, 3, [r], r, r), /between equal sizes 3 must be empty, got 1 hashes/);
    verifyConsistency(0, 0, [], emptyRoot(), emptyRoot());
    verifyConsistency(0, 5, [], emptyRoot(), r);
    assert.throws(() => verifyConsistency(0, 5, [], r, r), /not the empty-tree root/);
    assert.throws(() => verifyConsistency(0, 5, [r], emptyRoot(), r), /from the empty tree must be empty/);
    assert.throws(() => verifyConsistency(2, 1, [], r, s), /size2 1 is smaller than size1 2/);
    assert.throws(() => verifyConsistency(1, 2, [], r, s), /consistency proof from size 1 to 2 is empty/);
    assert.throws(() => verifyConsistency(1, 2, [r], r.subarray(2), s), /root1 is 30 bytes/);
    assert.deepEqual(consistencyPlan(0, 9), { ids: [], begin: 0, end: 0 });
    assert.deepEqual(consistencyPlan(9, 9), { ids: [], begin: 0, end: 0 });
    assert.deepEqual(consistencyProof(0, 9, POOL), []);
    assert.deepEqual(consistencyProof(9, 9, POOL), []);
  });

  it('plans refuse a shrinking tree with a clear message', () => {
    assert.throws(() => consistencyPlan(5, 3), {
      name: 'RangeError',
      message: 'consistency proof from size 5 to smaller size 3 is impossible',
    });
    assert.throws(() => consistencyPlan(-1, 3), RangeError);
    assert.throws(() => consistencyProof(5, 3, POOL), RangeError);
  });

  it('every corruption of the published vectors is rejected', () => {
    const some = dh('abacaba000000000000000000000000000000000000000000060061e00123456');
    for (const [size1, size2, hexProof] of CONSISTENCY_VECTORS) {
      if (hexProof.length === 0) continue;
      const proof = hexProof.map(dh);
      const r1 = root8(size1);
      const r2 = root8(size2);
      const bad: [string, () => void][] = [
        ['size1 - 1', () => verifyConsistency(size1 - 1, size2, proof, r1, r2)],
        ['size1 + 1', () => verifyConsistency(size1 + 1, size2, proof, r1, r2)],
        ['size1 ^ 2', () => verifyConsistency(size1 ^ 2, size2, proof, r1, r2)],
        ['size2 * 2', () => verifyConsistency(size1, size2 * 2, proof, r1, r2)],
        ['size2 / 2', () => verifyConsistency(size1, Math.floor(size2 / 2), proof, r1, r2)],
        ['wrong root1', () => verifyConsistency(size1, size2, proof, some, r2)],
        ['wrong root2', () => verifyConsistency(size1, size2, proof, r1, some)],
        ['swapped roots', () => verifyConsistency(size1, size2, proof, r2, r1)],
        ['empty proof', () => verifyConsistency(size1, size2, [], r1, r2)],
        ['empty hash appended', () => verifyConsistency(size1, size2, [...proof, Buffer.alloc(0)], r1, r2)],
      ];
      for (const [desc, mutated] of structuralMutations(proof, [r1, r2, proof[0] as Buffer])) {
        bad.push([desc, () => verifyConsistency(size1, size2, mutated, r1, r2)]);
      }
      for (let i = 0; i < proof.length; i++) {
        for (let bit = 0; bit < 256; bit++) {
          bad.push([`bit ${bit} of [${i}]`, () => verifyConsistency(size1, size2, flipBit(proof, i, bit), r1, r2)]);
        }
      }
      for (const [desc, f] of bad) assertProofError(f, `${size1}->${size2}: ${desc}`);
    }
  });

  it('for random trees up to 2000 leaves, plan+rehash equals the RFC proof, verifies, and no corruption verifies', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2000 }).chain((size2) => fc.tuple(fc.integer({ min: 1, max: size2 }), fc.constant(size2))),
        fc.integer({ min: 0, max: 255 }),
        ([size1, size2], bit) => {
          const leaves = POOL.slice(0, size2);
          const r1 = merkleRoot(leaves.slice(0, size1));
          const r2 = merkleRoot(leaves);
          const proof = consistencyProof(size1, size2, leaves);
          assert.deepEqual(viaPlan(consistencyPlan(size1, size2), leaves), proof);
          verifyConsistency(size1, size2, proof, r1, r2);
          if (size1 === size2) {
            assert.equal(proof.length, 0);
            return;
          }
          for (let i = 0; i < proof.length; i++) {
            assertProofError(() => verifyConsistency(size1, size2, flipBit(proof, i, bit), r1, r2), `bit ${bit} of [${i}]`);
          }
          for (const [desc, mutated] of structuralMutations(proof, [r1, r2])) {
            assertProofError(() => verifyConsistency(size1, size2, mutated, r1, r2), desc);
          }
          assertProofError(() => verifyConsistency(size1, size2, proof, r2, r1), 'swapped roots');
          for (const other of [size1 - 1, size1 + 1]) {
            if (other >= 1 && other < size2) {
              assertProofError(() => verifyConsistency(other, size2, proof, r1, r2), `size1 ${other}`);
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('every single-bit change anywhere in a proof is detected (exhaustive over a few trees)', () => {
    for (const [size1, size2] of [
      [1, 1000],
      [999, 1000],
      [517, 1000],
      [512, 1500],
      [300, 301],
    ] as const) {
      const leaves = POOL.slice(0, size2);
      const r1 = merkleRoot(leaves.slice(0, size1));
      const r2 = merkleRoot(leaves);
      const proof = consistencyProof(size1, size2, leaves);
      for (let i = 0; i < proof.length; i++) {
        for (let bit = 0; bit < 256; bit++) {
          assertProofError(() => verifyConsistency(size1, size2, flipBit(proof, i, bit), r1, r2), `${i}/${bit}`);
        }
      }
    }
  });

  it('plans name only perfect nodes inside the newer tree', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.maxSafeNat(), (a, b) => {
        const size1 = Math.min(a, b);
        const size2 = Math.max(a, b);
        const plan = consistencyPlan(size1, size2);
        for (const { level, index } of plan.ids) {
          assert.ok((index + 1) * 2 ** level <= size2, `node (${level}, ${index}) inside size ${size2}`);
        }
        assert.ok(plan.begin <= plan.end && plan.end <= plan.ids.length);
      }),
    );
  });
});

describe('rehash', () => {
  it('folds the ephemeral nodes right to left and refuses a wrong number of hashes', () => {
    // Leaf 0 of 7: siblings (0,1), (1,1), then the ephemeral node over (1,2) and (0,6).
    const plan = inclusionPlan(0, 7);
    assert.deepEqual(plan, {
      ids: [
        { level: 0, index: 1 },
        { level: 1, index: 1 },
        { level: 0, index: 6 },
        { level: 1, index: 2 },
      ],
      begin: 2,
      end: 4,
    });
    assert.throws(() => rehash(plan, POOL.slice(0, 3)), /got 3 hashes for a plan of 4 nodes/);
    assert.throws(() => rehash(plan, [...POOL.slice(0, 3), Buffer.alloc(1)]), /hash 3 is 1 bytes/);
  });

  it('works with tree sizes beyond 2^32', () => {
    const size = 2 ** 40 + 12345;
    const plan = inclusionPlan(2 ** 33 + 7, size);
    for (const { level, index } of plan.ids) assert.ok((index + 1) * 2 ** level <= size);
    assert.equal(plan.ids.length - Math.max(0, plan.end - plan.begin - 1), 41);
    const c = consistencyPlan(2 ** 35 + 3, size);
    for (const { level, index } of c.ids) assert.ok((index + 1) * 2 ** level <= size);
  });
});

describe('root of an older tree size', () => {
  it('rootPlan + rootFromNodes equals the RFC root for every size up to 300', () => {
    const leaves = Array.from({ length: 300 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
    for (let size = 0; size <= leaves.length; size++) {
      const hashes = rootPlan(size).map(({ level, index }) =>
        merkleRoot(leaves.slice(index * 2 ** level, (index + 1) * 2 ** level)),
      );
      assert.deepEqual(rootFromNodes(hashes), merkleRoot(leaves.slice(0, size)), `size ${size}`);
    }
    assert.deepEqual(rootFromNodes([]), emptyRoot());
    assert.deepEqual(rootPlan(6), [
      { level: 2, index: 0 },
      { level: 1, index: 2 },
    ]);
  });
});
