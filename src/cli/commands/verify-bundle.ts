import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import { type BundleReport, verifyBundle } from '../../export/bundle.js';
import { HttpTileSource } from '../../log/http-tile-source.js';
import { proveConsistency } from '../../log/proofs.js';
import { TreeReader } from '../../log/tree-reader.js';
import { type Certificate, certificatesFromPem } from '../../timestamp/rfc3161.js';
import { decodeBase64Strict } from '../../tlog/base64.js';
import { parseCheckpoint } from '../../tlog/checkpoint.js';
import { newVerifier, openNote } from '../../tlog/note.js';
import { verifyConsistency } from '../../tlog/proof.js';
import { jsonOnFailure } from '../errors.js';

/**
 * With --url: the live log (its latest checkpoint, signed by the trusted key) still extends the
 * checkpoint the bundle's export record is proven in — so the log has not been forked or rolled
 * back since it handed out the bundle, and still holds the entries that record the export.
 */
async function checkLive(url: string, vkey: string, r: BundleReport): Promise<{ url: string; size: number }> {
  const source = new HttpTileSource(`${url.replace(/\/+$/, '')}/log`);
  const note = await source.readCheckpoint().catch((err: Error) => {
    throw new SteleError('unreachable', `cannot read ${url}/log/checkpoint: ${err.message}`, { cause: err });
  });
  if (note === null) throw new SteleError('verify_failed', `${url} has no checkpoint`);
  let latest: ReturnType<typeof parseCheckpoint>;
  try {
    latest = parseCheckpoint(openNote(note, [newVerifier(vkey)]).text);
  } catch (err) {
    throw new SteleError(
      'verify_failed',
      `the checkpoint of ${url} does not verify with the trusted key: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const at = { size: r.export.record_checkpoint_size, root: decodeBase64Strict(r.export.record_checkpoint_root) as Buffer };
  if (latest.origin !== r.origin) throw new SteleError('verify_failed', `${url} serves ${latest.origin}, not ${r.origin}`);
  if (latest.size < at.size) {
    throw new SteleError(
      'verify_failed',
      `${url} has ${plural(latest.size, 'entry', 'entries')}, fewer than the checkpoint the bundle's record is proven in (${at.size}): the log rolled back`,
    );
  }
  try {
    const proof = await proveConsistency(new TreeReader(source), at.size, latest.size, latest.size);
    verifyConsistency(at.size, latest.size, proof, at.root, latest.root);
  } catch (err) {
    throw new SteleError(
      'verify_failed',
      `the log at ${url} (size ${latest.size}) does not extend the bundle's checkpoint of size ${at.size}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return { url, size: latest.size };
}

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
 * `stele verify-bundle <file> [--vkey KEY [--url URL]] [--json]`: checks an evidence bundle offline (every
 * entry's leaf, inclusion proof, event and message key against the signed checkpoint, and the
 * signed export manifest: nothing dropped, added or reordered). `-` reads standard input. Without
 * --vkey the bundle's own key is used and a warning says so: that proves the bundle is
 * consistent, not that it comes from the log you think. With --url (and --vkey), also checks
 * that the live log still extends the bundle's checkpoints (checkLive). With --json the result is printed as
 * JSON whether the bundle verifies (`ok: true`) or not (`ok: false` and the error), and the exit
 * status says which.
 */
export async function verifyBundleCommand(
  file: string,
  opts: { vkey?: string; url?: string; tsaCa?: string; json?: boolean },
): Promise<void> {
  let live: { url: string; size: number } | undefined;
  const r = await jsonOnFailure(opts.json, async () => {
    if (opts.url !== undefined && opts.vkey === undefined) {
      throw new SteleError('bad_option', '--url needs --vkey: the verifier key must come from somewhere other than the server');
    }
    const stdin = file === '-';
    const input = stdin ? process.stdin : createReadStream(file);
    const what = stdin ? 'standard input' : file;
    const tsaCerts = opts.tsaCa === undefined ? undefined : readTsaCerts(opts.tsaCa);
    const report = await verifyBundle(linesOf(input, what), {
      ...(opts.vkey === undefined ? {} : { vkey: opts.vkey }),
      ...(tsaCerts ? { tsaCerts } : {}),
    });
    if (tsaCerts && report.timestamps.length === 0)
      throw new SteleError('bundle_invalid', '--tsa-ca given, but the bundle carries no timestamp');
    if (opts.url !== undefined) live = await checkLive(opts.url, opts.vkey as string, report);
    return report;
  });
  if (!r.trusted) {
    console.error(
      `stele: warning: no --vkey given, so the checkpoint and manifest were checked with the key inside the bundle (${r.vkey}); ` +
        'pass the log key you trust with --vkey',
    );
  }
  if (opts.json) {
    console.log(JSON.stringify({ ok: true, ...r, ...(live ? { live } : {}) }));
    return;
  }
  const range = r.first === undefined ? '' : r.first === r.last ? ` (index ${r.first})` : ` (indices ${r.first}…${r.last})`;
  const x = r.export;
  console.log(
    `ok: ${r.count} ${r.count === 1 ? 'entry' : 'entries'}${range} of ${r.origin} proven against checkpoint size ${r.size}` +
      (r.gaps > 0 ? `, ${r.gaps} of them expired or erased (proven leaf, no event)` : '') +
      (r.trusted ? '' : ' (untrusted key)') +
      `\nexport: complete, signed by the log; asked by ${x.asker.method}:${x.asker.id} at ${x.time}, query ${JSON.stringify(x.query)}; ` +
      `recorded by entries ${x.started} (start) and ${x.record} (manifest sha256 ${x.manifest_sha256})` +
      (live ? `\nlive: ${live.url} (size ${live.size}) extends the checkpoint the record is proven in` : '') +
      r.timestamps
        .map(
          (t) =>
            `\ntimestamp: ${t.tsa} says the first ${t.size} entries existed by ${t.gen_time}` +
            (t.verified ? ' (token verified against --tsa-ca)' : ' (token not checked: give --tsa-ca)'),
        )
        .join(''),
  );
}

/** The trusted TSA certificates of --tsa-ca (PEM, one or several). */
function readTsaCerts(file: string): Certificate[] {
  try {
    return certificatesFromPem(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SteleError('bad_file', `--tsa-ca ${file}: ${(err as Error).message}`, { cause: err });
  }
}
