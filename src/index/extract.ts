import { parseMicros } from '../event/record.js';
import type { Event, Ingest, LeafRecord } from '../event/types.js';

/** One `entries` row (see schema.ts). */
export interface IndexRow {
  idx: number;
  id: string;
  time: number;
  received: number;
  actor: string;
  actor_type: string;
  on_behalf_of: string | null;
  verified: number;
  action: string;
  source: string;
  host: string | null;
  resource_type: string | null;
  resource_id: string | null;
  outcome: string;
  subject: string | null;
  tier: string;
  key_id: string | null;
  principal: string;
}

/** The searchable fields of an entry; `ingest` is the opened entry's (a v2 sealed leaf seals it). */
export function indexRow(idx: number, leaf: LeafRecord, event: Event, tier: string, ingest: Ingest): IndexRow {
  return {
    idx,
    id: event.id,
    time: Number(parseMicros(event.time)),
    received: Number(parseMicros(leaf.received)),
    actor: event.actor.id,
    actor_type: event.actor.type,
    on_behalf_of: event.actor.on_behalf_of ?? null,
    verified: event.actor.verified ? 1 : 0,
    action: event.action,
    source: event.source.kind,
    host: event.source.host ?? null,
    resource_type: event.resource?.type ?? null,
    resource_id: event.resource?.id ?? null,
    outcome: event.outcome,
    subject: event.subject ?? null,
    tier,
    key_id: leaf.key ?? null,
    principal: ingest.principal,
  };
}

/**
 * The text full-text search sees: every string and number in the event, object keys of `data`
 * included (so `"package-archives"` finds an event whose data names that variable), one per line.
 * The `data` of the log's own access records (stele.access.*: the queries people ran) is left
 * out: otherwise every search would find the records of earlier searches for the same words, and
 * a query naming an erased subject would put that name back into the index. Those records are
 * found by their fields (`action:stele.access.search actor:alice`) and read in full.
 */
export function ftsText(event: Event): string {
  const out: string[] = [];
  const walk = (v: unknown, keys: boolean): void => {
    if (typeof v === 'string') out.push(v);
    else if (typeof v === 'number' || typeof v === 'boolean') out.push(String(v));
    else if (Array.isArray(v)) for (const x of v) walk(x, keys);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (keys) out.push(k);
        walk(x, keys);
      }
    }
  };
  const access = event.action.startsWith('stele.access.');
  for (const [k, v] of Object.entries(event))
    if (k !== 'id' && !(access && (k === 'data' || k === 'reason'))) walk(v, k === 'data');
  return out.join('\n');
}
