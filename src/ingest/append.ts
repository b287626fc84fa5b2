import { SteleError } from '../errors.js';
import { buildLeaf, nowMicros } from '../event/record.js';
import { normalizeEvent, validateEvent } from '../event/normalize.js';
import type { Event, Ingest } from '../event/types.js';
import type { Log } from '../log/log.js';
import type { SequencedEntry } from '../log/storage.js';

export interface Appended {
  id: string;
  index: number;
}

/** Most events in one append request. */
export const MAX_BATCH_EVENTS = 10_000;

/**
 * The one append operation behind `POST /v1/events` and `stele append`: validate every event,
 * normalise it, build its leaf, then sequence them all. All or nothing: one bad event refuses the
 * whole request before anything is written. Resolves once every entry is durable.
 */
export async function appendEvents(log: Log, inputs: readonly unknown[], ingest: Ingest): Promise<Appended[]> {
  if (inputs.length === 0) throw new SteleError('invalid_event', 'no events in the request');
  if (inputs.length > MAX_BATCH_EVENTS) {
    throw new SteleError('too_many_events', `${inputs.length} events in one request; the limit is ${MAX_BATCH_EVENTS}`, 413);
  }
  const received = nowMicros();
  const entries: SequencedEntry[] = new Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i];
    validateEvent(input, inputs.length > 1 ? i : undefined);
    const event: Event = normalizeEvent(input as Record<string, unknown>, received);
    try {
      entries[i] = { id: event.id, leaf: buildLeaf(event, ingest, received) };
    } catch (err) {
      if (err instanceof SteleError && inputs.length > 1) throw new SteleError(err.code, `event ${i}: ${err.message}`, err.status);
      throw err;
    }
  }
  const indices = await log.append(entries);
  return entries.map((e, i) => ({ id: e.id, index: indices[i] as number }));
}
