import { readFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { processEnv } from '../../core/config/env.js';
import { parseInteger } from '../../core/config/parse.js';
import { SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import type { Appended } from '../../ingest/append.js';
import { cloudtrailEvent } from '../../sources/cloudtrail.js';
import { defaultStatePath, findLogFiles, ImportState, type LogFile, parseLogFile } from '../../sources/cloudtrail-files.js';
import { api, apiTarget, out } from '../client.js';

export interface ImportCloudTrailOptions {
  url?: string;
  token?: string;
  tokenFile?: string;
  dir?: string;
  batch: string;
  state?: string;
  force?: boolean;
  retries: string;
  json?: boolean;
}

/** Largest request body the import sends (the server's default limit is 16 MiB). */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Requests in flight at once. */
const PIPELINE = 2;

interface Progress {
  file: LogFile;
  events: number;
  malformed: number;
  /** Events sent or queued, not yet acknowledged. */
  unacked: number;
  read: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Reads each file, maps its records (src/sources/cloudtrail.ts) and appends them through
 * POST /v1/events in batches that may span files; a file is journalled as finished once every one
 * of its events is acknowledged (durable). Malformed records are reported and left out; the
 * command then exits non-zero after importing everything else.
 */
export async function importCloudTrailCommand(paths: string[], opts: ImportCloudTrailOptions): Promise<void> {
  const { url, token } = apiTarget(opts);
  const batchSize = parseInteger(opts.batch, '--batch', 1);
  const retries = parseInteger(opts.retries, '--retries', 0);
  const found = findLogFiles(paths);
  const state = new ImportState(opts.state ?? defaultStatePath(url, processEnv()));
  const todo = opts.force ? found.files : found.files.filter((f) => !state.isDone(f));
  const summary = {
    files: found.files.length,
    imported_files: 0,
    skipped_files: found.files.length - todo.length,
    events: 0,
    malformed_records: 0,
    unreadable_files: 0,
    digest_files: found.digests,
    state: state.path,
  };
  const problems: string[] = [];
  const bar =
    process.stderr.isTTY && !opts.json
      ? new SingleBar({ format: 'cloudtrail {bar} {value}/{total} files | {events} events | ETA {eta_formatted}', etaBuffer: 50 })
      : null;
  bar?.start(todo.length, 0, { events: 0 });
  const report = (msg: string) => {
    problems.push(msg);
    if (!bar) process.stderr.write(`${msg}\n`); // with a bar, listed once it stops
  };

  const finish = (p: Progress) => {
    state.markDone({ ...p.file, events: p.events, malformed: p.malformed });
    summary.imported_files++;
    bar?.increment(1, { events: summary.events });
  };

  let lines: string[] = [];
  let bytes = 0;
  let owners = new Map<Progress, number>();
  // Up to PIPELINE requests in flight, so reading and mapping the next batch overlaps the server's work.
  const inflight: Promise<void>[] = [];
  let failure: unknown;
  const flush = async () => {
    if (failure) throw failure;
    if (lines.length === 0) return;
    const body = lines.join('\n');
    const batch = owners;
    const n = lines.length;
    lines = [];
    bytes = 0;
    owners = new Map();
    const sent = send(url, token, body, retries, () => `${summary.imported_files} of ${todo.length} files were imported`).then(
      () => {
        summary.events += n;
        for (const [p, k] of batch) {
          p.unacked -= k;
          if (p.read && p.unacked === 0) finish(p);
        }
        bar?.update({ events: summary.events });
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    inflight.push(sent);
    if (inflight.length >= PIPELINE) await inflight.shift();
    if (failure) throw failure;
  };

  try {
    for (const file of todo) {
      let content: ReturnType<typeof parseLogFile>;
      try {
        content = parseLogFile(readFileSync(file.path), file.path);
      } catch (err) {
        if (!(err instanceof SteleError) && (err as NodeJS.ErrnoException).code === undefined) throw err;
        summary.unreadable_files++;
        report(err instanceof SteleError ? err.message : `${file.path}: ${(err as Error).message}`);
        continue;
      }
      if (content.kind === 'digest') {
        summary.digest_files++;
        continue;
      }
      const p: Progress = { file, events: 0, malformed: 0, unacked: 0, read: false };
      for (let i = 0; i < content.records.length; i++) {
        let line: string;
        try {
          line = JSON.stringify(cloudtrailEvent(content.records[i], `Records[${i}]`, { agent: 'cloudtrail' }));
        } catch (err) {
          if (!(err instanceof SteleError)) throw err;
          p.malformed++;
          summary.malformed_records++;
          report(`${file.path}: ${err.message}`);
          continue;
        }
        if (lines.length >= batchSize || (lines.length > 0 && bytes + line.length > MAX_REQUEST_BYTES)) await flush();
        lines.push(line);
        bytes += line.length + 1;
        owners.set(p, (owners.get(p) ?? 0) + 1);
        p.unacked++;
        p.events++;
      }
      p.read = true;
      if (p.unacked === 0) finish(p);
    }
    await flush();
    await Promise.all(inflight);
    if (failure) throw failure;
  } finally {
    if (bar) {
      bar.stop();
      for (const p of problems) process.stderr.write(`${p}\n`);
    }
  }

  if (opts.json) out(summary);
  else {
    const skipped = summary.skipped_files ? `; ${summary.skipped_files} files skipped, imported before` : '';
    process.stdout.write(
      `imported ${plural(summary.events, 'event')} from ${plural(summary.imported_files, 'file')} into ${url}${skipped} (journal: ${state.path})\n`,
    );
  }
  if (problems.length > 0) {
    throw new SteleError(
      'import_incomplete',
      `${summary.malformed_records} malformed records and ${summary.unreadable_files} unreadable files were left out (listed above)`,
    );
  }
}

/** POSTs one NDJSON batch, retrying what may pass later (unreachable, 5xx, 429) with exponential backoff. */
async function send(url: string, token: string, body: string, retries: number, done: () => string): Promise<Appended[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await api<{ entries: Appended[] }>(url, '/v1/events', {
        method: 'POST',
        token,
        headers: { 'content-type': 'application/x-ndjson' },
        body,
      });
      return res.entries;
    } catch (err) {
      if (!(err instanceof SteleError)) throw err;
      const status = typeof err.detail?.httpStatus === 'number' ? err.detail.httpStatus : err.status;
      const transient = err.code === 'unreachable' || status >= 500 || status === 429;
      if (transient && attempt < retries) {
        await sleep(Math.min(30_000, 1000 * 2 ** attempt));
        continue;
      }
      throw new SteleError(
        err.code,
        `${err.message}\n${done()}; run the same command again to resume (files already imported are skipped)`,
        { ...(err.detail ? { detail: err.detail } : {}), cause: err },
      );
    }
  }
}
