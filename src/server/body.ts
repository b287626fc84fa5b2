/** Reading request bodies (they arrive as bytes; see app.ts) for the routes that take JSON. */
import type { FastifyRequest } from 'fastify';
import { SteleError } from '../core/errors.js';
import { checkIntegers } from '../ingest/ijson.js';

/** OpenAPI: the route needs a bearer token. */
export const secured = { security: [{ bearer: [] }] };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The JSON value of a request body (bodies arrive as bytes; see app.ts), or 400. */
export function jsonBody(req: FastifyRequest): unknown {
  const body = req.body as Buffer | undefined;
  let text: string;
  try {
    text = utf8.decode(body ?? new Uint8Array());
  } catch {
    throw new SteleError('invalid_utf8', 'the request body is not valid UTF-8');
  }
  if (text.trim() === '') throw new SteleError('invalid_json', 'the request body is empty');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new SteleError('invalid_json', `the request body is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  // Source payloads (Kubernetes, CloudTrail) become events: an integer would be rounded into the log.
  checkIntegers(text, 'the request body: ');
  return v;
}

/** A JSON object body (bodies arrive as bytes; see app.ts). */
export function jsonObject(req: FastifyRequest): Record<string, unknown> {
  const v = jsonBody(req);
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new SteleError('invalid_json', 'the request body must be a JSON object');
  return v as Record<string, unknown>;
}

export function str(o: Record<string, unknown>, k: string, required: true): string;
export function str(o: Record<string, unknown>, k: string, required?: false): string | undefined;
export function str(o: Record<string, unknown>, k: string, required = false): string | undefined {
  const v = o[k];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') throw new SteleError('bad_request', `"${k}" must be a non-empty string`);
  return v;
}
