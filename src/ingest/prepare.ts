import { performance } from 'node:perf_hooks';
import type { Claim } from '../core/claim.js';
import { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { ingestOf } from '../core/principal.js';
import { normalizeEvent, validateEvent } from '../event/normalize.js';
import { entryRow, ftsText, type IndexRow, noteOf } from '../event/searchable.js';
import type { Event } from '../event/types.js';
import type { RuleHit, RuleMatcher } from '../index/alert-rules.js';
import { utcDay } from '../keys/keystore.js';
import type { SequencedEntry } from '../log/storage.js';
import { type BodyKind, parseEventsBody } from './body.js';
import { applyIdentity } from './identity.js';
import type { Sealing } from './sealing.js';

/**
 * Prepared entries, the data keys that sealed them (checked against erasure before sequencing),
 * and what the principal must be allowed to do for them to be appended (see identity.ts).
 */
export interface Prepared {
  entries: SequencedEntry[];
  keyIds: string[];
  claims: Claim[];
  /** The alert rules the entries matched (when rules were given), and the time testing them took. */
  hits?: RuleHit[];
  ruleSeconds?: number;
}

/** Most events in one append request. */
export const MAX_BATCH_EVENTS = 10_000;

/**
 * Validates, normalises and encodes events into leaves (sealed as the policy says), with their
 * index notes when `notes` (event/searchable.ts) and the alert rules they match when `rules`, all or
 * nothing: the first bad event refuses the whole batch with a message naming its position. CPU
 * work apart from fetching a data key the first time a slot is used, so it runs on an ingest
 * worker thread as well as inline.
 */
export async function prepareEvents(
  inputs: readonly unknown[],
  principal: Principal,
  received: bigint,
  sealing: Sealing,
  notes = true,
  rules: RuleMatcher | null = null,
): Promise<Prepared> {
  if (inputs.length === 0) throw new SteleError('invalid_event', 'no events in the request');
  if (inputs.length > MAX_BATCH_EVENTS) {
    throw new SteleError('too_many_events', `${inputs.length} events in one request; the limit is ${MAX_BATCH_EVENTS}`);
  }
  const events: Event[] = new Array(inputs.length);
  // Which events' time the server fills in: the content digest leaves that time out.
  const timeDefaulted: boolean[] = new Array(inputs.length);
  const many = inputs.length > 1;
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i];
    validateEvent(input, many ? i : undefined);
    timeDefaulted[i] = typeof (input as { time?: unknown }).time !== 'string';
    events[i] = normalizeEvent(input as Record<string, unknown>, received);
  }
  const claims = applyIdentity(events, principal);
  const ingest = ingestOf(principal);
  const { leaves, digests, keyIds, tiers, keyOf } = await sealing.leaves(
    events,
    ingest,
    received,
    utcDay(received),
    timeDefaulted,
  );
  const testRules = rules !== null && !rules.empty;
  const entries: SequencedEntry[] = new Array(events.length);
  const searchable: [IndexRow, string][] = testRules ? new Array(events.length) : [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as Event;
    const entry: SequencedEntry = { id: e.id, leaf: leaves[i] as Buffer, digest: digests[i] as Buffer };
    if (notes || testRules) {
      const row = entryRow(e, received, tiers[i] as string, keyOf[i] ?? null, ingest.principal);
      const text = ftsText(e);
      // The log's own events are indexed from their leaves: some are read for their data (erasureRef).
      if (notes && e.source.kind !== 'stele') entry.note = noteOf(row, text);
      if (testRules) searchable[i] = [row, text];
    }
    entries[i] = entry;
  }
  if (!testRules) return { entries, keyIds, claims };
  const hits: RuleHit[] = [];
  const t0 = performance.now();
  for (let i = 0; i < searchable.length; i++) {
    const [row, text] = searchable[i] as [IndexRow, string];
    rules.match(i, row, text, principal, hits);
  }
  return { entries, keyIds, claims, hits, ruleSeconds: (performance.now() - t0) / 1000 };
}

/** prepareEvents of a request body (one event, an array, or NDJSON). */
export function prepareBody(
  body: Uint8Array,
  kind: BodyKind,
  principal: Principal,
  received: bigint,
  sealing: Sealing,
  notes = true,
  rules: RuleMatcher | null = null,
): Promise<Prepared> {
  return prepareEvents(parseEventsBody(body, kind), principal, received, sealing, notes, rules);
}
