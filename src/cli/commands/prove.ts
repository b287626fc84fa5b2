import { readFileSync } from 'node:fs';
import { parseInteger } from '../../core/config/parse.js';
import { SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import { proveConsistency, proveInclusion } from '../../log/proofs.js';
import { TreeReader } from '../../log/tree-reader.js';
import { type Checkpoint, parseCheckpoint } from '../../tlog/checkpoint.js';
import { leafHash } from '../../tlog/hash.js';
import { openNote, type Verifier } from '../../tlog/note.js';
import { rootFromNodes, rootPlan, verifyConsistency, verifyInclusion } from '../../tlog/proof.js';
import { errorJson } from '../errors.js';
import { openSource, readVerifiedCheckpoint, type SourceOptions } from './source.js';

const b64 = (h: Buffer) => h.toString('base64');

export interface ProveOptions extends SourceOptions {
  index?: string;
  size?: string;
  from?: string;
  to?: string;
}

/** A tree size to prove at: a number, or a saved signed checkpoint (its size, with its signed root). */
interface Point {
  size: number;
  /** The signed checkpoint note, when the point was given as one. */
  note?: string;
  root?: Buffer;
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** `--from`/`--to`: a tree size, or the file of a checkpoint signed by the log's key. */
function readPoint(name: string, v: string, verifier: Verifier, latest: Checkpoint): Point {
  if (DECIMAL.test(v)) return { size: parseInteger(v, name) };
  let note: string;
  try {
    note = readFileSync(v, 'utf8');
  } catch (err) {
    throw new SteleError(
      'bad_option',
      `${name} must be a tree size or a checkpoint file; cannot read ${v}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let cp: Checkpoint;
  try {
    cp = parseCheckpoint(openNote(note, [verifier]).text);
  } catch (err) {
    throw new SteleError('verify_failed', `${name} ${v}: the checkpoint does not verify: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (cp.origin !== latest.origin) {
    throw new SteleError('verify_failed', `${name} ${v} is a checkpoint of ${cp.origin}, not of this log (${latest.origin})`);
  }
  if (cp.size > latest.size) {
    throw new SteleError(
      'verify_failed',
      `${name} ${v} has ${plural(cp.size, 'entry', 'entries')}, more than the log's latest checkpoint (${latest.size}): the log rolled back, or forked`,
    );
  }
  return { size: cp.size, note, root: cp.root };
}

/**
 * The root of the tree of `size` entries, authenticated: the latest checkpoint's signed root, or a
 * root computed from the tiles and proven (by a consistency proof to the signed checkpoint) to be
 * a prefix of it — tiles cannot make up a root that passes.
 */
async function rootAt(reader: TreeReader, size: number, cp: Checkpoint): Promise<{ root: Buffer; toCheckpoint: Buffer[] }> {
  if (size === cp.size) return { root: cp.root, toCheckpoint: [] };
  if (size > cp.size) throw new SteleError('bad_request', `size ${size} is beyond the latest checkpoint (${cp.size})`);
  const root = rootFromNodes(await reader.hashes(rootPlan(size), cp.size));
  const toCheckpoint = await proveConsistency(reader, size, cp.size, cp.size);
  verifyConsistency(size, cp.size, toCheckpoint, root, cp.root);
  return { root, toCheckpoint };
}

function failed(err: unknown): SteleError {
  if (err instanceof SteleError) return err;
  return new SteleError('verify_failed', `proof does not verify: ${(err as Error).message}`, { cause: err });
}

/**
 * `stele prove`: builds the proof from the log's tiles (the same function the API uses), checks it
 * against signed checkpoints, and prints it as JSON with "verified": true. Every root a proof is
 * checked against is signed: the latest checkpoint's, a saved checkpoint given as a file
 * (`--from old.checkpoint`), or a root computed from the tiles at another size and itself proven
 * consistent with the latest signed checkpoint. When a check fails, prints `{"verified": false,
 * "error"}` and exits non-zero.
 */
export async function proveCommand(opts: ProveOptions): Promise<void> {
  try {
    console.log(JSON.stringify(await prove(opts)));
  } catch (err) {
    const e = failed(err);
    console.log(JSON.stringify({ verified: false, error: errorJson(e) }));
    throw e;
  }
}

async function prove(opts: ProveOptions): Promise<Record<string, unknown>> {
  const int = (name: string, v: string | undefined) => (v === undefined ? undefined : parseInteger(v, name));
  const { source, verifier } = openSource(opts);
  if ((opts.index === undefined) === (opts.from === undefined)) {
    throw new SteleError('bad_option', 'give --index (inclusion) or --from (consistency)');
  }
  const { note, checkpoint: cp } = await readVerifiedCheckpoint(source, verifier);
  const reader = new TreeReader(source);
  const index = int('--index', opts.index);
  if (index !== undefined) {
    const size = int('--size', opts.size) ?? cp.size;
    const proof = await proveInclusion(reader, index, size, cp.size);
    const hash = leafHash(await reader.entry(index, cp.size));
    const { root, toCheckpoint } = await rootAt(reader, size, cp);
    verifyInclusion(hash, index, size, proof, root);
    return {
      index,
      size,
      leaf_hash: b64(hash),
      proof: proof.map(b64),
      root: b64(root),
      ...(size === cp.size ? {} : { consistency_to_checkpoint: toCheckpoint.map(b64) }),
      verified: true,
      checkpoint: note,
    };
  }
  const from = readPoint('--from', opts.from as string, verifier, cp);
  const to = opts.to === undefined ? { size: cp.size } : readPoint('--to', opts.to, verifier, cp);
  if (from.size > to.size) throw new SteleError('bad_option', `--from (${from.size}) is larger than --to (${to.size})`);
  const proof = await proveConsistency(reader, from.size, to.size, cp.size);
  // Each end: its signed root when given as a checkpoint, else the authenticated root at that size.
  // A signed root that differs from the tiles' fails here: the log is not the one that signed it.
  const end = async (p: Point) => {
    const r = await rootAt(reader, p.size, cp);
    if (p.root && !p.root.equals(r.root)) {
      throw new SteleError(
        'verify_failed',
        `the signed checkpoint of size ${p.size} has root ${b64(p.root)}, but the log's tree of that size has ${b64(r.root)}: the log forked`,
      );
    }
    return r.root;
  };
  const fromRoot = await end(from);
  const toRoot = await end(to);
  verifyConsistency(from.size, to.size, proof, fromRoot, toRoot);
  return {
    from: from.size,
    to: to.size,
    from_root: b64(fromRoot),
    to_root: b64(toRoot),
    proof: proof.map(b64),
    verified: true,
    checkpoint: note,
    ...(from.note ? { from_checkpoint: from.note } : {}),
    ...(to.note ? { to_checkpoint: to.note } : {}),
  };
}
