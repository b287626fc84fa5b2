import { hostname } from 'node:os';
import type { Principal } from '../auth/principal.js';

/** The server itself, for what nobody asked for at that moment (scheduled expiry, denied anonymous requests). */
export const SERVER: Principal = { kind: 'local', id: 'stele', method: 'local', groups: [], roles: [] };

/** actor.type of an event about what `p` did. */
export const actorType = (p: Principal) => (p.kind === 'user' ? 'human' : 'service');

/**
 * A `stele.*` event: the log recording its own use (expiry runs, holds, erasures, reads, denials).
 * Appended with `by` as the ingest principal, so its actor is verified exactly when `by` was
 * authenticated (see src/ingest/identity.ts).
 */
export function selfEvent(action: string, by: Principal, data: Record<string, unknown>, reason?: string) {
  return {
    action,
    actor: { id: by.id, type: actorType(by) },
    source: { kind: 'stele', host: hostname(), agent: 'stele' },
    outcome: 'success',
    ...(reason ? { reason } : {}),
    data,
  };
}
