import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { openStele } from '../../app/stele.js';
import { parseInteger, parsePositiveDuration } from '../../core/config/parse.js';
import { dataDir } from '../../core/config/resolve.js';
import { eventAt, SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import type { Appended } from '../../ingest/append.js';
import { reservedName } from '../../ingest/identity.js';
import { api, NO_TOKEN_MESSAGE, resolveToken, retryOverloaded, serverUrl, waitSearchable } from '../client.js';
import { parseEventsText, readStdin } from '../input.js';

interface AppendOptions {
  file?: string;
  url?: string;
  token?: string;
  tokenFile?: string;
  dir?: string;
  local?: boolean;
  batch: string;
  wait?: boolean;
  waitTimeout: string;
}

/**
 * `stele append`: events go to a server over HTTP (in batches), or with --local straight into a
 * data directory no server has open. Prints one `{"id","index"}` line per event.
 *
 * --wait (read your writes): the server answers each batch once a signed checkpoint covers it (each
 * line then carries its inclusion proof, the checkpoint goes to standard error), and after the
 * last batch the command waits until the highest index appended is searchable, at most
 * --wait-timeout; past it, it says so and exits non-zero, the events being appended all the same.
 * With --local the index is this process's own: it waits for it the same way before closing.
 */
export async function appendCommand(args: string[], opts: AppendOptions): Promise<void> {
  const fromStdin = args.length === 0 && !opts.file;
  if (fromStdin && opts.tokenFile === '-' && !opts.local) {
    throw new SteleError(
      'bad_option',
      '--token-file - reads the token from standard input, so give the events as arguments or --file',
    );
  }
  const events: unknown[] = [];
  for (const [i, a] of args.entries()) events.push(...parseEventsText(a, `argument ${i + 1}`));
  if (opts.file) events.push(...parseEventsText(readFileSync(opts.file, 'utf8'), opts.file));
  if (fromStdin) events.push(...parseEventsText(await readStdin(), 'standard input'));
  if (events.length === 0)
    throw new SteleError('no_events', 'no events to append (give JSON arguments, --file, or standard input)');
  const batch = parseInteger(opts.batch, '--batch', 1);
  const waitMs = parsePositiveDuration(opts.waitTimeout, '--wait-timeout');
  let highest = -1;
  let count = 0;
  const appended = (entries: readonly { index: number }[]) => {
    for (const e of entries) highest = Math.max(highest, e.index);
    count += entries.length;
    print(entries);
  };

  if (opts.local) {
    // The operator holds the data directory, yet still may not write what looks like the
    // server's own record (an erasure, a policy load): those come only from Stele itself.
    refuseReservedInputs(events);
    const stele = await openStele(dataDir(opts.dir));
    try {
      for (let i = 0; i < events.length; i += batch) {
        const done = await stele.append(events.slice(i, i + batch), {
          kind: 'local',
          id: `local:${userInfo().username}`,
          method: 'local',
          groups: [],
          roles: [],
        });
        appended(done);
      }
      if (opts.wait && highest >= 0) {
        await stele.index.whenIndexed(highest + 1, waitMs).catch((err: unknown) => {
          throw notSearchable(
            err,
            count,
            highest,
            waitMs,
            'the query store catches up on them before this directory next serves a search',
          );
        });
      }
    } finally {
      await stele.close();
    }
    return;
  }

  const url = serverUrl(opts.url);
  const token = resolveToken(opts);
  if (!token) throw new SteleError('no_token', NO_TOKEN_MESSAGE);
  for (let i = 0; i < events.length; i += batch) {
    const body = events
      .slice(i, i + batch)
      .map((e) => JSON.stringify(e))
      .join('\n');
    const res = await retryOverloaded(() =>
      api<{ entries: Appended[]; checkpoint?: string }>(url, `/v1/events${opts.wait ? '?wait=checkpoint' : ''}`, {
        method: 'POST',
        token,
        headers: { 'content-type': 'application/x-ndjson' },
        body,
      }),
    );
    appended(res.entries);
    if (res.checkpoint) process.stderr.write(res.checkpoint);
  }
  if (opts.wait && highest >= 0) {
    await waitSearchable(url, token, highest, waitMs).catch((err: unknown) => {
      throw notSearchable(err, count, highest, waitMs, `\`stele search --after ${highest}\` waits for them`);
    });
  }
}

/**
 * The error of a --wait that did not see its entries searchable: the events are appended whatever
 * happened (their lines are printed), so the message says so first, then why the wait failed and
 * what to do (`then`).
 */
function notSearchable(err: unknown, count: number, highest: number, waitMs: number, then: string): unknown {
  if (!(err instanceof SteleError)) return err;
  const done = `${plural(count, 'event is', 'events are')} appended (through entry ${highest})`;
  const through = err.detail?.indexedThrough;
  const why =
    err.code === 'index_behind'
      ? `but entry ${highest} was not searchable within ${waitMs / 1000} s` +
        `${typeof through === 'number' ? ` (only the entries below ${through} were)` : ''}; ${then}`
      : err.code === 'forbidden'
        ? `but --wait cannot tell when they are searchable: this credential may not search (${err.message})`
        : `but waiting until they are searchable failed: ${err.message}`;
  return new SteleError(err.code, `${done}, ${why}`, { ...(err.detail ? { detail: err.detail } : {}), cause: err });
}

function refuseReservedInputs(events: readonly unknown[]): void {
  for (const [i, e] of events.entries()) {
    const ev = e as { action?: unknown; source?: { kind?: unknown } } | null;
    const action = typeof ev?.action === 'string' ? ev.action : '';
    const kind = typeof ev?.source?.kind === 'string' ? ev.source.kind : '';
    const why = reservedName(action, kind);
    if (why) throw new SteleError('reserved', why, eventAt(events.length > 1 ? i : undefined));
  }
}

function print(entries: readonly unknown[]): void {
  process.stdout.write(entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
}
