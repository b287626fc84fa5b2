/**
 * Who did it, as far as the server knows: sets `actor.verified` and `actor.issuer` from the
 * authenticated principal (never from the client), checks an API key's restrictions, and lists
 * what the main thread must still authorise: appending each (action, source) and, where the actor
 * is not the principal, vouching for it. Pure, so it runs on the ingest workers.
 */

import type { Claim } from '../core/claim.js';
import { eventAt, SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { Event } from '../event/types.js';
import { compileGlobs } from '../policy/tiers.js';

/**
 * The actor is the principal itself: a person or service writing about its own action, or an
 * AI agent acting for the person whose token sent it. Only then is the actor verified.
 */
function isSelf(e: Event, p: Principal): boolean {
  if (e.actor.type === 'ai_agent') return p.kind === 'user' && e.actor.on_behalf_of === p.id;
  if (e.actor.id !== p.id) return false;
  // A person's token proves a person; a key or a certificate proves a service.
  return p.kind === 'user' ? e.actor.type === 'human' : e.actor.type !== 'human' || p.kind === 'local';
}

const restrictCache = new WeakMap<object, { sources: RegExp | null; actions: RegExp | null }>();

function restriction(r: NonNullable<Principal['restrict']>) {
  let c = restrictCache.get(r);
  if (!c) {
    c = { sources: compileGlobs(r.sources ?? []), actions: compileGlobs(r.actions ?? []) };
    restrictCache.set(r, c);
  }
  return c;
}

/** Applies the principal's identity to normalised events (in place) and returns the distinct claims. */
export function applyIdentity(events: Event[], p: Principal): Claim[] {
  const r = p.restrict ? restriction(p.restrict) : null;
  const claims = new Map<string, Claim>();
  const many = events.length > 1;
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as Event;
    const where = eventAt(many ? i : undefined);
    if (r?.sources && !r.sources.test(e.source.kind)) {
      throw new SteleError(
        'forbidden',
        `API key "${p.id}" may only append events from sources ${p.restrict?.sources?.join(', ')}, not "${e.source.kind}"`,
        where,
      );
    }
    if (r?.actions && !r.actions.test(e.action)) {
      throw new SteleError(
        'forbidden',
        `API key "${p.id}" may only append actions ${p.restrict?.actions?.join(', ')}, not "${e.action}"`,
        where,
      );
    }
    const self = isSelf(e, p);
    if (self) {
      // Rebuilt in sorted key order, as normalizeEvent builds it, so canonical JSON need not sort.
      const { id, on_behalf_of, type } = e.actor;
      e.actor = {
        id,
        ...(p.issuer !== undefined ? { issuer: p.issuer } : {}),
        ...(on_behalf_of !== undefined ? { on_behalf_of } : {}),
        type,
        verified: true,
      };
    }
    const key = `${e.action}\0${e.source.kind}\0${e.actor.id}\0${self ? 0 : 1}`;
    if (!claims.has(key)) claims.set(key, { action: e.action, source: e.source.kind, actor: e.actor.id, vouch: !self, at: i });
  }
  return [...claims.values()];
}

/**
 * Why a client may not write (action, source kind), or null: `stele.*` actions and the `stele`
 * source kind name the server's own self-audit events (erasures, holds, policy loads, access
 * records), which only the server appends. Compared case-insensitively and trimmed, so "Stele "
 * is no way around it.
 */
export function reservedName(action: string, sourceKind: string): string | null {
  const a = action.trim().toLowerCase();
  if (a === 'stele' || a.startsWith('stele.')) {
    return `action "${action}" is reserved: stele.* actions are written only by the Stele server itself`;
  }
  const k = sourceKind.trim().toLowerCase();
  if (k === 'stele' || k.startsWith('stele.')) {
    return `source kind "${sourceKind}" is reserved: it marks events the Stele server writes itself`;
  }
  return null;
}

/** Refuses (403 'reserved') a client batch with any claim on a reserved name. */
export function refuseReserved(claims: readonly Claim[]): void {
  for (const c of claims) {
    const why = reservedName(c.action, c.source);
    if (why) throw new SteleError('reserved', why, eventAt(claims.length > 1 || c.at > 0 ? c.at : undefined));
  }
}
