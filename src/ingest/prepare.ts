import { SteleError } from '../errors.js';
import { normalizeEvent, validateEvent } from '../event/normalize.js';
import { buildLeaf } from '../event/record.js';
import type { Ingest } from '../event/types.js';
import type { SequencedEntry } from '../log/storage.js';
import { type BodyKind, parseEventsBody } from './body.js';

/** Most events in one append request. */
export const MAX_BATCH_EVENTS = 10_000;

/**
 * Validates, normalises and encodes events into leaves, all or nothing: the first bad event
 * refuses the whole batch with a message naming its position. Pure CPU work, so it can run on an
 * ingest worker thread as well as inline.
 */
export function prepareEvents(inputs: readonly unknown[], ingest: Ingest, received: bigint): SequencedEntry[] {
  if (inputs.length === 0) throw new SteleError('invalid_event', 'no events in the request');
  if (inputs.length > MAX_BATCH_EVENTS) {
    throw new SteleError('too_many_events', `${inputs.length} events in one request; the limit is ${MAX_BATCH_EVENTS}`, 413);
  }
  const entries: SequencedEntry[] = new Array(inputs.length);
  const many = inputs.length > 1;
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i];
    validateEvent(input, many ? i : undefined);
    const event = normalizeEvent(input as Record<string, unknown>, received);
    try {
      entries[i] = { id: event.id, leaf: buildLeaf(event, ingest, received) };
    } catch (err) {
      if (err instanceof SteleError && many) throw new SteleError(err.code, `event ${i}: ${err.message}`, err.status);
      throw err;
    }
  }
  return entries;
}

/** prepareEvents of a request body (one event, an array, or NDJSON). */
export function prepareBody(body: Uint8Array, kind: BodyKind, ingest: Ingest, received: bigint): SequencedEntry[] {
  return prepareEvents(parseEventsBody(body, kind), ingest, received);
}
