import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, LogController } from 'fastify';
import type { Principal } from '../auth/tokens.js';
import { SteleError } from '../errors.js';
import type { Stele } from '../stele.js';
import { eventRoutes } from './routes/events.js';
import { forgetRoutes } from './routes/forget.js';
import { readRoutes } from './routes/read.js';
import { exportRoutes, searchRoutes } from './routes/search.js';
import { tlogRoutes } from './routes/tlog.js';

export interface ServerOptions {
  /** Largest request body, bytes. */
  bodyLimit?: number;
  logger?: boolean | { level: string };
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

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

/** The HTTP API over an open Stele. Routes stay thin: parse, call one operation, format. */
export async function buildServer(stele: Stele, opts: ServerOptions = {}): Promise<FastifyInstance> {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit,
    // A log line per request would be most of the log at 100 batches a second; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Route schemas check query strings and params, which arrive as text: coerce "5" to 5.
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false } },
  });

  // Bodies stay bytes: the events route hands them to an ingest worker, which checks UTF-8 and
  // parses them off the main thread.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'application/x-ndjson'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof SteleError) return sendError(reply, err.status, err.code, err.message, err.detail);
    if (err.validation) return sendError(reply, 400, 'bad_request', `${err.validationContext ?? 'request'} ${err.message}`);
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendError(reply, 413, 'body_too_large', `the request body is larger than the limit of ${bodyLimit} bytes`);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, 415, 'unsupported_media_type', 'send application/json or application/x-ndjson');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return sendError(reply, 400, 'bad_request', err.message);
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, err.statusCode, 'bad_request', err.message);
    }
    req.log.error({ err }, 'request failed');
    return sendError(reply, 500, 'internal', 'internal error; see the server log');
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, 'not_found', `no route for ${req.method} ${req.url}`));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Stele',
        version: '1',
        description: 'Tamper-evident audit log: append events, read entries and proofs, and the C2SP tlog-tiles API under /log/.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });

  await app.register(eventRoutes(stele));
  await app.register(readRoutes(stele));
  await app.register(searchRoutes(stele));
  await app.register(exportRoutes(stele));
  await app.register(forgetRoutes(stele));
  await app.register(tlogRoutes(stele));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
