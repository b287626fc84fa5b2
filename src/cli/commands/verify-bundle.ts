import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { SteleError } from '../../errors.js';
import { verifyBundle } from '../../export/bundle.js';
import { jsonOnFailure } from '../json-result.js';

function readError(err: unknown, what: string): SteleError {
  const e = err as NodeJS.ErrnoException;
  const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.message;
  return new SteleError('bad_file', `cannot read ${what}: ${why}`);
}

/**
 * The lines of `input`, read as a stream (a bundle may be far larger than memory). A read error
 * (missing file, a directory, …) is thrown as a SteleError naming the file.
 */
async function* linesOf(input: Readable, what: string): AsyncGenerator<string> {
  let failure: unknown;
  input.once('error', (err) => {
    failure ??= err;
  });
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of rl) yield line;
  } catch (err) {
    throw readError(err, what);
  } finally {
    rl.close();
    if (input !== process.stdin) input.destroy();
  }
  // In case readline ended the lines without passing the error on.
  if (failure !== undefined) throw readError(failure, what);
}

/**
 * `stele verify-bundle <file> [--vkey KEY] [--json]`: checks an evidence bundle offline (every
 * entry's leaf, inclusion proof, event and message key against the signed checkpoint, and the
 * signed export manifest: nothing dropped, added or reordered). `-` reads standard input. Without
 * --vkey the bundle's own key is used and a warning says so: that proves the bundle is
 * consistent, not that it comes from the log you think. With --json the result is printed as
 * JSON whether the bundle verifies (`ok: true`) or not (`ok: false` and the error), and the exit
 * status says which.
 */
export async function verifyBundleCommand(file: string, opts: { vkey?: string; json?: boolean }): Promise<void> {
  const r = await jsonOnFailure(opts.json, () => {
    const stdin = file === '-';
    const input = stdin ? process.stdin : createReadStream(file);
    const what = stdin ? 'standard input' : file;
    return verifyBundle(linesOf(input, what), opts.vkey === undefined ? {} : { vkey: opts.vkey });
  });
  if (!r.trusted) {
    console.error(
      `stele: warning: no --vkey given, so the checkpoint and manifest were checked with the key inside the bundle (${r.vkey}); ` +
        'pass the log key you trust with --vkey',
    );
  }
  if (opts.json) {
    console.log(JSON.stringify({ ok: true, ...r }));
    return;
  }
  const range = r.first === undefined ? '' : r.first === r.last ? ` (index ${r.first})` : ` (indices ${r.first}…${r.last})`;
  const x = r.export;
  console.log(
    `ok: ${r.count} ${r.count === 1 ? 'entry' : 'entries'}${range} of ${r.origin} proven against checkpoint size ${r.size}` +
      (r.trusted ? '' : ' (untrusted key)') +
      `\nexport: complete, signed by the log; asked by ${x.asker.method}:${x.asker.id} at ${x.time}, query ${JSON.stringify(x.query)}; ` +
      `recorded by entries ${x.started} (start) and ${x.record} (manifest sha256 ${x.manifest_sha256})`,
  );
}
