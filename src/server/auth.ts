import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Credentials } from '../auth/access.js';
import type { Principal } from '../auth/principal.js';
import { SteleError } from '../errors.js';
import type { AccessAction } from '../policy/access.js';
import type { Stele } from '../stele.js';

/** The verified client certificate of a mutual-TLS connection, if any. */
function peerCert(req: FastifyRequest): Credentials['cert'] {
  const socket = req.raw.socket as TLSSocket;
  if (!socket.encrypted || !socket.authorized) return undefined;
  const c = socket.getPeerCertificate();
  const cn = c?.subject?.CN;
  if (!cn) return undefined;
  const issuer = Object.entries(c.issuer ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(', ');
  return { cn: Array.isArray(cn) ? (cn[0] as string) : cn, issuer };
}

/**
 * Counts refusals per (client address, credential) over a window; past `limit`, that credential
 * from that address is answered 429 at once, before any signature check or key lookup. A client
 * retrying a bad token in a loop then costs next to nothing, while other credentials from the same
 * address (a NAT, a proxy) are still served.
 */
export class DenialThrottle {
  private counts = new Map<string, { n: number; since: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {}

  blocked(key: string, now = Date.now()): number {
    const c = this.counts.get(key);
    if (!c || now - c.since >= this.windowMs) return 0;
    return c.n >= this.limit ? Math.ceil((c.since + this.windowMs - now) / 1000) : 0;
  }

  note(key: string, now = Date.now()): void {
    const c = this.counts.get(key);
    if (!c || now - c.since >= this.windowMs) {
      if (this.counts.size > 100_000) this.counts.clear(); // bounded: forgetting only lets a few more through
      this.counts.set(key, { n: 1, since: now });
    } else c.n++;
  }
}

/**
 * An onRequest hook: authenticates whatever credential the request carries (none is fine here —
 * routes that need one say so) and sets `req.principal`.
 */
export function authenticate(stele: Stele, throttle: DenialThrottle) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const auth = req.headers.authorization;
    // Hash only a credential there is: most requests (tiles, proofs) carry none.
    req.denialKey = auth === undefined ? req.ip : `${req.ip}\0${createHash('sha256').update(auth).digest('base64')}`;
    const wait = throttle.blocked(req.denialKey);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      throw new SteleError('too_many_denials', `this credential was refused too often from ${req.ip}; retry in ${wait} s`, 429);
    }
    const cert = peerCert(req);
    const creds: Credentials = {
      ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
      ...(cert ? { cert } : {}),
    };
    const p = await stele.access.authenticate(creds);
    if (p) req.principal = p;
  };
}

/** The authenticated principal, or 401. */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal)
    throw new SteleError('unauthorized', 'this request needs a bearer token (an API key or an OIDC access token)', 401);
  return req.principal;
}

/** A preHandler admitting only principals the policy lets do `action` on the log. */
export function allow(stele: Stele, action: AccessAction) {
  return async (req: FastifyRequest): Promise<void> => {
    stele.access.require(principalOf(req), action);
  };
}
