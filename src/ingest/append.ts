import { nowMicros } from '../event/record.js';
import type { Ingest } from '../event/types.js';
import type { Log } from '../log/log.js';
import type { SequencedEntry } from '../log/storage.js';
import type { BodyKind } from './body.js';
import type { IngestPool } from './pool.js';

/** What appends wait on before sequencing: the query store's backlog (IndexThread.room). */
export interface Pace {
  room(): Promise<void> | undefined;
}

export interface Appended {
  id: string;
  index: number;
}

/**
 * The append operation, behind `stele append --local` and self-audit events (parsed events) and `POST /v1/events`
 * (request bytes, prepared on the ingest pool). Validation is all or nothing and happens before
 * anything is written; each resolves once every entry is durable, with indices in input order.
 */
export async function appendEvents(
  log: Log,
  pace: Pace,
  pool: IngestPool,
  inputs: readonly unknown[],
  ingest: Ingest,
): Promise<Appended[]> {
  return sequence(log, pace, await pool.prepareParsed(inputs, ingest, nowMicros()));
}

export async function appendBody(
  log: Log,
  pace: Pace,
  pool: IngestPool,
  body: Uint8Array,
  kind: BodyKind,
  ingest: Ingest,
): Promise<Appended[]> {
  return sequence(log, pace, await pool.prepare(body, kind, ingest, nowMicros()));
}

async function sequence(log: Log, pace: Pace, entries: SequencedEntry[]): Promise<Appended[]> {
  await pace.room();
  const indices = await log.append(entries);
  return entries.map((e, i) => ({ id: e.id, index: indices[i] as number }));
}
