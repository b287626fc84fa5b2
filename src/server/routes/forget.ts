import type { FastifyInstance } from 'fastify';
import { addHold, eraseSubject, releaseHold, runRetention } from '../../app/forget.js';
import type { Stele } from '../../app/stele.js';
import { SteleError } from '../../core/errors.js';
import { parseMicros } from '../../event/record.js';
import type { HoldCriteria } from '../../keys/holds.js';
import { allow, principalOf } from '../auth.js';
import { jsonObject, secured, str } from '../body.js';

/** An RFC 3339 time or a YYYY-MM-DD date (midnight UTC) → µs. */
export function timeArg(name: string, v: string): number {
  const text = /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v;
  try {
    return Number(parseMicros(text));
  } catch {
    throw new SteleError('bad_request', `"${name}" must be an RFC 3339 time or a date (YYYY-MM-DD), got ${JSON.stringify(v)}`);
  }
}

export function holdCriteria(o: Record<string, unknown>): HoldCriteria {
  const c: HoldCriteria = {};
  for (const k of ['tier', 'actor', 'subject'] as const) {
    const v = str(o, k);
    if (v !== undefined) c[k] = v;
  }
  for (const k of ['since', 'until'] as const) {
    const v = str(o, k);
    if (v !== undefined) c[k] = timeArg(k, v);
  }
  return c;
}

export const forgetRoutes = (stele: Stele) => async (app: FastifyInstance) => {
  app.post(
    '/v1/retention/run',
    {
      preHandler: allow(stele, 'admin'),
      schema: {
        ...secured,
        summary: 'Run retention now: destroy the data keys of expired (tier, day) pairs not under a legal hold',
      },
    },
    async (req) => stele.exclusive(() => runRetention(stele.forget, principalOf(req))),
  );

  app.get<{ Querystring: { all?: boolean } }>(
    '/v1/holds',
    {
      preHandler: allow(stele, 'hold'),
      schema: {
        ...secured,
        summary: 'Legal holds (active ones; all=true includes released)',
        querystring: { type: 'object', properties: { all: { type: 'boolean' } }, additionalProperties: false },
      },
    },
    async (req) => {
      const holds = await stele.holds.list(req.query.all ?? false);
      await stele.audit.record('stele.access.list', principalOf(req), { what: 'holds', results: holds.length });
      return { holds };
    },
  );

  app.post(
    '/v1/holds',
    {
      preHandler: allow(stele, 'hold'),
      schema: {
        ...secured,
        summary: 'Place a legal hold',
        description:
          'Body: {"reason", and any of "tier", "actor", "subject", "since", "until"}. Blocks expiry and erasure of what it covers.',
      },
    },
    async (req, reply) => {
      const o = jsonObject(req);
      const hold = await stele.exclusive(() => addHold(stele.forget, holdCriteria(o), str(o, 'reason', true), principalOf(req)));
      return reply.code(201).send(hold);
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/holds/:id/release',
    {
      preHandler: allow(stele, 'hold'),
      schema: { ...secured, summary: 'Release a legal hold', description: 'Body: {"reason"}.' },
    },
    async (req) => {
      const o = jsonObject(req);
      return stele.exclusive(() => releaseHold(stele.forget, req.params.id, str(o, 'reason', true), principalOf(req)));
    },
  );

  app.post(
    '/v1/erasures',
    {
      preHandler: allow(stele, 'erase'),
      schema: {
        ...secured,
        summary: 'Erase a data subject',
        description:
          'Body: {"subject", "reason"}. Destroys the data keys of every event about the subject; proofs keep verifying. ' +
          'The subject is matched in Unicode NFC, as events store it. Refused (409) while a legal hold covers the subject. ' +
          'Answers {event, keys, entries, events}: `event` the index of the stele.erasure entry recording the request ' +
          '(always appended), `events` how many events became unreadable; with no readable event about the subject, ' +
          '`events` is 0 and `message` says "no events carry this subject".',
      },
    },
    async (req) => {
      const o = jsonObject(req);
      return stele.exclusive(() => eraseSubject(stele.forget, str(o, 'subject', true), str(o, 'reason', true), principalOf(req)));
    },
  );
};
