import type { FastifyReply, FastifyRequest } from 'fastify';
import { SteleError } from '../errors.js';
import type { Requester } from '../keys/self-event.js';
import type { Stele } from '../stele.js';

/** A preHandler that admits a request only with a valid bearer token, and records who sent it. */
export function requireToken(stele: Stele) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const h = req.headers.authorization;
    const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
    if (!m) {
      reply.header('www-authenticate', 'Bearer realm="stele"');
      throw new SteleError(
        'unauthorized',
        h ? 'the Authorization header is not "Bearer <token>"' : 'this request needs a bearer token',
        401,
      );
    }
    const principal = stele.tokens.authenticate(m[1] as string);
    if (!principal) {
      reply.header('www-authenticate', 'Bearer realm="stele", error="invalid_token"');
      throw new SteleError('unauthorized', 'the bearer token is not valid', 401);
    }
    req.principal = principal;
  };
}

/** requireToken, and the token must have the admin role (decrypted reads, search, export, forgetting). */
export function requireAdmin(stele: Stele) {
  const token = requireToken(stele);
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await token(req, reply);
    if (req.principal?.role !== 'admin') {
      throw new SteleError('forbidden', `token "${req.principal?.name}" may only append; this needs an admin token`, 403);
    }
  };
}

/** The requester of an operation, for the stele.* event it appends. */
export function requester(req: FastifyRequest): Requester {
  const p = req.principal as NonNullable<FastifyRequest['principal']>;
  return { ingest: { principal: p.name, method: 'apikey' }, type: 'service' };
}
