import { existsSync, readFileSync } from 'node:fs';
import { writeDurably } from '../../core/durable.js';
import { parseDuration } from '../../core/duration.js';
import { SteleError } from '../../core/errors.js';
import { VerifyError, verifyLog } from '../../tlog/verify.js';
import { api, NO_TOKEN_MESSAGE, resolveToken } from '../client.js';
import { openSource, type SourceOptions, witnessPolicy } from './source.js';

export interface MonitorOptions extends SourceOptions {
  state?: string;
  interval: string;
  fullEvery: string;
  once?: boolean;
  json?: boolean;
  /** A Stele server to record each run in (POST /v1/validations). */
  report?: string;
  token?: string;
  tokenFile?: string;
}

/** One verification's outcome, as a line of output. */
interface Run {
  ok: boolean;
  kind: 'full' | 'incremental';
  at: string;
  size?: number;
  root?: string;
  seconds: number;
  error?: string;
}

function duration(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new SteleError('bad_option', `${flag}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * `stele monitor`: watches a log from outside (a server's URL, an S3 mirror, a data directory) and
 * keeps verifying it: at start in full (consistent with the checkpoint it last verified, kept in
 * --state across restarts, so a rollback or fork while it was down is caught); then each new
 * checkpoint, checking only the entries and tiles past the last verified one and that they extend
 * it; and in full again every --full-every. Each run prints one line (or JSON); a failed one
 * starts with ALERT on standard error and keeps the last good checkpoint, so every later run fails
 * too until the log is what it signed. With --once: one full run, exit 0 or 1. With --report URL,
 * each verification is also recorded in that server's log (a stele.validation.run event by the
 * monitor's key), where the policy's alert rules see it.
 */
export async function monitorCommand(opts: MonitorOptions): Promise<void> {
  const { source, verifier, where } = openSource(opts);
  const witnesses = witnessPolicy(opts);
  const intervalMs = duration('--interval', opts.interval);
  const fullMs = duration('--full-every', opts.fullEvery);
  let last: string | undefined = opts.state && existsSync(opts.state) ? readFileSync(opts.state, 'utf8') : undefined;
  let lastFull = 0;
  const reportTo = opts.report;
  const token = reportTo ? resolveToken(opts) : undefined;
  if (reportTo && !token) throw new SteleError('no_token', NO_TOKEN_MESSAGE);
  /** Records a verification (not a log it could not read) in the --report server's log; a failure to do so is said, not fatal. */
  const record = async (r: Run) => {
    if (!reportTo) return;
    try {
      await api(reportTo, '/v1/validations', {
        method: 'POST',
        token: token as string,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          ok: r.ok,
          kind: r.kind,
          where,
          seconds: r.seconds,
          ...(r.size === undefined ? {} : { size: r.size }),
          ...(r.root === undefined ? {} : { root: r.root }),
          ...(r.error === undefined ? {} : { error: r.error }),
        }),
      });
    } catch (err) {
      process.stderr.write(`stele monitor: could not record the run at ${reportTo}: ${(err as Error).message}\n`);
    }
  };
  const report = async (r: Run, verified: boolean) => {
    if (opts.json) process.stdout.write(`${JSON.stringify({ where, ...r })}\n`);
    else if (r.ok)
      process.stdout.write(`OK ${r.at} ${where}: ${r.kind}, size ${r.size}, root ${r.root} (${r.seconds.toFixed(2)} s)\n`);
    if (!r.ok) process.stderr.write(`ALERT ${r.at} ${where}: ${r.kind} verification FAILED: ${r.error}\n`);
    if (verified) await record(r);
  };
  for (;;) {
    const full = last === undefined || Date.now() - lastFull >= fullMs;
    const t0 = performance.now();
    const at = new Date().toISOString();
    const kind = full ? 'full' : 'incremental';
    try {
      const note = await source.readCheckpoint();
      if (full || note !== last) {
        const r = await verifyLog(source, verifier, {
          ...(last ? { since: last } : {}),
          ...(full ? {} : { resume: true }),
          ...(witnesses ? { witnesses } : {}),
        });
        if (full) lastFull = Date.now();
        // Kept before it is reported: a reported checkpoint survives a restart of the monitor.
        if (r.note !== last) {
          last = r.note;
          if (opts.state) await writeDurably(opts.state, r.note);
        }
        const seconds = (performance.now() - t0) / 1000;
        await report({ ok: true, kind, at, size: r.checkpoint.size, root: r.checkpoint.root.toString('base64'), seconds }, true);
      }
    } catch (err) {
      // Not reachable is not a failed verification: the next run tries again.
      const failed = err instanceof VerifyError;
      await report(
        {
          ok: false,
          kind,
          at,
          seconds: (performance.now() - t0) / 1000,
          error: `${failed ? '' : 'cannot read the log: '}${(err as Error).message}`,
        },
        failed,
      );
      if (opts.once) process.exit(1);
    }
    if (opts.once) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
