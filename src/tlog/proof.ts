/**
 * RFC 6962 / RFC 9162 inclusion and consistency proofs.
 *
 * Generation is split as in transparency-dev/merkle's proof package: a *plan* lists
 * the perfect-subtree nodes whose hashes are needed (which a tiled log reads from
 * tiles, see nodeLocation), and `rehash` folds the few nodes that stand for one
 * "ephemeral" node (the right edge of a non-perfect tree) into the final proof.
 *
 * Tree sizes are JS numbers up to 2^53-1, so the bit tricks below work on two
 * 32-bit halves instead of using the (32-bit) bitwise operators directly.
 */
import { emptyRoot, HASH_SIZE, merkleRoot, nodeHash } from './hash.js';

export interface NodeId {
  level: number;
  index: number;
}

/**
 * The perfect nodes whose hashes are needed, in proof order; ids[begin:end] (when
 * end - begin > 1) are folded right to left into one ephemeral node by `rehash`.
 */
export interface ProofPlan {
  ids: NodeId[];
  begin: number;
  end: number;
}

/** Thrown when a proof does not verify; the message says why. */
export class ProofError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProofError';
  }
}

// ---- 53-bit integer helpers -------------------------------------------------

const TWO32 = 2 ** 32;
const hi = (x: number): number => Math.floor(x / TWO32);
const lo = (x: number): number => x >>> 0; // ToUint32 is x mod 2^32 for non-negative integers
const xor = (a: number, b: number): number => (hi(a) ^ hi(b)) * TWO32 + ((lo(a) ^ lo(b)) >>> 0);
const and = (a: number, b: number): number => (hi(a) & hi(b)) * TWO32 + ((lo(a) & lo(b)) >>> 0);
const shr = (x: number, n: number): number => Math.floor(x / 2 ** n);
const shl = (x: number, n: number): number => x * 2 ** n;
/** Number of bits needed to represent x (0 for 0). */
function bitLen(x: number): number {
  const h = hi(x);
  return h !== 0 ? 64 - Math.clz32(h) : 32 - Math.clz32(lo(x));
}
/** Index of the lowest set bit; x must be > 0. */
function trailingZeros(x: number): number {
  const l = lo(x);
  if (l !== 0) return 31 - Math.clz32(l & -l);
  const h = hi(x);
  return 63 - Math.clz32(h & -h);
}
function onesCount(x: number): number {
  let c = 0;
  for (let v = x; v > 0; v = shr(v, 1)) if (v % 2 === 1) c++;
  return c;
}
const isPow2 = (x: number): boolean => x > 0 && and(x, x - 1) === 0;

function checkSize(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${n}`);
  }
}

// ---- plans ------------------------------------------------------------------

/** Nodes of the compact range [begin, end): left border low→high, then right border high→low. */
function rangeNodes(begin: number, end: number, out: NodeId[]): void {
  let left: number;
  let right: number;
  if (begin === 0) {
    left = 0;
    right = end;
  } else {
    // Only nodes strictly below the point where the paths to leaves begin-1 and end
    // diverge are inside the range.
    const mask = 2 ** (bitLen(xor(begin - 1, end)) - 1) - 1;
    left = mask - and(begin - 1, mask); // ~(begin-1) & mask
    right = and(end, mask);
  }
  let pos = begin;
  while (left !== 0) {
    const level = trailingZeros(left);
    const bit = 2 ** level;
    out.push({ level, index: shr(pos, level) });
    pos += bit;
    left -= bit;
  }
  while (right !== 0) {
    const level = bitLen(right) - 1;
    const bit = 2 ** level;
    out.push({ level, index: shr(pos, level) });
    pos += bit;
    right -= bit;
  }
}

/**
 * Nodes proving that node (level, index) is in the tree of `size` leaves, starting
 * with that node itself.
 */
function nodesFor(index: number, level: number, size: number): ProofPlan {
  // The fork is where the path to (level, index) leaves the path to the right edge;
  // its sibling is the ephemeral node when the tree is not perfect there.
  const inner = bitLen(xor(index, shr(size, level))) - 1;
  const forkLevel = level + inner;
  const forkIndex = shr(index, inner);
  const begin = shl(forkIndex, forkLevel);
  const end = shl(forkIndex + 1, forkLevel);

  const ids: NodeId[] = [{ level, index }];
  for (let l = level, i = index; l < forkLevel; l++, i = shr(i, 1)) {
    ids.push({ level: l, index: i % 2 === 0 ? i + 1 : i - 1 });
  }
  // Nodes right of the fork make up the ephemeral node; reversed so that rehash can
  // fold them from the lowest level upward.
  const len1 = ids.length;
  const right: NodeId[] = [];
  rangeNodes(end, size, right);
  ids.push(...right.reverse());
  const len2 = ids.length;
  // Nodes left of the fork, lowest level first.
  const left: NodeId[] = [];
  rangeNodes(0, begin, left);
  ids.push(...left.reverse());
  return len1 < len2 ? { ids, begin: len1, end: len2 } : { ids, begin: 0, end: 0 };
}

function skipFirst(p: ProofPlan): ProofPlan {
  const ids = p.ids.slice(1);
  return p.begin < p.end ? { ids, begin: p.begin - 1, end: p.end - 1 } : { ids, begin: 0, end: 0 };
}

/** Plan for the inclusion proof of leaf `index` in the tree of `size` leaves. */
export function inclusionPlan(index: number, size: number): ProofPlan {
  checkSize('leaf index', index);
  checkSize('tree size', size);
  if (index >= size) {
    throw new RangeError(`leaf index ${index} is out of range for tree size ${size}`);
  }
  return skipFirst(nodesFor(index, 0, size));
}

/** Plan for the consistency proof from size1 to size2 (empty when size1 is 0 or size2). */
export function consistencyPlan(size1: number, size2: number): ProofPlan {
  checkSize('size1', size1);
  checkSize('size2', size2);
  if (size1 > size2) {
    throw new RangeError(`consistency proof from size ${size1} to smaller size ${size2} is impossible`);
  }
  if (size1 === 0 || size1 === size2) return { ids: [], begin: 0, end: 0 };
  // Start from the largest perfect subtree ending at size1; if size1 is a power of
  // two that subtree is the old root itself, which the verifier already has.
  const level = trailingZeros(size1);
  const index = shr(size1 - 1, level);
  const p = nodesFor(index, level, size2);
  return isPow2(size1) ? skipFirst(p) : p;
}

/**
 * The perfect subtrees that make up the tree of `size` leaves, largest (leftmost) first, so that a
 * tiled log can compute the root of an older tree size from its tiles (see rootFromNodes).
 */
export function rootPlan(size: number): NodeId[] {
  checkSize('tree size', size);
  const out: NodeId[] = [];
  rangeNodes(0, size, out);
  return out;
}

/** The root of a tree from the hashes of rootPlan(size), in that order, folded right to left. */
export function rootFromNodes(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return emptyRoot();
  let acc = hashes[hashes.length - 1] as Uint8Array;
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i] as Uint8Array, acc);
  return Buffer.from(acc);
}

/** Turn the hashes of plan.ids (same order) into the final proof. */
export function rehash(plan: ProofPlan, hashes: readonly Uint8Array[]): Buffer[] {
  if (hashes.length !== plan.ids.length) {
    throw new RangeError(`rehash: got ${hashes.length} hashes for a plan of ${plan.ids.length} nodes`);
  }
  hashes.forEach((h, i) => {
    if (h.length !== HASH_SIZE) throw new RangeError(`rehash: hash ${i} is ${h.length} bytes, want ${HASH_SIZE}`);
  });
  const out: Buffer[] = [];
  for (let i = 0; i < hashes.length; i++) {
    const h = hashes[i] as Uint8Array;
    if (i === plan.begin && plan.end - plan.begin > 1) {
      let acc: Uint8Array = h;
      for (i++; i < plan.end; i++) acc = nodeHash(hashes[i] as Uint8Array, acc);
      i--;
      out.push(Buffer.from(acc));
    } else {
      out.push(Buffer.from(h));
    }
  }
  return out;
}

// ---- verification -----------------------------------------------------------

function checkHash(what: string, h: Uint8Array): void {
  if (h.length !== HASH_SIZE) throw new ProofError(`${what} is ${h.length} bytes, want ${HASH_SIZE}`);
}

function checkProofHashes(proof: readonly Uint8Array[]): void {
  for (let i = 0; i < proof.length; i++) checkHash(`proof hash ${i}`, proof[i] as Uint8Array);
}

function hex(h: Uint8Array): string {
  return Buffer.from(h).toString('hex');
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/**
 * Split an inclusion proof for `index` in a tree of `size`: `inner` hashes below the
 * point where the paths to index and size-1 diverge, `border` hashes above it.
 */
function decompose(index: number, size: number): { inner: number; border: number } {
  const inner = bitLen(xor(index, size - 1));
  return { inner, border: onesCount(shr(index, inner)) };
}

/** Fold proof hashes into seed along the path to node `index` (lowest level first). */
function chainInner(seed: Uint8Array, proof: readonly Uint8Array[], index: number): Uint8Array {
  let h = seed;
  for (let i = 0; i < proof.length; i++) {
    h = shr(index, i) % 2 === 0 ? nodeHash(h, proof[i] as Uint8Array) : nodeHash(proof[i] as Uint8Array, h);
  }
  return h;
}

/** Like chainInner but only with left siblings: the hash of the older, smaller subtree. */
function chainInnerRight(seed: Uint8Array, proof: readonly Uint8Array[], index: number): Uint8Array {
  let h = seed;
  for (let i = 0; i < proof.length; i++) {
    if (shr(index, i) % 2 === 1) h = nodeHash(proof[i] as Uint8Array, h);
  }
  return h;
}

/** Above the divergence point every proof hash is a left sibling. */
function chainBorderRight(seed: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  let h = seed;
  for (const p of proof) h = nodeHash(p, h);
  return h;
}

/** The root implied by an inclusion proof; throws ProofError if the proof is malformed. */
export function rootFromInclusionProof(leafHash: Uint8Array, index: number, size: number, proof: readonly Uint8Array[]): Buffer {
  checkSize('leaf index', index);
  checkSize('tree size', size);
  if (index >= size) throw new ProofError(`leaf index ${index} is out of range for tree size ${size}`);
  checkHash('leaf hash', leafHash);
  checkProofHashes(proof);
  const { inner, border } = decompose(index, size);
  if (proof.length !== inner + border) {
    throw new ProofError(
      `inclusion proof for leaf ${index} in tree size ${size} must have ${inner + border} hashes, got ${proof.length}`,
    );
  }
  const h = chainBorderRight(chainInner(leafHash, proof.slice(0, inner), index), proof.slice(inner));
  return Buffer.from(h);
}

/** Throws ProofError unless `proof` shows leaf `index` (with `leafHash`) is in the tree of `size` with `root`. */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkHash('root', root);
  const got = rootFromInclusionProof(leafHash, index, size, proof);
  if (!same(got, root)) {
    throw new ProofError(
      `inclusion proof for leaf ${index} in tree size ${size} leads to root ${hex(got)}, not the expected ${hex(root)}`,
    );
  }
}

/** Throws ProofError unless `proof` shows the tree (size1, root1) is a prefix of (size2, root2). */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  checkSize('size1', size1);
  checkSize('size2', size2);
  checkHash('root1', root1);
  checkHash('root2', root2);
  checkProofHashes(proof);
  if (size2 < size1) throw new ProofError(`size2 ${size2} is smaller than size1 ${size1}: a log cannot shrink`);
  if (size1 === size2) {
    if (proof.length !== 0) {
      throw new ProofError(`consistency proof between equal sizes ${size1} must be empty, got ${proof.length} hashes`);
    }
    if (!same(root1, root2)) {
      throw new ProofError(`two different roots for the same tree size ${size1}: ${hex(root1)} and ${hex(root2)}`);
    }
    return;
  }
  if (size1 === 0) {
    // Every tree extends the empty tree, whose root is fixed.
    if (proof.length !== 0) {
      throw new ProofError(`consistency proof from the empty tree must be empty, got ${proof.length} hashes`);
    }
    if (!same(root1, merkleRoot([]))) {
      throw new ProofError(`root1 ${hex(root1)} is not the empty-tree root, but size1 is 0`);
    }
    return;
  }
  if (proof.length === 0) throw new ProofError(`consistency proof from size ${size1} to ${size2} is empty`);

  const { inner: fullInner, border } = decompose(size1 - 1, size2);
  const shift = trailingZeros(size1);
  const inner = fullInner - shift; // shift < fullInner because size1 < size2
  // Unless size1 is a power of two (then root1 is the seed), the proof starts with
  // the root of the largest perfect subtree ending at size1.
  const seedIsRoot1 = isPow2(size1);
  const start = seedIsRoot1 ? 0 : 1;
  const want = start + inner + border;
  if (proof.length !== want) {
    throw new ProofError(`consistency proof from size ${size1} to ${size2} must have ${want} hashes, got ${proof.length}`);
  }
  const seed = seedIsRoot1 ? root1 : (proof[0] as Uint8Array);
  const rest = proof.slice(start);
  const mask = shr(size1 - 1, shift);

  const hash1 = chainBorderRight(chainInnerRight(seed, rest.slice(0, inner), mask), rest.slice(inner));
  if (!same(hash1, root1)) {
    throw new ProofError(
      `consistency proof from size ${size1} to ${size2} leads to old root ${hex(hash1)}, not the expected ${hex(root1)}`,
    );
  }
  const hash2 = chainBorderRight(chainInner(seed, rest.slice(0, inner), mask), rest.slice(inner));
  if (!same(hash2, root2)) {
    throw new ProofError(
      `consistency proof from size ${size1} to ${size2} leads to new root ${hex(hash2)}, not the expected ${hex(root2)}`,
    );
  }
}

// ---- reference generators (RFC 9162 §2.1.3.1 and §2.1.4.1, recursive) --------

/** Largest power of two strictly less than n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function checkLeaves(size: number, leafHashes: readonly Uint8Array[]): void {
  if (leafHashes.length < size) {
    throw new RangeError(`need the ${size} leaf hashes of the tree, got ${leafHashes.length}`);
  }
}

/** PATH(m, D[n]) from the RFC: the inclusion proof of leaf `index` among the first `size` leaf hashes. */
export function inclusionProof(index: number, size: number, leafHashes: readonly Uint8Array[]): Buffer[] {
  checkSize('leaf index', index);
  checkSize('tree size', size);
  if (index >= size) throw new RangeError(`leaf index ${index} is out of range for tree size ${size}`);
  checkLeaves(size, leafHashes);
  const path = (m: number, d: readonly Uint8Array[]): Buffer[] => {
    if (d.length === 1) return [];
    const k = splitPoint(d.length);
    return m < k ? [...path(m, d.slice(0, k)), merkleRoot(d.slice(k))] : [...path(m - k, d.slice(k)), merkleRoot(d.slice(0, k))];
  };
  return path(index, leafHashes.slice(0, size));
}

/** PROOF(m, D[n]) from the RFC: the consistency proof from `size1` to `size2` over the leaf hashes. */
export function consistencyProof(size1: number, size2: number, leafHashes: readonly Uint8Array[]): Buffer[] {
  checkSize('size1', size1);
  checkSize('size2', size2);
  if (size1 > size2) {
    throw new RangeError(`consistency proof from size ${size1} to smaller size ${size2} is impossible`);
  }
  checkLeaves(size2, leafHashes);
  if (size1 === 0 || size1 === size2) return [];
  const subproof = (m: number, d: readonly Uint8Array[], whole: boolean): Buffer[] => {
    const n = d.length;
    if (m === n) return whole ? [] : [merkleRoot(d)];
    const k = splitPoint(n);
    return m <= k
      ? [...subproof(m, d.slice(0, k), whole), merkleRoot(d.slice(k))]
      : [...subproof(m - k, d.slice(k), false), merkleRoot(d.slice(0, k))];
  };
  return subproof(size1, leafHashes.slice(0, size2), true);
}
