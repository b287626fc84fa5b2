import { randomBytes } from 'node:crypto';
import { readTimestampResponse, type TimestampToken, timestampRequest } from './rfc3161.js';

/** Asks the TSA at `url` (RFC 3161 over HTTP, RFC 3161 section 3.4) for a token over `digest`. */
export async function requestTimestamp(url: string, digest: Uint8Array, timeoutMs = 15_000): Promise<TimestampToken> {
  const nonce = randomBytes(8);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/timestamp-query', accept: 'application/timestamp-reply' },
    body: timestampRequest(digest, nonce),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = Buffer.from(await res.arrayBuffer());
  if (!res.ok) throw new Error(`the TSA ${url} answered HTTP ${res.status}`);
  return readTimestampResponse(body, digest, nonce);
}
