import type { FastifyInstance } from 'fastify';
import type { Stele } from '../../app/stele.js';
import { appendBody } from '../../ingest/append.js';
import { principalOf } from '../auth.js';

const entry = {
  type: 'object',
  required: ['id', 'index'],
  properties: {
    id: { type: 'string' },
    index: { type: 'integer' },
    proof: {
      type: 'array',
      items: { type: 'string' },
      description: 'Inclusion proof (base64 hashes) against `checkpoint`, with ?wait=checkpoint.',
    },
  },
} as const;

export const eventRoutes = (stele: Stele) => async (app: FastifyInstance) => {
  app.post<{ Querystring: { wait?: 'checkpoint' } }>(
    '/v1/events',
    {
      schema: {
        summary: 'Append events',
        description:
          'Body: one event, a JSON array of events, or NDJSON (Content-Type: application/x-ndjson). Answers once every ' +
          'entry is durable, in request order. A repeated event id answers with its first index. All or nothing: one ' +
          'invalid event refuses the request. With ?wait=checkpoint, also waits for a signed checkpoint covering the ' +
          "entries and returns it with each entry's inclusion proof.",
        security: [{ bearer: [] }],
        querystring: {
          type: 'object',
          properties: { wait: { type: 'string', enum: ['checkpoint'] } },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            required: ['entries'],
            properties: {
              entries: { type: 'array', items: entry },
              checkpoint: { type: 'string', description: 'Signed checkpoint (c2sp.org/tlog-checkpoint), with ?wait=checkpoint.' },
            },
          },
        },
      },
    },
    async (req) => {
      const principal = principalOf(req);
      const kind = req.headers['content-type']?.startsWith('application/x-ndjson') ? 'ndjson' : 'json';
      const entries = await appendBody(
        stele.log,
        stele.pace,
        stele.pool,
        req.body as Buffer,
        kind,
        principal,
        stele.access.authorizeClaims,
      );
      if (req.query.wait !== 'checkpoint') return { entries };
      const cp = await stele.log.waitForCheckpoint(Math.max(...entries.map((e) => e.index)) + 1);
      const proved = await Promise.all(
        entries.map(async (e) => ({
          ...e,
          proof: (await stele.log.inclusionProof(e.index, cp.size)).map((h) => h.toString('base64')),
        })),
      );
      return { entries: proved, checkpoint: cp.note };
    },
  );
};
