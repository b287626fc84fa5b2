import { join } from 'node:path';
import { readVerifierKey } from '../../app/datadir.js';
import { dataDir } from '../../core/config/resolve.js';
import { SteleError } from '../../core/errors.js';
import { HttpTileSource } from '../../log/http-tile-source.js';
import { DirTileSource } from '../../storage/fs/tile-source.js';
import { type Checkpoint, parseCheckpoint } from '../../tlog/checkpoint.js';
import { newCosignatureVerifier, type WitnessPolicy } from '../../tlog/cosignature.js';
import { newVerifier, openNote, type Verifier } from '../../tlog/note.js';
import type { TileSource } from '../../tlog/verify.js';

export interface SourceOptions {
  dir?: string;
  url?: string;
  vkey?: string;
  /** Witness verifier keys whose cosignatures the checkpoint must carry (--witness, repeated). */
  witness?: string[];
  /** How many of them (--witness-quorum; default: all). */
  witnessQuorum?: string;
}

/** The witnesses a verifying command requires (--witness, --witness-quorum), or undefined. */
export function witnessPolicy(opts: SourceOptions): WitnessPolicy | undefined {
  const keys = opts.witness ?? [];
  if (keys.length === 0) {
    if (opts.witnessQuorum !== undefined) throw new SteleError('bad_option', '--witness-quorum needs --witness');
    return undefined;
  }
  const witnesses = keys.map((k) => {
    try {
      return newCosignatureVerifier(k, () => Math.floor(Date.now() / 1000) + 600);
    } catch (err) {
      throw new SteleError('bad_vkey', `--witness: ${(err as Error).message}`, { cause: err });
    }
  });
  const quorum = opts.witnessQuorum === undefined ? witnesses.length : Number(opts.witnessQuorum);
  if (!Number.isInteger(quorum) || quorum < 1 || quorum > witnesses.length)
    throw new SteleError(
      'bad_option',
      `--witness-quorum must be 1 to ${witnesses.length} (the witnesses given), got "${opts.witnessQuorum}"`,
    );
  return { witnesses, quorum };
}

/** The log a read-only command looks at: a data directory's files, or a server's /log/ API. */
export function openSource(opts: SourceOptions): { source: TileSource; verifier: Verifier; where: string } {
  if (opts.url && opts.dir) throw new SteleError('bad_option', 'give --url or --dir, not both');
  if (opts.url) {
    if (!opts.vkey)
      throw new SteleError('bad_option', '--url needs --vkey: the verifier key must come from somewhere other than the server');
    return { source: new HttpTileSource(`${opts.url.replace(/\/+$/, '')}/log`), verifier: parseVkey(opts.vkey), where: opts.url };
  }
  const dir = dataDir(opts.dir);
  const vkey = opts.vkey ?? readVerifierKey(dir);
  return { source: new DirTileSource(join(dir, 'log')), verifier: parseVkey(vkey), where: dir };
}

function parseVkey(vkey: string): Verifier {
  try {
    return newVerifier(vkey);
  } catch (err) {
    throw new SteleError('bad_vkey', `--vkey: ${(err as Error).message}`, { cause: err });
  }
}

/** The source's checkpoint note and its parsed body, after checking the signature. */
export async function readVerifiedCheckpoint(
  source: TileSource,
  verifier: Verifier,
): Promise<{ note: string; checkpoint: Checkpoint }> {
  const note = await source.readCheckpoint();
  if (!note) throw new SteleError('no_checkpoint', 'the log has no checkpoint');
  try {
    return { note, checkpoint: parseCheckpoint(openNote(note, [verifier]).text) };
  } catch (err) {
    throw new SteleError('bad_checkpoint', `the checkpoint does not verify: ${(err as Error).message}`, { cause: err });
  }
}
