import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { openStele } from '../../app/stele.js';
import { parseInteger } from '../../core/config/parse.js';
import { dataDir } from '../../core/config/resolve.js';
import { eventAt, SteleError } from '../../core/errors.js';
import type { Appended } from '../../ingest/append.js';
import { reservedName } from '../../ingest/identity.js';
import { api, NO_TOKEN_MESSAGE, resolveToken, retryOverloaded, serverUrl } from '../client.js';
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
}

/**
 * `stele append`: events go to a server over HTTP (in batches), or with --local straight into a
 * data directory no server has open. Prints one `{"id","index"}` line per event.
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
        print(done);
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
    print(res.entries);
    if (res.checkpoint) process.stderr.write(res.checkpoint);
  }
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
