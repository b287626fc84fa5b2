import type { Claim } from '../core/claim.js';
import { metrics } from '../core/metrics.js';
import type { Principal } from '../core/principal.js';
import { nowMicros } from '../event/record.js';
import type { SteleLog } from '../log/log.js';
import type { BodyKind } from './body.js';
import { refuseReserved } from './identity.js';
import type { IngestPool } from './pool.js';
import type { Prepared } from './prepare.js';

/**
 * What a client append asks before sequencing: whether the query store is so far behind that the
 * append is refused (IndexThread.admit: 503 with Retry-After, nothing appended). Nothing waits.
 */
/** An appended entry that matched an alert rule: its index, the rule, and its group's value. */
export interface AlertHit {
  index: number;
  rule: string;
  group: string | null;
}

export interface Pace {
  admit(): void;
  /**
   * Told, once a batch tested against the alert rules is durable and before it is acknowledged,
   * which of its entries matched which rules (an entry a retry repeated was told of the first
   * time), and how long testing took; never waits.
   */
  appended?(hits: readonly AlertHit[], ruleSeconds: number): void;
}

/**
 * Throws (403) unless the principal may do every claim; runs after preparing, before sequencing.
 * Given for every client append (and only then): such a batch may not use reserved names either.
 */
export type AuthorizeClaims = (principal: Principal, claims: readonly Claim[]) => void;

export interface Appended {
  id: string;
  index: number;
}

/**
 * The append operation, behind `stele append --local` and self-audit events (parsed events) and
 * `POST /v1/events` (request bytes, prepared on the ingest pool). Validation and authorisation are
 * all or nothing and happen before anything is written; each resolves once every entry is
 * durable, with indices in input order.
 */
export async function appendEvents(
  log: SteleLog,
  pace: Pace,
  pool: IngestPool,
  inputs: readonly unknown[],
  principal: Principal,
  authorize?: AuthorizeClaims,
): Promise<Appended[]> {
  return sequence(log, pace, principal, await pool.prepareParsed(inputs, principal, nowMicros()), authorize);
}

export async function appendBody(
  log: SteleLog,
  pace: Pace,
  pool: IngestPool,
  body: Uint8Array,
  kind: BodyKind,
  principal: Principal,
  authorize?: AuthorizeClaims,
): Promise<Appended[]> {
  return sequence(log, pace, principal, await pool.prepare(body, kind, principal, nowMicros()), authorize);
}

async function sequence(
  log: SteleLog,
  pace: Pace,
  principal: Principal,
  prepared: Prepared,
  authorize?: AuthorizeClaims,
): Promise<Appended[]> {
  if (authorize) {
    // The server's own self-audit events come without `authorize`; a client may not write them.
    refuseReserved(prepared.claims);
    authorize(principal, prepared.claims);
  }
  // Client appends (those authorised against the policy) get backpressure: 503 with nothing
  // appended when the index or the write path is too far behind. The server's own events (audit,
  // erasure records) always go.
  const bounded = authorize !== undefined;
  if (bounded) pace.admit();
  const entries = prepared.entries;
  const repeats: number[] = [];
  const indices = await log.append(entries, { bounded, keyIds: prepared.keyIds, repeated: (i) => repeats.push(i) });
  if (pace.appended && prepared.hits) {
    const skip = new Set(repeats);
    const hits: AlertHit[] = [];
    for (const h of prepared.hits)
      if (!skip.has(h.at)) hits.push({ index: indices[h.at] as number, rule: h.rule, group: h.group });
    pace.appended(hits, prepared.ruleSeconds ?? 0);
  }
  if (bounded) {
    let bytes = 0;
    for (const e of entries) bytes += e.leaf.length;
    metrics.appended(entries.length, bytes);
  }
  return entries.map((e, i) => ({ id: e.id, index: indices[i] as number }));
}
