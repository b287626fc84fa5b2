import { parseMicros } from './record.js';
import type { Event, Ingest, LeafRecord } from './types.js';

const utf8 = new TextDecoder();

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
  return rowOf(idx, event, Number(parseMicros(leaf.received)), tier, leaf.key ?? null, ingest.principal);
}

/** indexRow from what an entry's writer knows before its leaf exists (receipt time in µs). */
function rowOf(idx: number, event: Event, received: number, tier: string, keyId: string | null, principal: string): IndexRow {
  return {
    idx,
    id: event.id,
    time: Number(parseMicros(event.time)),
    received,
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
    key_id: keyId,
    principal,
  };
}

/**
 * The text full-text search sees: every string and number in the event, object keys of `data`
 * included (so `"package-archives"` finds an event whose data names that variable), one per line.
 * Not the id (`id:` finds it) nor the event time (`since:`/`until:`): its digits made a word such
 * as `12` or `39` match nearly every event, and were 6 of an event's 38 tokens, 14 % of the
 * full-text index (bench:storage-options).
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
      // Keys in sorted order, not the object's own: an event parsed back from its canonical leaf
      // and the same event as its writer built it give the same text (see indexNote).
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o).sort()) {
        if (keys) out.push(k);
        walk(o[k], keys);
      }
    }
  };
  const access = event.action.startsWith('stele.access.');
  const e = event as unknown as Record<string, unknown>;
  for (const k of Object.keys(e).sort())
    if (k !== 'id' && k !== 'time' && !(access && (k === 'data' || k === 'reason'))) walk(e[k], k === 'data');
  return out.join('\n');
}

/**
 * An index note: an entry's row (without its index) and full text, made by the ingest worker that
 * sealed it, so the index thread does not have to open the leaf again (decoding and decrypting a
 * leaf is most of what indexing one costs). It travels with the entry between threads and is never
 * stored: an entry without one (the server's own events, a restart's backlog) is opened from its
 * leaf, which gives the same row and text (src/event/searchable.test.ts checks both ways agree).
 * The log's own events (source stele) get none from prepare (src/ingest/prepare.ts): indexing
 * some of them reads their data (erasureRef).
 */
export function indexNote(event: Event, received: bigint, tier: string, keyId: string | null, principal: string): Buffer {
  return noteOf(entryRow(event, received, tier, keyId, principal), ftsText(event));
}

/** An entry's row (idx 0: not yet sequenced) from what its writer knows. */
export function entryRow(event: Event, received: bigint, tier: string, keyId: string | null, principal: string): IndexRow {
  return rowOf(0, event, Number(received), tier, keyId, principal);
}

/** The index note of a row and its text (indexNote, when both are at hand already). */
export function noteOf(row: IndexRow, text: string): Buffer {
  return Buffer.from(JSON.stringify([...NOTE_FIELDS.map((k) => row[k]), text]));
}

/**
 * Every IndexRow field but idx, in the order a note lists them (then the text) and a query store's
 * columns follow idx.
 */
export const NOTE_FIELDS = [
  'id',
  'time',
  'received',
  'actor',
  'actor_type',
  'on_behalf_of',
  'verified',
  'action',
  'source',
  'host',
  'resource_type',
  'resource_id',
  'outcome',
  'subject',
  'tier',
  'key_id',
  'principal',
] as const satisfies readonly Exclude<keyof IndexRow, 'idx'>[];
// A field added to IndexRow and not to NOTE_FIELDS fails to compile here.
const everyField: [Exclude<keyof IndexRow, 'idx' | (typeof NOTE_FIELDS)[number]>] extends [never] ? true : never = true;
void everyField;

/** The row (at `idx`) and text of an index note. */
export function readNote(idx: number, note: Uint8Array): { row: IndexRow; text: string } {
  const a = JSON.parse(utf8.decode(note)) as unknown[];
  const row: Record<string, unknown> = { idx };
  for (let k = 0; k < NOTE_FIELDS.length; k++) row[NOTE_FIELDS[k] as string] = a[k];
  return { row: row as unknown as IndexRow, text: a[NOTE_FIELDS.length] as string };
}
