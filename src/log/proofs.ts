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

/** Inclusion proof of `index` in the tree of `size`, from the tiles of the tree of `published` entries. */
export async function proveInclusion(reader: TreeReader, index: number, size: number, published: number): Promise<Buffer[]> {
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
async function proofOf(reader: TreeReader, plan: ProofPlan, published: number): Promise<Buffer[]> {
  if (plan.end - plan.begin <= 1) return rehash(plan, await reader.hashes(plan.ids, published));
  const head = await reader.hashes(plan.ids.slice(0, plan.begin), published);
  const folded = await reader.folded(plan.ids.slice(plan.begin, plan.end), published);
  const tail = await reader.hashes(plan.ids.slice(plan.end), published);
  return [...head, folded, ...tail].map((h) => Buffer.from(h));
}

/**
 * The leaf hash of entry `index` (< published) from the level-0 tile, which holds leaf hashes:
 * a proof's answer needs no entry bundle read and decoded (256 leaves) for it.
 */
export async function leafHashAt(reader: TreeReader, index: number, published: number): Promise<Buffer> {
  checkIndex('index', index);
  if (index >= published) throw new SteleError('bad_request', `index ${index} is beyond the latest checkpoint (${published})`);
  return (await reader.hashes([{ level: 0, index }], published))[0] as Buffer;
}

/** Consistency proof between trees of `from` and `to` entries. */
export async function proveConsistency(reader: TreeReader, from: number, to: number, published: number): Promise<Buffer[]> {
  checkIndex('from', from);
  checkSize(to, published);
  if (from > to) throw new SteleError('bad_request', `from (${from}) is larger than to (${to})`);
  return proofOf(reader, consistencyPlan(from, to), published);
}

export { checkIndex };
