/**
 * The error reply every route and the server's own handlers send. Apart from ./app.ts, which
 * registers the routes, so that a route can use it without importing the app back.
 */
import type { FastifyReply } from 'fastify';

/** Sends the one error shape every 4xx/5xx has: `{"error": {"code", "message", ...detail}}`. */
export function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  detail?: Record<string, unknown>,
): FastifyReply {
  return reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send({ error: { ...detail, code, message } });
}
