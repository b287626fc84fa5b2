import { hostname } from 'node:os';
import type { Principal } from '../core/principal.js';
import type { Outcome } from '../event/types.js';

/** The server itself, for what nobody asked for at that moment (scheduled expiry, denied anonymous requests). */
export const SERVER: Principal = { kind: 'local', id: 'stele', method: 'local', groups: [], roles: [] };

/** actor.type of an event about what `p` did. */
export const actorType = (p: Principal) => (p.kind === 'user' ? 'human' : 'service');

export type { Outcome };

/**
 * The outcome a self-event has unless told: a refusal of who asked is `denied` (stele.*.denied), a
 * refused change `failure` (stele.*.refused), anything else `success` — so `outcome:denied` and
 * `outcome:failure` find them, whoever builds the event.
 */
export function defaultOutcome(action: string): Outcome {
  if (action.endsWith('.denied')) return 'denied';
  if (action.endsWith('.refused')) return 'failure';
  return 'success';
}

/**
 * A `stele.*` event: the log recording its own use (expiry runs, holds, erasures, reads, denials).
 * Appended with `by` as the ingest principal, so its actor is verified exactly when `by` was
 * authenticated (see src/ingest/identity.ts). Such events outlive every erasure (they are sealed
 * under their tier's day key): `data` must name a data subject only by its keyed hash.
 */
export function selfEvent(
  action: string,
  by: Principal,
  data: Record<string, unknown>,
  reason?: string,
  outcome: Outcome = defaultOutcome(action),
  /** What it was about, when that is worth a search field (the tier of an entry read). */
  resource?: { type: string; id: string },
) {
  return {
    action,
    actor: { id: by.id, type: actorType(by) },
    source: { kind: 'stele', host: hostname(), agent: 'stele' },
    outcome,
    ...(resource ? { resource } : {}),
    ...(reason ? { reason } : {}),
    data,
  };
}
