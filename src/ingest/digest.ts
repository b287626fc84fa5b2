/**
 * The content digest of an event, kept beside its id so that a repeated id is told apart: the
 * same event sent again (a retry) gets its first index back, another event claiming the id is
 * refused (409). Pure, and cheap: it hashes the canonical event bytes the leaf is built from.
 *
 * "The same event" is the client's event as normalised. What the server fills in per request is
 * left out: `received` is not in the event bytes, and a `time` the server defaulted from
 * `received` is cut off (canonical JSON sorts `time` last). `actor.verified` and `actor.issuer`
 * stay in: the server derives them from the principal, so a retry by the same principal has the
 * same ones, and a principal claiming another's verified action does not.
 *
 * The ingest principal and `source.agent` (the software that delivered the event) are not
 * hashed: the same event delivered by two paths (the Kubernetes webhook and its log files with
 * another key, CloudTrail through EventBridge and through `stele import`) is stored once, as
 * the sources promise. That opens no squatting: an identical
 * event needs the same action, source kind and actor, so only a principal the policy lets write
 * that very event can send it first, and what is stored is then exactly that event.
 *
 * Keyed (SHA-256 of a secret 32-byte key derived from the server's subject pepper, then the
 * bytes) and truncated to 16 bytes: the digest file holds nothing that could confirm a guess about
 * an event's content. Not HMAC: HMAC costs four times as much per event here (its key set-up
 * runs per call), and what HMAC adds over a secret prefix, resisting length extension, matters
 * only for tags an attacker presents; these digests are only compared with ones the server made.
 */
import { createHash, createHmac, hash } from 'node:crypto';
import { canonicalBytes } from '../event/canonical.js';
import type { Event } from '../event/types.js';
import { DIGEST_BYTES } from '../log/id-index.js';

/** The digest key, derived from the server's pepper with its own label (never the pepper itself). */
export function digestKey(pepper: Uint8Array): Buffer {
  return createHmac('sha256', pepper).update('stele/event-digest/v1').digest();
}

/**
 * Digest of `event`, whose canonical bytes are `bytes`. `defaultedTime` is the `time` the server
 * filled in (the client sent none), which the digest leaves out.
 */
export function eventDigest(key: Buffer, event: Event, bytes: Buffer, defaultedTime?: string): Buffer {
  let end = bytes.length;
  if (defaultedTime !== undefined) {
    // no time from the client
    const tail = `,"time":"${defaultedTime}"}`; // ASCII: formatMicros output
    const cut = bytes.length - tail.length;
    if (!(cut > 0 && bytes.toString('latin1', cut) === tail)) {
      // Not the layout canonical JSON gives today; encode again rather than hash the time.
      const { time: _t, ...rest } = event;
      return createHash('sha256')
        .update(key)
        .update('-')
        .update(canonicalBytes(withoutAgent(rest)))
        .digest()
        .subarray(0, DIGEST_BYTES);
    }
    end = cut;
  }
  // SHA-256(key ‖ mark ‖ bytes without the agent), in one one-shot call over a scratch buffer:
  // cheaper than a Hash object per event.
  const agent = agentSpan(bytes, end);
  const need = key.length + 1 + end;
  if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  key.copy(scratch, 0);
  let p = key.length;
  scratch[p++] = defaultedTime === undefined ? 0x74 : 0x2d; // 't': the client's own time, inside the bytes; '-': none
  if (agent) {
    p += bytes.copy(scratch, p, 0, agent[0]);
    p += bytes.copy(scratch, p, agent[1], end);
  } else p += bytes.copy(scratch, p, 0, end);
  return hash('sha256', scratch.subarray(0, p), 'buffer').subarray(0, DIGEST_BYTES);
}

let scratch = Buffer.allocUnsafe(4096);

const SOURCE = Buffer.from('"source":{');
const AGENT = Buffer.from('"agent":"');

/**
 * Where `"agent":"…",` of the event's own `source` lies in its canonical bytes (before `end`), or
 * null. Canonical JSON sorts `source` after every object-valued key but before `subject` and
 * `time`, which are strings (their quotes escaped), so the last `"source":{` is the event's own;
 * and `agent` sorts first in it. The string ends at the first quote not escaped by a backslash.
 */
function agentSpan(bytes: Buffer, end: number): [number, number] | null {
  const at = bytes.lastIndexOf(SOURCE, end);
  if (at < 0) return null;
  const a = at + SOURCE.length;
  if (bytes.compare(AGENT, 0, AGENT.length, a, a + AGENT.length) !== 0) return null;
  let i = a + AGENT.length;
  while (i < end && bytes[i] !== 0x22) i += bytes[i] === 0x5c ? 2 : 1;
  if (i >= end) return null;
  return [a, bytes[i + 1] === 0x2c ? i + 2 : i + 1];
}

function withoutAgent(e: Omit<Event, 'time'>): Omit<Event, 'time'> {
  if (e.source.agent === undefined) return e;
  const { agent: _a, ...source } = e.source;
  return { ...e, source };
}
