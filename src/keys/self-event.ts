import { hostname } from 'node:os';
import type { Ingest } from '../event/types.js';

/** Who asked for an operation: the authenticated principal, or the server's own scheduler. */
export interface Requester {
  ingest: Ingest;
  /** actor.type of the resulting stele.* event. */
  type: 'human' | 'service';
}

export const SCHEDULER: Requester = { ingest: { principal: 'stele', method: 'local' }, type: 'service' };

/** A `stele.*` event: the log recording its own operations (expiry runs, holds, erasures). */
export function selfEvent(action: string, by: Requester, data: Record<string, unknown>, reason?: string) {
  return {
    action,
    actor: { id: by.ingest.principal, type: by.type },
    source: { kind: 'stele', host: hostname(), agent: 'stele' },
    outcome: 'success',
    ...(reason ? { reason } : {}),
    data,
  };
}
