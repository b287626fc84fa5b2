/**
 * The one place an error becomes an HTTP answer. Routes and hooks throw (a SteleError for anything
 * the client should hear about); Fastify's own errors (schema validation, content type, body size)
 * are mapped to the same codes; anything else is a bug or an I/O failure and answers a generic 500.
 * Every error answer has one shape, `{"error": {"code", "message", ...detail}}`, with the status of
 * the code in ERROR_STATUS (src/core/errors.ts).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { SteleError } from '../core/errors.js';

/** What a 500 tells the client: the details are in the server's log, not in the answer. */
export const INTERNAL_MESSAGE = 'internal error; see the server log';

/** The JSON body of an error answer; a 500 says nothing of its internals. */
export function errorBody(err: SteleError): { error: Record<string, unknown> } {
  if (err.status === 500) return { error: { code: err.code, message: INTERNAL_MESSAGE } };
  return { error: { ...err.detail, code: err.code, message: err.message } };
}

/**
 * The SteleError a Fastify error stands for, or undefined for one that is not the client's doing.
 * `bodyLimit` is the server's, for the 413 message.
 */
export function fromFramework(err: FastifyError, bodyLimit: number): SteleError | undefined {
  if (err.validation)
    return new SteleError('bad_request', `${err.validationContext ?? 'request'} ${err.message}`, { cause: err });
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new SteleError('body_too_large', `the request body is larger than the limit of ${bodyLimit} bytes`, { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new SteleError('unsupported_media_type', 'send application/json or application/x-ndjson', { cause: err });
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new SteleError('bad_request', err.message, { cause: err });
  }
  return undefined;
}

export interface ErrorHandlerOptions {
  bodyLimit: number;
  /** Called for every 401 and 403 before the answer is sent (the server records and throttles refusals). */
  onRefused(req: FastifyRequest, err: SteleError): void;
  /** Called for every error answer, with its code (the metrics count them). */
  onAnswered?(code: string): void;
}

/** The server's error handler (app.setErrorHandler). */
export function errorHandler(o: ErrorHandlerOptions) {
  return (thrown: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    // Refused before its body arrived (no credential, too large, throttled): close the connection
    // rather than read the rest, which an attacker may send slowly or never.
    if (!req.raw.complete && req.raw.httpVersionMajor === 1) reply.header('connection', 'close');
    const err = thrown instanceof SteleError ? thrown : fromFramework(thrown, o.bodyLimit);
    o.onAnswered?.(err?.code ?? 'internal');
    if (!err || err.status === 500) {
      req.log.error({ err: thrown }, 'request failed');
      return send(reply, err ?? new SteleError('internal', thrown.message, { cause: thrown }));
    }
    // Backpressure (a full write queue) says when to come back.
    if (err.status === 503 && typeof err.detail?.retryAfter === 'number')
      reply.header('retry-after', String(err.detail.retryAfter));
    if (err.status === 401 || err.status === 403) o.onRefused(req, err);
    if (err.status === 401) {
      reply.header('www-authenticate', `Bearer realm="stele"${req.headers.authorization ? ', error="invalid_token"' : ''}`);
    }
    return send(reply, err);
  };
}

function send(reply: FastifyReply, err: SteleError): FastifyReply {
  return reply.code(err.status).type('application/json; charset=utf-8').send(errorBody(err));
}
