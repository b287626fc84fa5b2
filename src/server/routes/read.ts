import type { FastifyInstance } from 'fastify';
import { readEntry } from '../../app/reading.js';
import type { Stele } from '../../app/stele.js';
import type { WitnessStatus } from '../../app/witnessing.js';
import { SteleError } from '../../core/errors.js';
import { decodeLeaf } from '../../event/record.js';
import { eventSchema } from '../../event/schema.js';
import { openEntry } from '../../index/reader.js';
import { SharedLog } from '../../log/shared-log.js';
import { policySchema } from '../../policy/schema.js';
import type { MirrorStatus } from '../../storage/s3/mirror.js';
import { leafHash } from '../../tlog/hash.js';
import { principalOf } from '../auth.js';

const b64 = (h: Buffer) => h.toString('base64');
const index = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const proof = { type: 'array', items: { type: 'string' }, description: 'Base64 SHA-256 hashes, RFC 6962 order.' } as const;

export const readRoutes =
  (
    stele: Stele,
    mirrorStatus?: () => MirrorStatus,
    witnessing?: { cosignedAt: () => number | null; quorum: number; status: () => WitnessStatus[] },
  ) =>
  async (app: FastifyInstance) => {
    const log = stele.log;

    app.get<{ Params: { index: number } }>(
      '/v1/entries/:index',
      {
        schema: {
          summary:
            'One entry: its record (the leaf), the leaf bytes and the leaf hash; with a credential the policy lets read it, the event',
          description:
            'Available as soon as the append was acknowledged. With Accept: application/octet-stream, the raw leaf bytes. ' +
            'With a bearer token (or client certificate) whose principal the policy lets `read` the entry, `event` is the ' +
            'decrypted event and `ingest` who wrote it (sealed with the event in a sealed leaf), and the read is recorded in the log as a stele.access.read event; an entry whose data key was ' +
            'destroyed answers 410 with code "expired" or "erased" when the caller may see its tier (its leaf and proofs stay ' +
            'available without a token). Any refusal is the same 403, naming only the index: it never opens the entry.',
          params: { type: 'object', properties: { index }, required: ['index'] },
        },
      },
      async (req, reply) => {
        const i = req.params.index;
        const leaf = await log.entry(i);
        if (req.headers.accept === 'application/octet-stream') return reply.type('application/octet-stream').send(leaf);
        const entry = { index: i, leaf_hash: b64(leafHash(leaf)), leaf: b64(leaf), record: decodeLeaf(leaf) };
        if (!req.principal) return entry;
        const event = await readEntry(stele, principalOf(req), i, leaf);
        // Who wrote it: a v2 sealed leaf seals it with the event, so it is shown only to a reader.
        return { ...entry, event, ingest: (await openEntry(stele.keys, i, leaf)).ingest };
      },
    );

    app.get<{ Querystring: { index: number; size?: number } }>(
      '/v1/proofs/inclusion',
      {
        schema: {
          summary: 'Inclusion proof of an entry in a tree of a given size (default: the latest checkpoint)',
          querystring: { type: 'object', properties: { index, size: index }, required: ['index'], additionalProperties: false },
          response: {
            200: {
              type: 'object',
              properties: { index, size: index, leaf_hash: { type: 'string' }, proof, checkpoint: { type: 'string' } },
            },
          },
        },
      },
      async (req, reply) => {
        const cp = log.checkpoint;
        const size = req.query.size ?? cp.size;
        // No await when the tiles are cached (most proofs): each costs a turn of the microtask queue.
        const proof = log.inclusionProof(req.query.index, size);
        const p = proof instanceof Promise ? await proof : proof;
        const hash = log.leafHash(req.query.index);
        const leaf = b64(hash instanceof Promise ? await hash : hash);
        // Written out rather than serialized: monitors ask for many, and base64 needs no escaping
        // (the schema-driven serializer checked every hash for characters to escape).
        const body =
          `{"index":${req.query.index},"size":${size},"leaf_hash":"${leaf}","proof":[${p.map((h) => `"${b64(h)}"`).join(',')}]` +
          `${size === cp.size ? `,"checkpoint":${JSON.stringify(cp.note)}` : ''}}`;
        return reply.type('application/json; charset=utf-8').send(body);
      },
    );

    app.get<{ Querystring: { from: number; to?: number } }>(
      '/v1/proofs/consistency',
      {
        schema: {
          summary: 'Consistency proof between two tree sizes (to defaults to the latest checkpoint)',
          querystring: {
            type: 'object',
            properties: { from: index, to: index },
            required: ['from'],
            additionalProperties: false,
          },
          response: { 200: { type: 'object', properties: { from: index, to: index, proof, checkpoint: { type: 'string' } } } },
        },
      },
      async (req) => {
        const cp = log.checkpoint;
        const to = req.query.to ?? cp.size;
        const p = await log.consistencyProof(req.query.from, to);
        return { from: req.query.from, to, proof: p.map(b64), ...(to === cp.size ? { checkpoint: cp.note } : {}) };
      },
    );

    app.get('/v1/schema/event', { schema: { summary: 'JSON Schema (2020-12) of an event' } }, async (_req, reply) =>
      reply.type('application/schema+json').send(eventSchema),
    );

    app.get('/v1/schema/policy', { schema: { summary: 'JSON Schema (2020-12) of stele.policy.yaml' } }, async (_req, reply) =>
      reply.type('application/schema+json').send(policySchema),
    );

    app.get('/healthz', { schema: { summary: "Liveness and the log's sizes" } }, async () => {
      const failure = log.failure;
      if (failure) throw new SteleError('log_failed', failure.message, { cause: failure });
      const health = {
        status: 'ok',
        origin: log.origin,
        size: log.size,
        checkpoint_size: log.checkpoint.size,
        // Nodes sharing a log: whether this one holds the integrator lease (and runs retention and validation).
        ...(log instanceof SharedLog ? { integrator: stele.leading } : {}),
      };
      // How far the bucket and the witnesses have got, not which or why one failed (that is in the server's log).
      const m = mirrorStatus?.();
      const cosignedAt = witnessing?.cosignedAt();
      return {
        ...health,
        ...(m ? { mirror: { size: m.size, ok: m.lastError === null, last_success: m.lastSuccess } } : {}),
        ...(witnessing
          ? {
              witnesses: {
                quorum: witnessing.quorum,
                ok: witnessing.status().filter((w) => w.lastError === null).length,
                cosigned_at: cosignedAt ? new Date(cosignedAt).toISOString() : null,
              },
            }
          : {}),
      };
    });
  };
