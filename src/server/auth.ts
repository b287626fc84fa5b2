import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Stele } from '../app/stele.js';
import type { Credentials } from '../auth/access.js';
import { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { AccessAction } from '../policy/access.js';

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
 * A fixed-window count per key. Two uses: refusals per (client address, credential) — past the
 * limit that credential from that address is answered 429 at once, before any signature check or
 * key lookup, so a client retrying a bad token in a loop costs next to nothing while other
 * credentials from the same address (a NAT, a proxy) are still served — and unauthenticated
 * requests per address.
 */
export class WindowLimit {
  private counts = new Map<string, { n: number; since: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {}

  /** 0 while `key` has been counted fewer than `limit` times this window, else the seconds until it ends. */
  wait(key: string, now = Date.now()): number {
    const c = this.counts.get(key);
    if (!c || now - c.since >= this.windowMs) return 0;
    return c.n >= this.limit ? Math.max(1, Math.ceil((c.since + this.windowMs - now) / 1000)) : 0;
  }

  /** Counts one for `key`. */
  note(key: string, now = Date.now()): void {
    const c = this.counts.get(key);
    if (!c || now - c.since >= this.windowMs) {
      if (this.counts.size > 100_000) this.counts.clear(); // bounded: forgetting only lets a few more through
      this.counts.set(key, { n: 1, since: now });
    } else c.n++;
  }

  /** Counts one request for `key` and answers as `wait` did before it (refused requests count too). */
  hit(key: string, now = Date.now()): number {
    const w = this.wait(key, now);
    this.note(key, now);
    return w;
  }
}

/**
 * The key per-address limits count under: an IPv4 address, or the /64 network of an IPv6 one (a
 * single host commonly holds a whole /64, so one address each would let it walk past any limit).
 */
export function addressKey(ip: string): string {
  if (!ip.includes(':')) return ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1] as string;
  const [head = '', tail] = ip.toLowerCase().split('%')[0]?.split('::') ?? [];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/**
 * Paths any client may fetch without limit: the static, cacheable tlog-tiles API, inclusion and
 * consistency proofs (computed from those same public tiles, which a client could fetch unlimited
 * and hash itself; monitors and verifiers ask for many), and the liveness probe.
 */
export function unlimitedPath(url: string): boolean {
  return url.startsWith('/log/') || url.startsWith('/v1/proofs/') || url === '/healthz';
}

/** Methods whose routes all need a principal (every route taking a body does); refused before the body is read. */
function needsPrincipal(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD';
}

const NEEDS_TOKEN = 'this request needs a bearer token (an API key or an OIDC access token)';

/**
 * An onRequest hook, so it runs before any request body is read: authenticates whatever
 * credential the request carries and sets `req.principal`. A request without one is limited per
 * client address (`anonymous`), and refused at once when its method carries a body (every such
 * route needs a principal): an unauthenticated upload is never buffered. Reads without a
 * credential go on; routes that need one say so.
 */
export function authenticate(stele: Stele, throttle: WindowLimit, anonymous: WindowLimit) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const auth = req.headers.authorization;
    // Hash only a credential there is: most requests (tiles, proofs) carry none.
    const from = addressKey(req.ip);
    req.denialKey = auth === undefined ? from : `${from}\0${createHash('sha256').update(auth).digest('base64')}`;
    const wait = throttle.wait(req.denialKey);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      throw new SteleError('too_many_denials', `this credential was refused too often from ${req.ip}; retry in ${wait} s`);
    }
    const cert = peerCert(req);
    if (auth === undefined && !cert) {
      const busy = unlimitedPath(req.url) ? 0 : anonymous.hit(from);
      if (busy > 0) {
        reply.header('retry-after', String(busy));
        throw new SteleError(
          'rate_limited',
          `too many requests without credentials from ${req.ip}; retry in ${busy} s (authenticated clients have their own limit)`,
        );
      }
      if (needsPrincipal(req.method)) throw new SteleError('unauthorized', NEEDS_TOKEN);
      return;
    }
    const creds: Credentials = {
      ...(auth !== undefined ? { authorization: auth } : {}),
      ...(cert ? { cert } : {}),
    };
    let p: Principal | null;
    try {
      p = await stele.access.authenticate(creds);
    } catch (e) {
      // Counted here, not only when answered: requests with the same bad credential already in
      // flight passed the check above together, and those past the limit get 429 all the same.
      if (e instanceof SteleError && e.status === 401) {
        throttle.note(req.denialKey);
        req.denialCounted = true;
        const w = throttle.wait(req.denialKey);
        if (w > 0) {
          reply.header('retry-after', String(w));
          throw new SteleError('too_many_denials', `this credential was refused too often from ${req.ip}; retry in ${w} s`);
        }
      }
      throw e;
    }
    if (p) req.principal = p;
    else if (needsPrincipal(req.method)) throw new SteleError('unauthorized', NEEDS_TOKEN);
  };
}

/** The authenticated principal, or 401. */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new SteleError('unauthorized', NEEDS_TOKEN);
  return req.principal;
}

/** A preHandler admitting only principals the policy lets do `action` on the log. */
export function allow(stele: Stele, action: AccessAction) {
  return async (req: FastifyRequest): Promise<void> => {
    stele.access.require(principalOf(req), action);
  };
}
