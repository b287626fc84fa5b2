import { SteleError } from '../core/errors.js';
import { checkIntegers } from '../ingest/ijson.js';

/**
 * Events from text: a JSON object, a JSON array, or NDJSON (one event per line). Errors name the
 * line, so a bad line in a million-line file can be found.
 */
export function parseEventsText(text: string, what: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  try {
    const v = JSON.parse(trimmed) as unknown;
    // Sent re-serialised: an integer a double cannot hold would reach the server already rounded.
    checkIntegers(trimmed, `${what}: `);
    return Array.isArray(v) ? v : [v];
  } catch (err) {
    if (err instanceof SteleError) throw err;
    // not a single JSON value: read it as NDJSON
  }
  const out: unknown[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch (err) {
      throw new SteleError('invalid_json', `${what}, line ${i + 1}: not valid JSON (${(err as Error).message})`, { cause: err });
    }
    checkIntegers(line, `${what}, line ${i + 1}: `);
  }
  return out;
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
