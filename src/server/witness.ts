/**
 * The HTTP face of `stele witness` (c2sp.org/tlog-witness): POST /add-checkpoint answers the
 * cosignature line(s), 409 with the witness's size (text/x.tlog.size), or the spec's refusals with
 * a JSON body naming the problem; GET /healthz names the cosigner and the sizes it holds. Nothing
 * authenticates a request but the log's signature on the checkpoint; a body is at most 64 KiB
 * (63 proof lines and a checkpoint with its signatures take a few).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { WitnessError } from '../witness/protocol.js';
import type { Witness } from '../witness/witness.js';

export const WITNESS_BODY_LIMIT = 64 * 1024;

export async function buildWitnessServer(
  witness: Witness,
  opts: { logger: { level: string }; status: () => Record<string, unknown> },
): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger, bodyLimit: WITNESS_BODY_LIMIT });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.post('/add-checkpoint', async (req, reply) => {
    try {
      const lines = witness.addCheckpoint(typeof req.body === 'string' ? req.body : '');
      return reply.type('text/plain; charset=utf-8').send(lines);
    } catch (err) {
      if (!(err instanceof WitnessError)) throw err;
      // Refusals are kept in the witness's log: an inconsistent checkpoint signed by the log is evidence.
      req.log.warn(
        { status: err.status, reason: err.message, body: err.status === 422 || err.status === 409 ? req.body : undefined },
        'refused',
      );
      if (err.status === 409) return reply.code(409).type('text/x.tlog.size').send(`${err.size}\n`);
      return reply.code(err.status).send({ error: { code: `witness_${err.status}`, message: err.message } });
    }
  });
  app.get('/healthz', async () => ({ status: 'ok', ...opts.status() }));
  return app;
}
