import { SteleError } from '../core/errors.js';
import { consistencyPlan, inclusionPlan, type ProofPlan, rehash } from '../tlog/proof.js';
import type { TreeReader } from './tree-reader.js';

function checkIndex(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new SteleError('bad_request', `${name} must be a non-negative integer`);
}

function checkSize(size: number, published: number): void {
  checkIndex('size', size);
  if (size > published) throw new SteleError('bad_request', `size ${size} is beyond the latest checkpoint (${published})`);
}

/**
 * Inclusion proof of `index` in the tree of `size`, from the tiles of the tree of `published`
 * entries. Synchronous when the reader has every tile cached (no promise to settle: proofs are
 * served by the ten thousand a second); the hashes are views of cached tiles, not to be written to.
 */
export function proveInclusion(reader: TreeReader, index: number, size: number, published: number): MaybePromise<Buffer[]> {
  checkIndex('index', index);
  checkSize(size, published);
  if (index >= size) throw new SteleError('bad_request', `index ${index} is not below tree size ${size}`);
  return proofOf(reader, inclusionPlan(index, size), published);
}

/**
 * The proof a plan names. Its run of right-edge subtrees (plan.begin to plan.end), folded into one
 * hash, is the same for most proofs of one tree size: the reader keeps it (TreeReader.folded)
 * rather than hash it again for every request.
 */
function proofOf(reader: TreeReader, plan: ProofPlan, published: number): MaybePromise<Buffer[]> {
  if (plan.end - plan.begin <= 1) {
    const hashes = reader.cachedHashes(plan.ids, published);
    return hashes ? rehash(plan, hashes) : reader.hashes(plan.ids, published).then((hs) => rehash(plan, hs));
  }
  const run = plan.ids.slice(plan.begin, plan.end);
  const folded = reader.cachedFold(run);
  const head = folded && reader.cachedHashes(plan.ids.slice(0, plan.begin), published);
  const tail = head && reader.cachedHashes(plan.ids.slice(plan.end), published);
  if (folded && head && tail) return [...head, folded, ...tail];
  return (async () => [
    ...(await reader.hashes(plan.ids.slice(0, plan.begin), published)),
    await reader.folded(run, published),
    ...(await reader.hashes(plan.ids.slice(plan.end), published)),
  ])();
}

/** A value, or a promise of it when it had to be read from storage. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * The leaf hash of entry `index` (< published) from the level-0 tile, which holds leaf hashes:
 * a proof's answer needs no entry bundle read and decoded (256 leaves) for it.
 */
export function leafHashAt(reader: TreeReader, index: number, published: number): MaybePromise<Buffer> {
  checkIndex('index', index);
  if (index >= published) throw new SteleError('bad_request', `index ${index} is beyond the latest checkpoint (${published})`);
  const ids = [{ level: 0, index }];
  const cached = reader.cachedHashes(ids, published);
  return cached ? (cached[0] as Buffer) : reader.hashes(ids, published).then((hs) => hs[0] as Buffer);
}

/** Consistency proof between trees of `from` and `to` entries. */
export function proveConsistency(reader: TreeReader, from: number, to: number, published: number): MaybePromise<Buffer[]> {
  checkIndex('from', from);
  checkSize(to, published);
  if (from > to) throw new SteleError('bad_request', `from (${from}) is larger than to (${to})`);
  return proofOf(reader, consistencyPlan(from, to), published);
}

export { checkIndex };
