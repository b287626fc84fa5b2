import type { FastifyInstance } from 'fastify';
import type { Stele } from '../../app/stele.js';
import { recordOutsideRun } from '../../app/validation.js';
import { SteleError } from '../../core/errors.js';
import { allow, principalOf } from '../auth.js';
import { jsonObject, secured, str } from '../body.js';

/** `stele monitor --report`: a monitor records its runs in the log it watches (the monitoring role's `metrics`, or admin). */
export const validationRoutes = (stele: Stele) => async (app: FastifyInstance) => {
  app.post(
    '/v1/validations',
    {
      preHandler: allow(stele, 'metrics'),
      schema: {
        ...secured,
        summary: 'Record a run of an outside monitor as a stele.validation.run event',
        description:
          'Body: {"ok": bool, "kind": "full"|"incremental", "where": text, "size"?: int, "root"?: base64, "error"?: text, ' +
          '"seconds": number}. Recorded by the caller, with the event outcome failure when ok is false.',
      },
    },
    async (req, reply) => {
      const o = jsonObject(req);
      if (typeof o.ok !== 'boolean') throw new SteleError('bad_request', '"ok" must be true or false');
      const kind = str(o, 'kind', true);
      if (kind !== 'full' && kind !== 'incremental')
        throw new SteleError('bad_request', '"kind" must be "full" or "incremental"');
      const where = str(o, 'where', true);
      if (where.length > 2048) throw new SteleError('bad_request', '"where" is longer than 2048 characters');
      const size = o.size;
      if (size !== undefined && !(Number.isSafeInteger(size) && (size as number) >= 0))
        throw new SteleError('bad_request', '"size" must be a whole number ≥ 0');
      const root = str(o, 'root');
      if (root !== undefined && !/^[A-Za-z0-9+/]{43}=$/.test(root))
        throw new SteleError('bad_request', '"root" must be a base64 SHA-256');
      const error = str(o, 'error');
      if (error !== undefined && error.length > 4096)
        throw new SteleError('bad_request', '"error" is longer than 4096 characters');
      const seconds = o.seconds;
      if (typeof seconds !== 'number' || !(seconds >= 0) || seconds > 1e7)
        throw new SteleError('bad_request', '"seconds" must be a number ≥ 0');
      const index = await recordOutsideRun(stele, principalOf(req), {
        ok: o.ok,
        kind,
        where,
        seconds,
        ...(size === undefined ? {} : { size: size as number }),
        ...(root === undefined ? {} : { root }),
        ...(error === undefined ? {} : { error }),
      });
      return reply.code(201).send({ index });
    },
  );
};
