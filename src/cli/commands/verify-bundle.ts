import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { SteleError } from '../../errors.js';
import { verifyBundle } from '../../export/bundle.js';

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
 * entry's leaf, inclusion proof, event and message key against the signed checkpoint). `-` reads
 * standard input. Without --vkey the bundle's own key is used and a warning says so: that proves
 * the bundle is consistent, not that it comes from the log you think.
 */
export async function verifyBundleCommand(file: string, opts: { vkey?: string; json?: boolean }): Promise<void> {
  const stdin = file === '-';
  const input = stdin ? process.stdin : createReadStream(file);
  const what = stdin ? 'standard input' : file;
  const r = await verifyBundle(linesOf(input, what), opts.vkey === undefined ? {} : { vkey: opts.vkey });
  if (!r.trusted) {
    console.error(
      `stele: warning: no --vkey given, so the checkpoint was checked with the key inside the bundle (${r.vkey}); ` +
        'pass the log key you trust with --vkey',
    );
  }
  if (opts.json) {
    console.log(JSON.stringify({ ok: true, ...r }));
    return;
  }
  const range = r.first === undefined ? '' : r.first === r.last ? ` (index ${r.first})` : ` (indices ${r.first}…${r.last})`;
  console.log(
    `ok: ${r.count} ${r.count === 1 ? 'entry' : 'entries'}${range} of ${r.origin} proven against checkpoint size ${r.size}` +
      (r.gaps > 0 ? `, ${r.gaps} of them expired or erased (proven leaf, no event)` : '') +
      (r.trusted ? '' : ' (untrusted key)'),
  );
}
