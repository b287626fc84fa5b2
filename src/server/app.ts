import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Principal } from '../auth/principal.js';
import { SteleError } from '../errors.js';
import type { Stele } from '../stele.js';
import { authenticate, DenialThrottle } from './auth.js';
import { adminRoutes } from './routes/admin.js';
import { eventRoutes } from './routes/events.js';
import { forgetRoutes } from './routes/forget.js';
import { readRoutes } from './routes/read.js';
import { exportRoutes, searchRoutes } from './routes/search.js';
import { cloudtrailRoutes } from './routes/sources-cloudtrail.js';
import { kubernetesRoutes } from './routes/sources-kubernetes.js';
import { otlpRoutes } from './routes/sources-otlp.js';
import { tlogRoutes } from './routes/tlog.js';

export interface ServerOptions {
  /** Largest request body, bytes. */
  bodyLimit?: number;
  logger?: boolean | { level: string };
  /** HTTPS: PEM certificate chain and key; with `clientCa`, client certificates signed by it authenticate (mutual TLS). */
  tls?: { cert: string | Buffer; key: string | Buffer; clientCa?: string | Buffer };
  /** Requests per minute per principal (per address before authenticating). */
  rateLimit?: number;
  /** Refusals of one credential from one address per minute before it is answered 429 without checking. */
  denialLimit?: number;
}

export const DEFAULT_RATE_LIMIT = 6000;
export const DEFAULT_DENIAL_LIMIT = 60;

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /** Client address and credential hash, for the denial throttle (auth.ts). */
    denialKey?: string;
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
    ...(opts.tls
      ? {
          https: {
            cert: opts.tls.cert,
            key: opts.tls.key,
            // Ask for a certificate but do not insist: bearer-token clients share the port.
            ...(opts.tls.clientCa ? { ca: opts.tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
          },
        }
      : {}),
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

  const throttle = new DenialThrottle(opts.denialLimit ?? DEFAULT_DENIAL_LIMIT);
  /** Every refused credential or permission is recorded (coalesced) in the log. */
  const denied = (req: FastifyRequest, err: SteleError) => {
    if (err.status === 401 && req.denialKey) throttle.note(req.denialKey);
    stele.audit.denied({
      ...(req.principal ? { principal: req.principal } : {}),
      ip: req.ip,
      method: req.method,
      url: req.url.length > 512 ? `${req.url.slice(0, 512)}…` : req.url,
      status: err.status,
      code: err.code,
      reason: typeof err.detail?.reason === 'string' ? err.detail.reason : err.code,
      message: err.message,
    });
  };

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof SteleError) {
      if (err.status === 401 || err.status === 403) denied(req, err);
      if (err.status === 401) {
        reply.header('www-authenticate', `Bearer realm="stele"${req.headers.authorization ? ', error="invalid_token"' : ''}`);
      }
      return sendError(reply, err.status, err.code, err.message, err.detail);
    }
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

  app.addHook('onRequest', authenticate(stele, throttle));
  await app.register(rateLimit, {
    // After authentication, so the limit is per principal, not per proxy address.
    hook: 'preHandler',
    max: opts.rateLimit ?? DEFAULT_RATE_LIMIT,
    timeWindow: 60_000,
    // The tlog-tiles API is static, public and cacheable: verifiers fetch many tiles.
    allowList: (req) => req.url.startsWith('/log/') || req.url === '/healthz',
    keyGenerator: (req) => (req.principal ? `${req.principal.method}:${req.principal.id}` : `ip:${req.ip}`),
    errorResponseBuilder: (_req, ctx) =>
      new SteleError('rate_limited', `more than ${ctx.max} requests a minute; retry in ${Math.ceil(ctx.ttl / 1000)} s`, 429),
  });

  await app.register(eventRoutes(stele));
  await app.register(kubernetesRoutes(stele));
  await app.register(cloudtrailRoutes(stele));
  await app.register(otlpRoutes(stele));
  await app.register(adminRoutes(stele));
  await app.register(readRoutes(stele));
  await app.register(searchRoutes(stele));
  await app.register(exportRoutes(stele));
  await app.register(forgetRoutes(stele));
  await app.register(tlogRoutes(stele));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
