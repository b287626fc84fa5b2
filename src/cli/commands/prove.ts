import { SteleError } from '../../errors.js';
import { proveConsistency, proveInclusion } from '../../log/proofs.js';
import { TreeReader } from '../../log/tree-reader.js';
import { leafHash } from '../../tlog/hash.js';
import { verifyInclusion } from '../../tlog/proof.js';
import { intOption } from '../options.js';
import { openSource, readVerifiedCheckpoint, type SourceOptions } from './source.js';

const int = (name: string, v: string | undefined) => (v === undefined ? undefined : intOption(name, v));

/**
 * `stele prove`: builds the proof from the log's tiles (the same function the API uses), checks it
 * against the signed checkpoint, and prints it as JSON. Sizes other than the checkpoint's have no
 * signed root to check against; those proofs are printed with "verified": false.
 */
export async function proveCommand(
  opts: SourceOptions & { index?: string; size?: string; from?: string; to?: string },
): Promise<void> {
  const { source, verifier } = openSource(opts);
  const { note, checkpoint: cp } = await readVerifiedCheckpoint(source, verifier);
  const reader = new TreeReader(source);
  const b64 = (h: Buffer) => h.toString('base64');
  const index = int('--index', opts.index);
  const from = int('--from', opts.from);
  if ((index === undefined) === (from === undefined))
    throw new SteleError('bad_option', 'give --index (inclusion) or --from (consistency)');
  if (index !== undefined) {
    const size = int('--size', opts.size) ?? cp.size;
    const proof = await proveInclusion(reader, index, size, cp.size);
    const hash = leafHash(await reader.entry(index, cp.size));
    if (size === cp.size) verifyInclusion(hash, index, size, proof, cp.root);
    console.log(
      JSON.stringify({ index, size, leaf_hash: b64(hash), proof: proof.map(b64), verified: size === cp.size, checkpoint: note }),
    );
  } else {
    const f = from as number;
    const to = int('--to', opts.to) ?? cp.size;
    const proof = await proveConsistency(reader, f, to, cp.size);
    console.log(JSON.stringify({ from: f, to, proof: proof.map(b64), verified: false, checkpoint: note }));
  }
}
