import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import type { Stele } from '../app/stele.js';
import type { Timestamping } from '../app/timestamping.js';
import type { ValidationRun } from '../app/validation.js';
import type { WitnessStatus } from '../app/witnessing.js';
import { defaultOf } from '../core/config/resolve.js';
import { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { overloaded } from '../log/sequencer.js';
import type { MirrorStatus } from '../storage/s3/mirror.js';
import { authenticate, unlimitedPath, WindowLimit } from './auth.js';
import { errorHandler } from './errors.js';
import { type AlertStats, metricsRoutes, serverMetrics } from './metrics.js';
import { adminRoutes } from './routes/admin.js';
import { consoleRoutes } from './routes/console.js';
import { eventRoutes } from './routes/events.js';
import { forgetRoutes } from './routes/forget.js';
import { readRoutes } from './routes/read.js';
import { exportRoutes, searchRoutes, streamRoutes } from './routes/search.js';
import { cloudtrailRoutes } from './routes/sources-cloudtrail.js';
import { kubernetesRoutes } from './routes/sources-kubernetes.js';
import { otlpRoutes } from './routes/sources-otlp.js';
import { tlogRoutes } from './routes/tlog.js';
import { validationRoutes } from './routes/validations.js';

export interface ServerOptions {
  /** Largest request body, bytes. */
  bodyLimit?: number;
  logger?: boolean | { level: string };
  /** HTTPS: PEM certificate chain and key; with `clientCa`, client certificates signed by it authenticate (mutual TLS). */
  tls?: { cert: string | Buffer; key: string | Buffer; clientCa?: string | Buffer };
  /** Requests per minute per principal, appends apart (those get backpressure: 503 and Retry-After) and the public log paths (unlimitedPath). */
  rateLimit?: number;
  /** Requests per minute per client address without credentials (tiles and /healthz apart). */
  anonymousLimit?: number;
  /** Most time to receive a whole request, headers and body, ms. */
  requestTimeout?: number;
  /** Most time to receive a request's headers, ms (at most `requestTimeout`). */
  headersTimeout?: number;
  /** Most time a connection may sit idle mid-request or mid-response, ms. */
  idleTimeout?: number;
  /** How long an idle keep-alive connection is kept for its next request, ms. */
  keepAliveTimeout?: number;
  /** Most open connections; more are closed as they arrive. */
  maxConnections?: number;
  /**
   * Most bytes of request bodies held at once (being received or handled), counted by
   * Content-Length (else the body limit): past it a request is answered 503 before its body is read.
   */
  maxBodyMemory?: number;
  /**
   * Addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client (comma-separated):
   * the per-address limits then apply to clients, not to the proxy.
   */
  trustProxy?: string;
  /** Refusals of one credential from one address per minute before it is answered 429 without checking. */
  denialLimit?: number;
  /** How far the S3 mirror has got (`stele serve --mirror`), for /healthz. */
  mirrorStatus?: () => MirrorStatus;
  /** The server's last self-validation, for /metrics. */
  validationStatus?: () => ValidationRun | null;
  /** RFC 3161 timestamping (`--tsa`), for POST /v1/timestamps. */
  timestamping?: Timestamping;
  /** Alert firings by rule and evaluation time, for /metrics. */
  alerts?: AlertStats;
  /** The witnesses (`--witness`): the checkpoint to serve (the newest a quorum cosigned) and each one's state. */
  witnessing?: { checkpoint: () => string; status: () => WitnessStatus[]; cosignedAt: () => number | null; quorum: number };
}

// The defaults of the settings table (src/core/config/settings.ts), which says why each is what it is.
export const DEFAULT_RATE_LIMIT = defaultOf('rateLimit');
export const DEFAULT_ANONYMOUS_LIMIT = defaultOf('anonymousLimit');
export const DEFAULT_DENIAL_LIMIT = defaultOf('denialLimit');
export const DEFAULT_REQUEST_TIMEOUT = defaultOf('requestTimeout');
export const DEFAULT_HEADERS_TIMEOUT = defaultOf('headersTimeout');
export const DEFAULT_IDLE_TIMEOUT = defaultOf('idleTimeout');
export const DEFAULT_KEEP_ALIVE_TIMEOUT = defaultOf('keepAliveTimeout');
export const DEFAULT_MAX_CONNECTIONS = defaultOf('maxConnections');
export const DEFAULT_MAX_BODY_MEMORY = defaultOf('maxBodyMemory');
export const DEFAULT_BODY_LIMIT = defaultOf('bodyLimit');
/** Requests per keep-alive connection before it is closed, so clients spread over restarted or added servers. */
const MAX_REQUESTS_PER_SOCKET = 10_000;

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /** Client address and credential hash, for the denial throttle (auth.ts). */
    denialKey?: string;
    /** This request's refusal is already counted by the denial throttle. */
    denialCounted?: boolean;
    /** Gives back the body memory this request holds (maxBodyMemory). */
    releaseBody?: () => void;
  }
}

/** The routes that append client events: POST /v1/events and the source adapters. */
function isAppend(req: FastifyRequest): boolean {
  const route = req.routeOptions.url ?? '';
  return req.method === 'POST' && (route === '/v1/events' || route.startsWith('/v1/sources/'));
}

/** The HTTP API over an open Stele. Routes stay thin: parse, call one operation, format. */
export async function buildServer(stele: Stele, opts: ServerOptions = {}): Promise<FastifyInstance> {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const requestTimeout = opts.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT;
  // Node checks the header and request timeouts every connectionsCheckingInterval (30 s by default).
  const http = {
    headersTimeout: Math.min(opts.headersTimeout ?? DEFAULT_HEADERS_TIMEOUT, requestTimeout),
    connectionsCheckingInterval: Math.max(250, Math.min(5_000, Math.floor(requestTimeout / 4))),
  };
  const app = Fastify({
    requestTimeout,
    connectionTimeout: opts.idleTimeout ?? DEFAULT_IDLE_TIMEOUT,
    keepAliveTimeout: opts.keepAliveTimeout ?? DEFAULT_KEEP_ALIVE_TIMEOUT,
    maxRequestsPerSocket: MAX_REQUESTS_PER_SOCKET,
    http,
    ...(opts.trustProxy ? { trustProxy: opts.trustProxy } : {}),
    ...(opts.tls
      ? {
          https: {
            ...http,
            // A TLS handshake gets as long as request headers do.
            handshakeTimeout: http.headersTimeout,
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
  app.server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;

  // Bodies stay bytes: the events route hands them to an ingest worker, which checks UTF-8 and
  // parses them off the main thread.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'application/x-ndjson'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );

  const throttle = new WindowLimit(opts.denialLimit ?? DEFAULT_DENIAL_LIMIT);
  /** Every refused credential or permission is recorded (coalesced) in the log. */
  const denied = (req: FastifyRequest, err: SteleError) => {
    if (err.status === 401 && req.denialKey && !req.denialCounted) throttle.note(req.denialKey);
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

  const measured = serverMetrics(stele, {
    ...(opts.mirrorStatus ? { mirrorStatus: opts.mirrorStatus } : {}),
    ...(opts.validationStatus ? { validationStatus: opts.validationStatus } : {}),
    ...(opts.witnessing ? { witnessStatus: opts.witnessing.status } : {}),
    ...(opts.alerts ? { alerts: opts.alerts } : {}),
  });
  app.setErrorHandler(
    errorHandler({
      bodyLimit,
      onAnswered: (code) => measured.error(code),
      onRefused(req, err) {
        denied(req, err);
        // Appends escape the per-principal rate limit; their refusals are throttled like bad tokens.
        if (err.status === 403 && req.denialKey && isAppend(req)) throttle.note(req.denialKey);
      },
    }),
  );
  app.setNotFoundHandler(async (req) => {
    throw new SteleError('not_found', `no route for ${req.method} ${req.url}`);
  });

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

  app.addHook('onRequest', authenticate(stele, throttle, new WindowLimit(opts.anonymousLimit ?? DEFAULT_ANONYMOUS_LIMIT)));
  // After authentication, before the body: even authenticated clients cannot make the server hold
  // more than maxBodyMemory of bodies at once (4096 connections × 16 MiB would be 64 GiB).
  const maxBodyMemory = opts.maxBodyMemory ?? DEFAULT_MAX_BODY_MEMORY;
  let bodyMemory = 0;
  app.addHook('preParsing', async (req, reply, payload) => {
    if (req.method === 'GET' || req.method === 'HEAD') return payload;
    const declared = Number(req.headers['content-length']);
    const size = Math.min(Number.isSafeInteger(declared) && declared >= 0 ? declared : bodyLimit, bodyLimit);
    if (bodyMemory > 0 && bodyMemory + size > maxBodyMemory) {
      throw overloaded(`${bodyMemory} bytes of request bodies are in hand`);
    }
    bodyMemory += size;
    let held = true;
    req.releaseBody = () => {
      if (held) bodyMemory -= size;
      held = false;
    };
    reply.raw.once('close', req.releaseBody); // also when the connection drops mid-request
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    req.releaseBody?.();
    measured.request(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });
  await app.register(rateLimit, {
    // After authentication, so the limit is per principal, not per proxy address. Requests without
    // credentials were limited per address before authentication (auth.ts). Appends are not
    // counted: a steady stream of them is the point of the log, and the write path answers its
    // own overload with 503 and Retry-After; their refusals are throttled by `throttle`.
    hook: 'preHandler',
    max: opts.rateLimit ?? DEFAULT_RATE_LIMIT,
    timeWindow: 60_000,
    allowList: (req) => !req.principal || unlimitedPath(req.url) || isAppend(req),
    keyGenerator: (req) => (req.principal ? `${req.principal.method}:${req.principal.id}` : `ip:${req.ip}`),
    errorResponseBuilder: (_req, ctx) =>
      new SteleError('rate_limited', `more than ${ctx.max} requests a minute; retry in ${Math.ceil(ctx.ttl / 1000)} s`),
  });

  await app.register(metricsRoutes(stele, measured));
  await app.register(eventRoutes(stele));
  await app.register(kubernetesRoutes(stele));
  await app.register(cloudtrailRoutes(stele));
  await app.register(otlpRoutes(stele));
  await app.register(adminRoutes(stele, opts.timestamping));
  await app.register(readRoutes(stele, opts.mirrorStatus, opts.witnessing));
  await app.register(searchRoutes(stele));
  await app.register(exportRoutes(stele));
  await app.register(streamRoutes(stele));
  await app.register(forgetRoutes(stele));
  await app.register(tlogRoutes(stele, opts.witnessing?.checkpoint));
  await app.register(consoleRoutes(stele));
  await app.register(validationRoutes(stele));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
