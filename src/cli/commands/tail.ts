import { SteleError } from '../../core/errors.js';
import { answerError, apiTarget, request } from '../client.js';
import { formatHit } from './search.js';

export interface TailOptions {
  url?: string;
  token?: string;
  dir?: string;
  json?: boolean;
  after?: string;
}

/** One server-sent event: its id and data lines (comments and retry lines are dropped). */
interface Message {
  id?: string;
  event?: string;
  data: string;
}

/** Splits a text/event-stream into messages, as they arrive. */
async function* messages(body: ReadableStream<Uint8Array>): AsyncGenerator<Message> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const m: Message = { data: '' };
      for (const line of block.split('\n')) {
        const at = line.indexOf(':');
        if (at === 0) continue; // a comment (keep-alive)
        const field = at < 0 ? line : line.slice(0, at);
        const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
        if (field === 'id') m.id = value;
        else if (field === 'event') m.event = value;
        else if (field === 'data') m.data += m.data ? `\n${value}` : value;
      }
      if (m.data) yield m;
    }
  }
}

/**
 * `stele tail [query]`: follows GET /v1/stream, printing each matching entry as search does, as
 * it becomes searchable; when the connection drops it reconnects, resuming after the last entry
 * printed (Last-Event-ID), so nothing is shown twice or skipped. An error answer (a bad query, a
 * refusal) ends it with that error.
 */
export async function tailCommand(words: string[], opts: TailOptions): Promise<void> {
  const q = words.join(' ');
  const { url, token } = apiTarget(opts);
  let last = opts.after;
  if (last !== undefined && !/^\d{1,15}$/.test(last))
    throw new SteleError('bad_option', `--after must be an entry index, got "${last}"`);
  for (;;) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (last !== undefined) headers['last-event-id'] = last;
    let res: Response;
    try {
      res = await request(url, `/v1/stream?${new URLSearchParams({ q })}`, { token, headers });
    } catch (err) {
      process.stderr.write(`${(err as Error).message}; retrying in 2 s\n`);
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    if (!res.ok || !res.body) throw answerError(res, await res.text());
    try {
      for await (const m of messages(res.body)) {
        if (m.event !== 'entry') continue;
        const hit = JSON.parse(m.data);
        process.stdout.write(`${opts.json ? JSON.stringify(hit) : formatHit(hit)}\n`);
        if (m.id !== undefined) last = m.id;
      }
    } catch (err) {
      process.stderr.write(`the stream broke (${(err as Error).message}); reconnecting\n`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
