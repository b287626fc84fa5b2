import { createWriteStream } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SingleBar } from 'cli-progress';
import { EXPORT_FORMATS, type ExportFormat } from '../../app/export.js';
import { SteleError } from '../../core/errors.js';
import { api, apiTarget } from '../client.js';

export interface ExportOptions {
  url?: string;
  token?: string;
  dir?: string;
  format: string;
  order: string;
  output?: string;
}

/** `stele export [query]`: streams GET /v1/export to a file or standard output, with a progress bar on a terminal. */
export async function exportCommand(words: string[], opts: ExportOptions): Promise<void> {
  const q = words.join(' ');
  if (!EXPORT_FORMATS.includes(opts.format as ExportFormat)) {
    throw new SteleError('bad_option', `--format must be one of ${EXPORT_FORMATS.join(', ')}`);
  }
  if (!['asc', 'desc'].includes(opts.order)) throw new SteleError('bad_option', '--order must be asc or desc');
  const { url, token } = apiTarget(opts);
  const params = new URLSearchParams({ q, format: opts.format, order: opts.order });
  let showBar = process.stderr.isTTY && opts.output !== undefined;
  let total = 0;
  if (showBar) {
    // The count is only for the bar: a policy that decides per entry may refuse to count a large match (422).
    const r = await api<{ total: number }>(url, `/v1/events?${new URLSearchParams({ q, limit: '1', count: 'true' })}`, {
      token,
    }).catch((err: unknown) => {
      if (err instanceof SteleError && err.status === 422) return null;
      throw err;
    });
    if (r) total = r.total;
    else showBar = false;
  }
  const res = await fetch(`${url.replace(/\/+$/, '')}/v1/export?${params}`, {
    headers: { authorization: `Bearer ${token}` },
  }).catch((err: Error) => {
    throw new SteleError('unreachable', `cannot reach ${url}: ${err.cause ?? err.message}`, { cause: err });
  });
  if (!res.ok || !res.body) {
    const text = await res.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { error: { message: string } }).error.message;
    } catch {
      // not JSON: keep the text
    }
    throw new SteleError('export_failed', `${res.status}: ${message}`, { detail: { httpStatus: res.status } });
  }
  const bar = showBar ? new SingleBar({ format: 'export {bar} {value}/{total} entries  {eta_formatted}' }) : null;
  bar?.start(total, 0);
  let lines = 0;
  const counter = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const b of chunk) if (b === 0x0a) lines++;
      bar?.update(Math.min(lines, total));
      done();
    },
  });
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  const sink = opts.output ? createWriteStream(opts.output) : process.stdout;
  body.on('data', (c: Buffer) => counter.write(c));
  await pipeline(body, sink);
  bar?.stop();
  if (opts.output) process.stderr.write(`wrote ${opts.output}\n`);
}
