import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Stele } from '../../app/stele.js';
import { SteleError } from '../../core/errors.js';
import { appendOtlpLogs, decodeLogsJson, decodeLogsProto, encodeStatus } from '../../sources/otlp.js';
import { principalOf } from '../auth.js';

const PROTOBUF = 'application/x-protobuf';

const mediaType = (req: FastifyRequest) => (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';

/** google.rpc.Code for an HTTP status (OTLP clients may record it; they act on the HTTP status). */
function rpcCode(status: number): number {
  switch (status) {
    case 400:
    case 415:
      return 3; // INVALID_ARGUMENT
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 5; // NOT_FOUND
    case 409:
      return 6; // ALREADY_EXISTS
    case 413:
      return 11; // OUT_OF_RANGE
    case 429:
      return 8; // RESOURCE_EXHAUSTED
    case 503:
      return 14; // UNAVAILABLE
    default:
      return status >= 500 ? 13 : 2; // INTERNAL, UNKNOWN
  }
}

/** The request body with its Content-Encoding undone; the decompressed size is bounded by the body limit. */
function decoded(req: FastifyRequest, limit: number): Buffer {
  const body = req.body as Buffer;
  const enc = String(req.headers['content-encoding'] ?? '')
    .trim()
    .toLowerCase();
  if (enc === '' || enc === 'identity' || enc === 'none') return body;
  const opts = { maxOutputLength: limit };
  try {
    switch (enc) {
      case 'gzip':
      case 'x-gzip':
        return gunzipSync(body, opts);
      case 'deflate':
        // HTTP "deflate" is zlib-wrapped; some clients send raw deflate.
        try {
          return inflateSync(body, opts);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw err;
          return inflateRawSync(body, opts);
        }
      case 'br':
        return brotliDecompressSync(body, opts);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new SteleError('body_too_large', `the decompressed request body is larger than the limit of ${limit} bytes`);
    }
    throw new SteleError('bad_request', `the request body is not valid ${enc} (${(err as Error).message})`, { cause: err });
  }
  throw new SteleError('unsupported_media_type', `Content-Encoding "${enc}" is not supported; send gzip, deflate, br or none`);
}

/**
 * OTLP/HTTP logs (opentelemetry.io/docs/specs/otlp/#otlphttp): an OpenTelemetry Collector's
 * `otlphttp` exporter, or any SDK's OTLP log exporter, points its logs endpoint here. The mapping
 * to events is src/sources/otlp.ts. Answers follow the OTLP spec: 200 with an empty
 * ExportLogsServiceResponse once every record is durable; errors as a google.rpc.Status in the
 * request's encoding (partial success is never used: a request is all or nothing).
 */
export const otlpRoutes = (stele: Stele) => async (app: FastifyInstance) => {
  const limit = app.initialConfig.bodyLimit ?? 16 * 1024 * 1024;
  // Protobuf bodies as bytes, for this plugin's route only (fastify scopes the parser): elsewhere
  // they stay an unsupported media type.
  app.addContentTypeParser(PROTOBUF, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // Every error answer of this route — including authentication and rate-limit refusals, which the
  // root error handler records and formats as {"error": {...}} — becomes a google.rpc.Status, in
  // protobuf or JSON like the request. Retry-After and the status code are kept.
  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (reply.statusCode < 400) return payload;
    let message = `HTTP ${reply.statusCode}`;
    try {
      const j = JSON.parse(String(payload)) as { error?: { message?: string } };
      if (j.error?.message) message = j.error.message;
    } catch {
      // not the JSON error shape: keep the generic message
    }
    const code = rpcCode(reply.statusCode);
    if (mediaType(req) === PROTOBUF) {
      reply.type(PROTOBUF);
      return encodeStatus(code, message);
    }
    reply.type('application/json; charset=utf-8');
    return JSON.stringify({ code, message });
  });

  app.post(
    '/v1/sources/otlp/v1/logs',
    {
      schema: {
        summary: 'OpenTelemetry logs (OTLP/HTTP)',
        description:
          'Body: an OTLP ExportLogsServiceRequest, as protobuf (Content-Type: application/x-protobuf) or OTLP JSON ' +
          '(application/json); Content-Encoding gzip, deflate or br accepted. Each LogRecord becomes one event by the ' +
          'attribute conventions of docs/sources/otlp.md (stele.action or the event name, stele.actor.id / enduser.id / user.id, ' +
          'service.name, stele.outcome or the severity, ...). All or nothing: a record that does not map refuses the ' +
          'request with 400 and a google.rpc.Status naming it. Answers an empty ExportLogsServiceResponse once durable.',
        security: [{ bearer: [] }],
      },
    },
    async (req, reply) => {
      const principal = principalOf(req);
      const type = mediaType(req);
      if (type !== PROTOBUF && type !== 'application/json') {
        throw new SteleError('unsupported_media_type', `send OTLP as ${PROTOBUF} or application/json, not ${type || 'no type'}`);
      }
      const body = decoded(req, limit);
      const logs = type === PROTOBUF ? decodeLogsProto(body) : decodeLogsJson(body);
      await appendOtlpLogs(stele, principal, logs);
      // ExportLogsServiceResponse with no partial_success: zero bytes, or {} in JSON.
      if (type === PROTOBUF) return reply.type(PROTOBUF).send(Buffer.alloc(0));
      return reply.type('application/json; charset=utf-8').send('{}');
    },
  );
};
