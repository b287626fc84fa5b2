/**
 * Plain export formats of search hits: JSON Lines and CSV. (The verifiable export, the evidence
 * bundle, is bundle.ts.)
 *
 * CSV follows RFC 4180: records end in CRLF, and a field containing a comma, a double quote, CR or
 * LF is enclosed in double quotes with its double quotes doubled. Because audit data is written by
 * whoever sends events, and CSV files are opened in spreadsheets, every cell is also guarded
 * against formula injection (OWASP "CSV Injection"; ASVS 1.2.10): a cell whose first character is
 * `=`, `+`, `-`, `@`, TAB, CR (or NUL) gets a leading `'`, which spreadsheets take as "this is
 * text". The guard changes the data: `-5` in a text column is exported as `'-5`. Use JSON Lines
 * (or the evidence bundle) when exact values matter; CSV is for reading in a spreadsheet.
 */
import type { Event } from '../event/types.js';

/** One exported hit: the entry's place in the log, its leaf's metadata, and the (decrypted) event. */
export interface ExportedEntry {
  index: number;
  /** The leaf's `received` (server receipt time). */
  received: string;
  ingest: { principal: string; method: string };
  /** The retention tier the event belongs to. */
  tier: string;
  /** The data key id, when the leaf is sealed. */
  key?: string;
  /** The event, decrypted. */
  event: Event;
}

/**
 * An exported gap: an entry whose data key was destroyed, with nothing of what it said (the shape of
 * the index's WireGap without its leaf; export sits below index, so it is spelled out here).
 */
export interface ExportedGap {
  kind: 'gap';
  index: number;
  received: string;
  tier: string;
  state: 'expired' | 'erased';
  /** Index of the stele.erasure / stele.retention.run entry that destroyed its key, when known. */
  erasure?: number;
}

const isGap = (e: ExportedEntry | ExportedGap): e is ExportedGap => 'kind' in e && e.kind === 'gap';

/**
 * One JSON object per line, ending in '\n': index, received, ingest, tier, key (when sealed), event;
 * for a gap index, received, tier, state ("expired"/"erased") and erasure (when known), no event.
 */
export function jsonLine(e: ExportedEntry | ExportedGap): string {
  if (isGap(e)) {
    const gap: Record<string, unknown> = { index: e.index, received: e.received, tier: e.tier, state: e.state };
    if (e.erasure !== undefined) gap.erasure = e.erasure;
    return `${JSON.stringify(gap)}\n`;
  }
  const out: Record<string, unknown> = {
    index: e.index,
    received: e.received,
    ingest: { principal: e.ingest.principal, method: e.ingest.method },
    tier: e.tier,
  };
  if (e.key !== undefined) out.key = e.key;
  out.event = e.event;
  return `${JSON.stringify(out)}\n`;
}

export const CSV_COLUMNS: readonly string[] = Object.freeze([
  'index',
  'time',
  'received',
  'id',
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
  'reason',
  'subject',
  'tier',
  'principal',
  'data',
  'state',
  'erasure',
]);

/** First characters that make a spreadsheet read a cell as a formula (OWASP), plus NUL (ASVS). */
const FORMULA_START = /^[=+\-@\t\r\0]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One CSV field: formula-guarded, then quoted per RFC 4180 when needed. */
export function csvField(value: string): string {
  const v = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

function csvRecord(fields: readonly string[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

/** The header record (CSV_COLUMNS), ending in CRLF. */
export function csvHeader(): string {
  return csvRecord(CSV_COLUMNS);
}

/**
 * One record in CSV_COLUMNS order, ending in CRLF. Absent values are empty; `data` is compact JSON.
 * `state` is empty for a readable entry; a gap has only index, received, tier, state and erasure.
 */
export function csvRow(e: ExportedEntry | ExportedGap): string {
  if (isGap(e)) {
    const row = CSV_COLUMNS.map(() => '');
    const set = (c: string, v: string) => {
      row[CSV_COLUMNS.indexOf(c)] = v;
    };
    set('index', String(e.index));
    set('received', e.received);
    set('tier', e.tier);
    set('state', e.state);
    set('erasure', e.erasure === undefined ? '' : String(e.erasure));
    return csvRecord(row);
  }
  const ev = e.event;
  return csvRecord([
    String(e.index),
    ev.time,
    e.received,
    ev.id,
    ev.actor.id,
    ev.actor.type,
    ev.actor.on_behalf_of ?? '',
    String(ev.actor.verified),
    ev.action,
    ev.source.kind,
    ev.source.host ?? '',
    ev.resource?.type ?? '',
    ev.resource?.id ?? '',
    ev.outcome,
    ev.reason ?? '',
    ev.subject ?? '',
    e.tier,
    e.ingest.principal,
    ev.data === undefined ? '' : JSON.stringify(ev.data),
    '',
    '',
  ]);
}
