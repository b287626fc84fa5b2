import { eventAt, SteleError } from '../core/errors.js';
import { findUnsafeInteger, mayHoldUnsafeInteger, unsafeIntegerMessage } from './ijson.js';

export type BodyKind = 'json' | 'ndjson';

// ignoreBOM: a byte-order mark stays in the text, so JSON.parse refuses it rather than it vanishing.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The events of a request body: one JSON event, a JSON array of events, or NDJSON (one event per
 * line, blank lines skipped). Bodies arrive as bytes so that invalid UTF-8 is refused instead of
 * silently turned into U+FFFD, which would change what gets signed into the log; likewise integers
 * a double cannot hold are refused (ijson.ts) rather than rounded.
 */
export function parseEventsBody(body: Uint8Array, kind: BodyKind): unknown[] {
  let text: string;
  try {
    text = utf8.decode(body); // checks and decodes in one pass
  } catch {
    throw new SteleError('invalid_utf8', 'the request body is not valid UTF-8');
  }
  if (text.trim() === '') throw new SteleError('invalid_json', 'the request body is empty');
  if (kind === 'json') {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw new SteleError('invalid_json', `the request body is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (mayHoldUnsafeInteger(text)) {
      const u = findUnsafeInteger(text);
      if (u) {
        if (!Array.isArray(v))
          throw new SteleError('unsafe_integer', unsafeIntegerMessage(u), { detail: { pointer: u.pointer } });
        // In an array, place it as the other validation errors do: "event 3: /data/n", the pointer within the event.
        const cut = u.pointer.indexOf('/', 1);
        const pointer = cut < 0 ? '' : u.pointer.slice(cut);
        const event = Number(u.pointer.slice(1, cut < 0 ? undefined : cut));
        throw new SteleError('unsafe_integer', unsafeIntegerMessage(u, pointer), eventAt(event, { pointer }));
      }
    }
    return Array.isArray(v) ? v : [v];
  }
  const scan = mayHoldUnsafeInteger(text);
  const out: unknown[] = [];
  let line = 0;
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    line++;
    const s = text.slice(start, end);
    start = end + 1;
    if (s.trim() === '') continue;
    try {
      out.push(JSON.parse(s));
    } catch (err) {
      throw new SteleError('invalid_json', `line ${line} is not valid JSON: ${(err as Error).message}`, {
        detail: { line },
        cause: err,
      });
    }
    const u = scan && mayHoldUnsafeInteger(s) ? findUnsafeInteger(s) : undefined;
    if (u) {
      throw new SteleError('unsafe_integer', unsafeIntegerMessage(u), {
        at: `line ${line}`,
        detail: { line, pointer: u.pointer },
      });
    }
  }
  if (out.length === 0) throw new SteleError('invalid_json', 'the request body has no events');
  return out;
}
