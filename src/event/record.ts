/**
 * The leaf record (DESIGN.md, "The record"): its time format, its byte encoding (UTF-8 of RFC 8785
 * canonical JSON) and its strict decoding.
 */
import { performance } from 'node:perf_hooks';
import { SteleError } from '../core/errors.js';
import { canonicalBytes, canonicalBytesFramed } from './canonical.js';
import { CODEC, compressPlaintext, decompressPlaintext } from './compress.js';
import type { Event, Ingest, LeafContent, LeafRecord } from './types.js';

/** An entry bundle stores each entry after a big-endian uint16 length (c2sp.org/tlog-tiles). */
export const MAX_LEAF_BYTES = 65535;

// ---------------------------------------------------------------------------------------------
// Time

const MIN_SEC = -62167219200; // 0000-01-01T00:00:00Z
const END_SEC = 253402300800; // 10000-01-01T00:00:00Z: RFC 3339 years have 4 digits
const END_MICROS = BigInt(END_SEC) * 1_000_000n;

// Consecutive calls mostly fall in the same second: reuse its "YYYY-MM-DDTHH:MM:SS." prefix.
let cachedSec = Number.NaN;
let cachedPrefix = '';

function secondPrefix(sec: number): string {
  if (sec !== cachedSec) {
    if (!(sec >= MIN_SEC && sec < END_SEC)) throw new RangeError(`formatMicros: second ${sec} is outside years 0000-9999`);
    cachedPrefix = new Date(sec * 1000).toISOString().slice(0, 20);
    cachedSec = sec;
  }
  return cachedPrefix;
}

/** Microseconds since the Unix epoch → `2026-11-22T10:15:03.140211Z` (UTC, always 6 fractional digits). */
export function formatMicros(micros: bigint): string {
  const n = Number(micros);
  let sec: number;
  let frac: number;
  if (Number.isSafeInteger(n)) {
    // Exact in doubles up to year 2255; the division may round, so fix the remainder's range.
    sec = Math.floor(n / 1e6);
    frac = n - sec * 1e6;
    if (frac < 0) {
      sec -= 1;
      frac += 1e6;
    } else if (frac >= 1e6) {
      sec += 1;
      frac -= 1e6;
    }
  } else {
    let s = micros / 1_000_000n;
    let f = micros % 1_000_000n;
    if (f < 0n) {
      s -= 1n;
      f += 1_000_000n;
    }
    sec = Number(s);
    frac = Number(f);
  }
  return `${secondPrefix(sec)}${String(1e6 + frac).slice(1)}Z`;
}

const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|([+-])(\d{2}):(\d{2}))$/;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
// Date.UTC maps years 0-99 to 1900-1999; shifting by 400 Gregorian years (an exact number of days) avoids that.
const MS_400_YEARS = 146097 * 86400000;

/**
 * An RFC 3339 date-time (upper-case T and Z, offset with a colon, up to 9 fractional digits, as
 * `eventSchema` accepts) → microseconds since the Unix epoch. Digits past the sixth are dropped; a
 * leap second (:60) counts as the first instant of the next minute. Throws SteleError
 * 'invalid_time' (400).
 */
export function parseMicros(s: string): bigint {
  const m = TIME_RE.exec(s);
  const bad = (why: string) => new SteleError('invalid_time', `${JSON.stringify(s)} ${why}`);
  if (!m) throw bad('is not an RFC 3339 date-time such as 2026-11-22T10:15:03.140211Z');
  const y = +(m[1] as string);
  const mo = +(m[2] as string);
  const d = +(m[3] as string);
  const h = +(m[4] as string);
  const mi = +(m[5] as string);
  const se = +(m[6] as string);
  if (mo < 1 || mo > 12) throw bad('has no such month');
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  if (d < 1 || d > (mo === 2 && leap ? 29 : (DAYS[mo - 1] as number))) throw bad('has no such day');
  if (h > 23 || mi > 59 || se > 60) throw bad('has no such time of day');
  let offsetMin = 0;
  if (m[8] !== undefined) {
    const oh = +(m[9] as string);
    const om = +(m[10] as string);
    if (oh > 23 || om > 59) throw bad('has no such offset');
    offsetMin = (m[8] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = Date.UTC(y + 400, mo - 1, d, h, mi, se) - MS_400_YEARS - offsetMin * 60000;
  const frac = m[7] === undefined ? 0 : +m[7].padEnd(6, '0').slice(0, 6);
  const total = ms * 1000 + frac;
  return Number.isSafeInteger(total) ? BigInt(total) : BigInt(ms) * 1000n + BigInt(frac);
}

// Wall clock at microsecond resolution: the monotonic clock plus an offset to the wall clock.
// The offset is checked against Date.now() at most once a second and re-anchored when they
// disagree by more than Date.now()'s millisecond granularity (NTP step, suspend); the result is
// clamped so it never goes backwards within the process (a backward clock step holds it still
// until the wall clock catches up).
let wallOffsetMs = performance.timeOrigin;
let lastCheckMs = Number.NEGATIVE_INFINITY;
let lastMicros = 0;

/** Current wall-clock time in microseconds since the Unix epoch; non-decreasing within the process. */
export function nowMicros(): bigint {
  const mono = performance.now();
  if (mono - lastCheckMs >= 1000) {
    lastCheckMs = mono;
    const wall = Date.now(); // whole ms, truncated: the true time is in [wall, wall + 1)
    const est = wallOffsetMs + mono;
    if (est < wall - 1 || est > wall + 2) wallOffsetMs = wall + 0.5 - mono;
  }
  let us = Math.floor((wallOffsetMs + mono) * 1000);
  if (us < lastMicros) us = lastMicros;
  lastMicros = us;
  return BigInt(us);
}

// ---------------------------------------------------------------------------------------------
// Encoding

function tooLarge(n: number, as: 'leaf' | 'sealed' | 'plaintext' = 'leaf'): SteleError {
  const what = {
    leaf: 'a leaf',
    sealed: 'a sealed leaf (compressed and encrypted)',
    plaintext: 'canonical JSON with who sent it (what a sealed leaf encrypts)',
  }[as];
  return new SteleError('too_large', `event is ${n} bytes as ${what}; the limit is ${MAX_LEAF_BYTES} bytes`);
}

/**
 * The leaf bytes: UTF-8 of canonicalize(record), written directly (canonicalBytes). Throws
 * SteleError 'too_large' (413) past MAX_LEAF_BYTES, and canonicalize's 'invalid_json' (400) for
 * values JSON cannot carry.
 */
export function encodeLeaf(record: LeafRecord): Buffer {
  const bytes = canonicalBytes(record);
  if (bytes.length > MAX_LEAF_BYTES) throw tooLarge(bytes.length);
  return bytes;
}

/** The version of the plain leaves this code writes (see LeafRecord). */
export const LEAF_VERSION = 2;
/** The version of the sealed leaves this code writes: binary, the plaintext compressed (see buildSealedLeaf). */
export const SEALED_LEAF_VERSION = 3;

const EVENT_PREFIX = Buffer.from('{"event":');
let lastSuffix: { method: string; principal: string; received: bigint; bytes: Buffer } | null = null;

/**
 * The canonical bytes that follow `"event":…` in a plain leaf: `,"ingest":{…},"received":"…","v":2}`.
 * Every event of a request shares them, so they are made once (canonical JSON sorts `event` first).
 */
function leafSuffix(ingest: Ingest, received: bigint): Buffer {
  const s = lastSuffix;
  if (s && s.received === received && s.method === ingest.method && s.principal === ingest.principal) return s.bytes;
  const rest = canonicalBytes({
    ingest: { method: ingest.method, principal: ingest.principal },
    received: formatMicros(received),
    v: LEAF_VERSION,
  });
  rest[0] = 0x2c; // the rest object's "{" becomes the "," after the event
  lastSuffix = { method: ingest.method, principal: ingest.principal, received, bytes: rest };
  return rest;
}

/**
 * encodeLeaf of a plain (unencrypted) record for `event`, received at `receivedMicros`. A plain
 * leaf is public by construction (anyone who can fetch the log reads it), `ingest` included.
 * `onEvent` gets the canonical event bytes inside it (for the content digest, without encoding twice).
 */
export function buildLeaf(event: Event, ingest: Ingest, receivedMicros: bigint, onEvent?: (bytes: Buffer) => void): Buffer {
  const suffix = leafSuffix(ingest, receivedMicros);
  const bytes = canonicalBytesFramed(EVENT_PREFIX, 'event', event, suffix);
  if (bytes.length > MAX_LEAF_BYTES) throw tooLarge(bytes.length);
  onEvent?.(bytes.subarray(EVENT_PREFIX.length, bytes.length - suffix.length));
  return bytes;
}

let lastAad: { received: string; key: string; bytes: Buffer } | null = null;

/**
 * What a v2 sealed leaf's AEAD binds besides its plaintext: the canonical JSON of the leaf's other
 * fields, `{"key":…,"received":…,"v":2}`, so ciphertext cannot be moved to another leaf.
 */
export function sealedAad(key: string, received: string): Buffer {
  const a = lastAad;
  if (a && a.key === key && a.received === received) return a.bytes;
  const bytes = canonicalBytes({ key, received, v: LEAF_VERSION });
  lastAad = { received, key, bytes };
  return bytes;
}

/** The AAD of a sealed leaf of any version (v1 bound its clear `ingest` too; v3 its header). */
export function leafAad(record: LeafRecord): Buffer {
  if (record.v === 3) return sealedHeader(parseMicros(record.received), record.key as string, codecOf(record));
  if (record.v === 1) {
    const ingest = record.ingest as Ingest;
    return canonicalBytes({
      ingest: { method: ingest.method, principal: ingest.principal },
      key: record.key,
      received: record.received,
      v: 1,
    });
  }
  return sealedAad(record.key as string, record.received);
}

let lastIngest: { method: string; principal: string; bytes: Buffer } | null = null;

/** `,"ingest":{…}}`: what follows the event in a v2 sealed plaintext (cached like leafSuffix). */
function ingestSuffix(ingest: Ingest): Buffer {
  const s = lastIngest;
  if (s && s.method === ingest.method && s.principal === ingest.principal) return s.bytes;
  const rest = canonicalBytes({ ingest: { method: ingest.method, principal: ingest.principal } });
  rest[0] = 0x2c;
  lastIngest = { method: ingest.method, principal: ingest.principal, bytes: rest };
  return rest;
}

/** The plaintext a v2 sealed leaf encrypts: the canonical JSON `{"event":…,"ingest":…}`. */
export function sealedPlaintext(event: Event, ingest: Ingest): Buffer {
  return canonicalBytesFramed(EVENT_PREFIX, 'event', event, ingestSuffix(ingest));
}

/**
 * A sealed leaf (version 3). Binary, since JSON would base64 the ciphertext (a third more) and
 * name every field (C2SP entries are opaque bytes; a JSON leaf starts with `{`, this with 0x03):
 *
 *     0x03 ‖ received (uint64 big-endian, µs since the Unix epoch) ‖ key id length (uint8) ‖
 *     key id (ASCII) ‖ compression (uint8: 0 none, 1 zstd with dictionary leaf-1) ‖ sealed
 *
 * `sealed` (src/keys/seal.ts) encrypts sealedPlaintext(event, ingest), compressed on its own with
 * the leaf dictionary (src/event/compress.ts) unless that does not make it smaller; the AEAD binds
 * every byte before it (sealedHeader), so ciphertext cannot be moved to another leaf. The leaf
 * names nobody: once the key is destroyed, neither the event nor who sent it can be read.
 * Refused (413) when the plaintext or the leaf is over MAX_LEAF_BYTES.
 */
export function buildSealedLeaf(
  event: Event,
  ingest: Ingest,
  receivedMicros: bigint,
  key: string,
  seal: (plaintext: Uint8Array, aad: Buffer) => Buffer,
  onEvent?: (bytes: Buffer) => void,
): Buffer {
  const suffix = ingestSuffix(ingest);
  const plain = canonicalBytesFramed(EVENT_PREFIX, 'event', event, suffix);
  if (plain.length > MAX_LEAF_BYTES) throw tooLarge(plain.length, 'plaintext');
  onEvent?.(plain.subarray(EVENT_PREFIX.length, plain.length - suffix.length));
  const { codec, bytes: packed } = compressPlaintext(plain);
  const header = sealedHeader(receivedMicros, key, codec);
  const sealed = seal(packed, header);
  const n = header.length + sealed.length;
  if (n > MAX_LEAF_BYTES) throw tooLarge(n, 'sealed');
  const leaf = Buffer.allocUnsafe(n);
  header.copy(leaf, 0);
  sealed.copy(leaf, header.length);
  return leaf;
}

const KEY_ID = /^[A-Za-z0-9_-]{1,255}$/;
let lastHeader: { received: bigint; key: string; codec: number; bytes: Buffer } | null = null;

/** The bytes of a v3 sealed leaf before `sealed`: its AAD (made once for a batch's shared values). */
export function sealedHeader(receivedMicros: bigint, key: string, codec: number): Buffer {
  const h = lastHeader;
  if (h && h.received === receivedMicros && h.key === key && h.codec === codec) return h.bytes;
  if (!KEY_ID.test(key)) throw new Error(`data key id ${JSON.stringify(key)} is not 1-255 base64url characters`);
  if (receivedMicros < 0n || receivedMicros >= END_MICROS)
    throw new RangeError(`received ${receivedMicros} is outside 1970-9999`);
  const bytes = Buffer.allocUnsafe(11 + key.length);
  bytes[0] = SEALED_LEAF_VERSION;
  bytes.writeBigUInt64BE(receivedMicros, 1);
  bytes[9] = key.length;
  bytes.write(key, 10, 'latin1');
  bytes[10 + key.length] = codec;
  lastHeader = { received: receivedMicros, key, codec, bytes };
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Decoding

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // a BOM is kept, so JSON.parse refuses it
const LEAF_KEYS = new Set(['v', 'received', 'ingest', 'event', 'key', 'sealed']);
const METHODS = new Set(['oidc', 'apikey', 'mtls', 'local']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

function ingestProblem(ingest: unknown): string | null {
  if (!isObject(ingest)) return 'has no ingest object';
  if (Object.keys(ingest).length !== 2 || !nonEmptyString(ingest.principal) || !METHODS.has(ingest.method as string)) {
    return 'ingest must be exactly {principal, method} with method oidc, apikey, mtls or local';
  }
  return null;
}

function eventProblem(e: unknown): string | null {
  if (!isObject(e)) return 'event is not an object';
  if (!nonEmptyString(e.id) || !nonEmptyString(e.time) || !nonEmptyString(e.action) || !nonEmptyString(e.outcome)) {
    return 'event lacks id, time, action or outcome';
  }
  if (!isObject(e.actor) || !isObject(e.source) || typeof e.actor.verified !== 'boolean') {
    return 'event lacks actor (with verified) or source';
  }
  return null;
}

/**
 * Parses leaf bytes strictly: at most MAX_LEAF_BYTES, valid UTF-8, JSON, the RFC 8785 canonical
 * form of itself, `v` 1 or 2, a `received` in formatMicros form, and either `event` with a valid
 * `ingest` or `key` + `sealed`. A v1 sealed leaf carries `ingest` in the clear; a v2 sealed leaf must
 * not (it is sealed with the event). A leaf that fails is corruption or a bug, not a caller's
 * mistake, so this throws a plain Error naming the problem.
 */
export function decodeLeaf(bytes: Uint8Array): LeafRecord {
  const fail = (why: string): never => {
    throw new Error(`leaf: ${why}`);
  };
  if (bytes.length > MAX_LEAF_BYTES) fail(`is ${bytes.length} bytes; the limit is ${MAX_LEAF_BYTES}`);
  if (bytes[0] === SEALED_LEAF_VERSION) return decodeSealedLeaf(bytes, fail);
  let text = '';
  try {
    text = utf8.decode(bytes);
  } catch {
    fail('is not valid UTF-8');
  }
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch (e) {
    fail(`is not JSON (${(e as Error).message})`);
  }
  if (!isObject(r)) return fail('is not a JSON object');
  for (const k of Object.keys(r)) if (!LEAF_KEYS.has(k)) fail(`has unknown field ${JSON.stringify(k)}`);
  if (r.v !== 1 && r.v !== 2) fail(`has version ${JSON.stringify(r.v)}; only 1 and 2 are known`);
  const received = r.received;
  if (typeof received !== 'string') return fail('has no received time');
  let ok = false;
  try {
    ok = formatMicros(parseMicros(received)) === received;
  } catch {
    // reported below
  }
  if (!ok) fail(`received ${JSON.stringify(received)} is not a UTC time with 6 fractional digits`);
  if (r.event !== undefined) {
    if (r.sealed !== undefined || r.key !== undefined) fail('has both event and key/sealed');
    const p = eventProblem(r.event);
    if (p) fail(p);
  } else if (!nonEmptyString(r.sealed) || !nonEmptyString(r.key)) {
    fail('has neither event nor key + sealed');
  }
  if (r.v === 2 && r.event === undefined) {
    if (r.ingest !== undefined) fail('is a version 2 sealed leaf with ingest in the clear (v2 seals it with the event)');
  } else {
    const p = ingestProblem(r.ingest);
    if (p) fail(p);
  }
  // Same bytes back, or the writer was not canonical (or the entry was altered): either way the
  // leaf is not one this code would have written.
  let canonical: Buffer | undefined;
  try {
    canonical = canonicalBytes(r);
  } catch (e) {
    fail((e as Error).message);
  }
  if (!canonical?.equals(bytes)) fail('is not in RFC 8785 canonical form');
  return r as unknown as LeafRecord;
}

/** The leaf's compression name (LeafRecord.compression) by codec byte, and back. */
const COMPRESSION = new Map<number, LeafRecord['compression']>([[CODEC.zstdLeaf1, 'zstd-leaf-1']]);
function codecOf(record: LeafRecord): number {
  return record.compression === 'zstd-leaf-1' ? CODEC.zstdLeaf1 : CODEC.none;
}

/**
 * A v3 sealed leaf (see buildSealedLeaf) as its record: `received` in formatMicros form, `sealed`
 * in base64 and `compression` named, like the JSON leaves, so every reader sees one shape. Every
 * field has one encoding, so the record encodes back to these bytes.
 */
function decodeSealedLeaf(bytes: Uint8Array, fail: (why: string) => never): LeafRecord {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 11) fail('is too short for a version 3 leaf');
  const micros = b.readBigUInt64BE(1);
  if (micros >= END_MICROS) fail(`received ${micros} µs is past the year 9999`);
  const n = b[9] as number;
  const key = b.toString('latin1', 10, 10 + n);
  if (!KEY_ID.test(key)) fail('has no data key id of 1-255 base64url characters');
  if (b.length <= 11 + n) fail('has no sealed event');
  const codec = b[10 + n] as number;
  const compression = COMPRESSION.get(codec);
  if (codec !== CODEC.none && !compression) fail(`has unknown compression ${codec}`);
  const record: LeafRecord = {
    v: 3,
    received: formatMicros(micros),
    key,
    sealed: b.toString('base64', 11 + n),
  };
  if (compression) record.compression = compression;
  return record;
}

/**
 * What the AEAD of a sealed leaf `record` protects, from what it opened to: for v3 the
 * plaintext decompressed (at most MAX_LEAF_BYTES), for v1 and v2 the same bytes.
 */
export function sealedPlaintextOf(record: LeafRecord, opened: Buffer): Buffer {
  return record.v === 3 ? decompressPlaintext(codecOf(record), opened, MAX_LEAF_BYTES) : opened;
}

/**
 * What the decrypted `plain` of a sealed leaf `record` says: for v1 the plaintext is the event and
 * `ingest` is the leaf's; for v2 it is `{"event":…,"ingest":…}`, and for v3 the same compressed
 * (sealedPlaintextOf). The AEAD already authenticated the
 * bytes, so a failure here is a bug or a forged key: a plain Error naming the problem.
 */
export function sealedContent(record: LeafRecord, opened: Buffer): LeafContent {
  const fail = (why: string): never => {
    throw new Error(`sealed leaf: ${why}`);
  };
  let v: unknown;
  try {
    v = JSON.parse(utf8.decode(sealedPlaintextOf(record, opened)));
  } catch (e) {
    fail(`the plaintext is not JSON (${(e as Error).message})`);
  }
  if (record.v === 1) return { event: v as Event, ingest: record.ingest as Ingest };
  if (!isObject(v)) return fail('the plaintext is not a JSON object');
  for (const k of Object.keys(v))
    if (k !== 'event' && k !== 'ingest') fail(`the plaintext has unknown field ${JSON.stringify(k)}`);
  const p = eventProblem(v.event) ?? ingestProblem(v.ingest);
  if (p) fail(`the plaintext: ${p}`);
  return { event: v.event as Event, ingest: v.ingest as Ingest };
}
