/**
 * The content digest of an event, kept beside its id so that a repeated id is told apart: the
 * same event sent again (a retry) gets its first index back, another event claiming the id is
 * refused (409). Pure, and cheap: it hashes the canonical event bytes the leaf is built from.
 *
 * "The same event" is the client's event as normalised, written by the same principal. What the
 * server fills in per request is left out: `received` is not in the event bytes, and a `time`
 * the server defaulted from `received` is cut off (canonical JSON sorts `time` last). What the
 * server derives from the principal (`actor.verified`, `actor.issuer`) is a function of the
 * principal and the event, and the principal is hashed too, so it changes nothing for a retry,
 * while the same id from another principal is another event.
 *
 * Keyed (HMAC under a key derived from the server's subject pepper) and truncated to 16 bytes:
 * the digest file holds nothing that could confirm a guess about an event's content.
 */
import { createHmac } from 'node:crypto';
import { canonicalBytes } from '../event/canonical.js';
import type { Event, Ingest } from '../event/types.js';
import { DIGEST_BYTES } from '../log/id-index.js';

/** The digest key, derived from the server's pepper with its own label (never the pepper itself). */
export function digestKey(pepper: Uint8Array): Buffer {
  return createHmac('sha256', pepper).update('stele/event-digest/v1').digest();
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

/**
 * Digest of `event`, whose canonical bytes are `bytes`, written through `ingest`. `defaultedTime`
 * is the `time` the server filled in (the client sent none), which the digest leaves out.
 */
export function eventDigest(key: Buffer, ingest: Ingest, event: Event, bytes: Buffer, defaultedTime?: string): Buffer {
  const h = createHmac('sha256', key);
  const who = Buffer.from(`${ingest.method}\n${ingest.principal}`);
  h.update(u32(who.length)).update(who);
  if (defaultedTime === undefined) {
    h.update('t'); // the client's own time, inside the bytes
    h.update(bytes);
  } else {
    h.update('-'); // no time from the client
    const tail = `,"time":"${defaultedTime}"}`; // ASCII: formatMicros output
    const cut = bytes.length - tail.length;
    if (cut > 0 && bytes.toString('latin1', cut) === tail) {
      h.update(bytes.subarray(0, cut));
    } else {
      // Not the layout canonical JSON gives today; encode again rather than hash the time.
      const { time: _t, ...rest } = event;
      h.update(canonicalBytes(rest));
    }
  }
  return h.digest().subarray(0, DIGEST_BYTES);
}
