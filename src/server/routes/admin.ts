import type { FastifyInstance } from 'fastify';
import { createApiKey, revokeApiKey } from '../../app/key-admin.js';
import type { Stele } from '../../app/stele.js';
import type { Timestamping } from '../../app/timestamping.js';
import { SteleError } from '../../core/errors.js';
import { allow, principalOf } from '../auth.js';
import { jsonObject, secured, str } from '../body.js';

/** A list of non-empty strings in a JSON body, or undefined when absent. */
function strings(o: Record<string, unknown>, k: string): string[] | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) {
    throw new SteleError('bad_request', `"${k}" must be a list of non-empty strings`);
  }
  return v as string[];
}

/** API keys, the policy and timestamps: what `stele keys ...`, `stele policy reload` and `stele timestamp` call. */
export const adminRoutes = (stele: Stele, timestamping?: Timestamping) => async (app: FastifyInstance) => {
  const admin = allow(stele, 'admin');
  const ctx = () => ({ apikeys: stele.apikeys, audit: stele.audit, policy: stele.policy });

  app.post(
    '/v1/keys',
    {
      preHandler: admin,
      schema: {
        ...secured,
        summary: 'Create an API key (answered once, in the clear; only its hash is kept)',
        description:
          'Body: {"name", "roles": [...], "sources"?: [globs], "actions"?: [globs]}. The roles must exist in the policy; ' +
          'sources/actions restrict which events the key may append. Recorded as a stele.key.create event.',
      },
    },
    async (req, reply) => {
      const o = jsonObject(req);
      const sources = strings(o, 'sources');
      const actions = strings(o, 'actions');
      const made = await createApiKey(
        ctx(),
        {
          name: str(o, 'name', true),
          roles: strings(o, 'roles') ?? [],
          ...(sources || actions ? { restrict: { ...(sources ? { sources } : {}), ...(actions ? { actions } : {}) } } : {}),
        },
        principalOf(req),
      );
      return reply.code(201).send({ key: made.key, ...made.info });
    },
  );

  app.get<{ Querystring: { all?: boolean } }>(
    '/v1/keys',
    {
      preHandler: admin,
      schema: {
        ...secured,
        summary: 'API keys (active ones; all=true includes revoked), without their secrets',
        querystring: { type: 'object', properties: { all: { type: 'boolean' } }, additionalProperties: false },
      },
    },
    async (req) => {
      const keys = stele.apikeys.list(req.query.all ?? false);
      await stele.audit.record('stele.access.list', principalOf(req), { what: 'keys', results: keys.length });
      return { keys };
    },
  );

  app.post<{ Params: { name: string } }>(
    '/v1/keys/:name/revoke',
    {
      preHandler: admin,
      schema: {
        ...secured,
        summary: 'Revoke an API key',
        description: 'Body: {"reason"}. Recorded as a stele.key.revoke event.',
      },
    },
    async (req) => revokeApiKey(ctx(), req.params.name, str(jsonObject(req), 'reason', true), principalOf(req)),
  );

  app.get(
    '/v1/policy',
    { preHandler: admin, schema: { ...secured, summary: 'The policy in force: source, SHA-256, roles, tiers' } },
    async () => {
      const p = stele.policy;
      return {
        source: p.source,
        sha256: p.sha256,
        ...(p.cedar ? { cedar: { source: p.cedar.source, sha256: p.cedar.sha256 } } : {}),
        roles: p.roles,
        tiers: p.retention.tiers.map((t) => t.name),
      };
    },
  );

  app.post(
    '/v1/policy/reload',
    {
      preHandler: admin,
      schema: {
        ...secured,
        summary: 'Load the policy file again (as SIGHUP does)',
        description:
          'Validates the policy file (and stele.cedar) and switches to it; recorded as stele.policy.load. A policy that does ' +
          'not validate is refused with every problem (400), recorded as stele.policy.refused, and the old one stays.',
      },
    },
    async (req) => stele.reloadPolicy(principalOf(req)),
  );

  app.post(
    '/v1/timestamps',
    {
      preHandler: admin,
      schema: {
        ...secured,
        summary: 'Timestamp the checkpoint now with every configured RFC 3161 authority (--tsa)',
        description:
          'Each token is recorded as a stele.timestamp event (the checkpoint note, the token, its time); answers them. ' +
          '404 no_tsa without --tsa; 502 tsa_failed when no authority answered.',
      },
    },
    async () => {
      if (!timestamping) throw new SteleError('no_tsa', 'no time-stamping authority is configured (stele serve --tsa URL)');
      try {
        return { timestamps: await timestamping.run(true) };
      } catch (err) {
        throw new SteleError('tsa_failed', (err as Error).message, { cause: err });
      }
    },
  );
};
