import { readFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import { VerifyError, verifyLog } from '../../tlog/verify.js';
import { jsonOnFailure } from '../errors.js';
import { openSource, type SourceOptions, witnessPolicy } from './source.js';

function readSince(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new SteleError('bad_file', `--since: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** `stele verify`: exit 0 only when the whole log checks out; otherwise name the first bad part. */
export async function verifyCommand(opts: SourceOptions & { since?: string; json?: boolean }): Promise<void> {
  // With --json, a failure is printed as {"ok": false, "error"} too (CI reads standard output).
  await jsonOnFailure(opts.json, () => verifyLogCommand(opts));
}

async function verifyLogCommand(opts: SourceOptions & { since?: string; json?: boolean }): Promise<void> {
  const { source, verifier, where } = openSource(opts);
  const witnesses = witnessPolicy(opts);
  const since = opts.since ? readSince(opts.since) : undefined;
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: 'verifying {bar} {percentage}% {value}/{total} entries', stream: process.stderr })
    : null;
  let started = false;
  try {
    const r = await verifyLog(source, verifier, {
      since,
      ...(witnesses ? { witnesses } : {}),
      onProgress: (done, total) => {
        if (!bar) return;
        if (!started) bar.start(total, 0);
        started = true;
        bar.update(done);
      },
    });
    bar?.stop();
    const root = r.checkpoint.root.toString('base64');
    if (opts.json) console.log(JSON.stringify({ ok: true, origin: r.checkpoint.origin, size: r.checkpoint.size, root }));
    else
      console.log(
        `OK: ${where}: ${plural(r.checkpoint.size, 'entry', 'entries')}, root ${root}, every entry and tile verified${since ? ', consistent with the old checkpoint' : ''}${witnesses ? `, cosigned by ${witnesses.quorum} of ${witnesses.witnesses.length} witnesses` : ''}`,
      );
  } catch (err) {
    bar?.stop();
    if (err instanceof VerifyError) throw new SteleError('verify_failed', `verification FAILED: ${err.message}`, { cause: err });
    throw err;
  }
}
