import { join } from 'node:path';
import { readVerifierKey } from '../../app/datadir.js';
import { dataDir } from '../../core/config/resolve.js';
import { SteleError } from '../../core/errors.js';
import { HttpTileSource } from '../../log/http-tile-source.js';
import { DirTileSource } from '../../storage/fs/tile-source.js';
import { type Checkpoint, parseCheckpoint } from '../../tlog/checkpoint.js';
import { newVerifier, openNote, type Verifier } from '../../tlog/note.js';
import type { TileSource } from '../../tlog/verify.js';

export interface SourceOptions {
  dir?: string;
  url?: string;
  vkey?: string;
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
