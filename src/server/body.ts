import { isUtf8 } from 'node:buffer';
import { SteleError } from '../errors.js';

/**
 * Request bodies arrive as bytes so that invalid UTF-8 is refused instead of silently turned into
 * U+FFFD (which would change what gets signed into the log).
 */
function text(body: Buffer): string {
  if (!isUtf8(body)) throw new SteleError('invalid_utf8', 'the request body is not valid UTF-8');
  return body.toString('utf8');
}

export function parseJsonBody(body: Buffer): unknown {
  const s = text(body);
  if (s.trim() === '') throw new SteleError('invalid_json', 'the request body is empty');
  try {
    return JSON.parse(s);
  } catch (err) {
    throw new SteleError('invalid_json', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** NDJSON: one JSON value per line; blank lines are skipped. */
export function parseNdjsonBody(body: Buffer): unknown[] {
  const lines = text(body).split('\n');
  const out: unknown[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch (err) {
      throw new SteleError('invalid_json', `line ${i + 1} is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (out.length === 0) throw new SteleError('invalid_json', 'the request body has no events');
  return out;
}

/** A body of one event, an array of events, or NDJSON (already an array) as a list of events. */
export function eventsOf(body: unknown): unknown[] {
  return Array.isArray(body) ? body : [body];
}
