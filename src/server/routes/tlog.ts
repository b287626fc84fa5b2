import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import type { Stele } from '../../app/stele.js';
import { SteleError } from '../../core/errors.js';
import { parseTilePath } from '../../tlog/tile.js';

/**
 * The C2SP tlog-tiles read API. Tiles and bundles never change once written, so they may be cached
 * for a year; the checkpoint changes every second, so caches may keep it only briefly.
 */
const gzipAsync = promisify(gzip);

/** `checkpoint`: the note to serve (with witnesses: the newest a quorum cosigned); default the log's newest. */
export const tlogRoutes = (stele: Stele, checkpoint?: () => string) => async (app: FastifyInstance) => {
  app.get(
    '/log/checkpoint',
    { schema: { summary: 'Signed checkpoint (c2sp.org/tlog-checkpoint), with witness cosignatures' } },
    async (_req, reply) => {
      const note = checkpoint ? checkpoint() : stele.log.checkpoint.note;
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache, max-age=0').send(note);
    },
  );

  app.get<{ Params: { '*': string } }>(
    '/log/tile/*',
    { schema: { summary: 'Merkle tile or entry bundle (c2sp.org/tlog-tiles)' } },
    async (req, reply) => {
      const path = `tile/${req.params['*']}`;
      const t = parseTilePath(path);
      if (!t) throw new SteleError('bad_tile_path', `${path} is not a C2SP tile path`);
      const data = await stele.log.readTile(t.level, t.index, t.width);
      if (!data) throw new SteleError('not_found', `${path} does not exist`);
      reply.type('application/octet-stream').header('cache-control', 'public, max-age=31536000, immutable');
      // Entry bundles are JSON text and SHOULD be compressed (c2sp.org/tlog-tiles); hashes do not compress.
      if (t.level === 'entries') {
        reply.header('vary', 'accept-encoding');
        if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
          return reply.header('content-encoding', 'gzip').send(await gzipAsync(data));
        }
      }
      return reply.send(data);
    },
  );
};
