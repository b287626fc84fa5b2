/**
 * Validation and normalisation of client events: the first steps of ingest (validate → normalise →
 * authorise → seal → sequence). Everything here runs once per event on the hot path, so it avoids
 * allocation where it can and does nothing twice.
 */
import { randomBytes } from 'node:crypto';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { eventAt, SteleError } from '../core/errors.js';
import { nfc } from './nfc.js';
import { formatMicros } from './record.js';
import { eventSchema } from './schema.js';
import type { Event } from './types.js';

/** Maximum nesting of arrays/objects anywhere in an event; the event object itself is level 1. */
export const MAX_DEPTH = 32;

// ---------------------------------------------------------------------------------------------
// Depth and string scan

interface WellFormed {
  isWellFormed(): boolean; // ES2024, in Node >= 20; the project's lib is es2023
}

interface Finding {
  code: 'too_deep' | 'surrogate';
  path: string; // JSON pointer
  key: boolean; // the problem is in a key of the object at `path`, not a value
}

// The scan's stack is the path from the root to the current container (a real depth-first walk,
// so the pointer of a problem is known without building paths on the way). Module-level and
// reused: the scan is synchronous, and reuse keeps it allocation-free apart from Object.keys.
const stackNodes: unknown[] = [];
const stackKeys: (string[] | null)[] = [];
const stackNext: number[] = [];

function escapeSegment(s: string): string {
  return s.includes('~') || s.includes('/') ? s.replace(/~/g, '~0').replace(/\//g, '~1') : s;
}

/** Pointer of the child currently being visited at each level up to `sp` (exclusive). */
function pathTo(sp: number): string {
  let p = '';
  for (let j = 0; j < sp; j++) {
    const i = (stackNext[j] as number) - 1;
    const keys = stackKeys[j];
    p += `/${keys ? escapeSegment(keys[i] as string) : String(i)}`;
  }
  return p;
}

/**
 * Walks `root` iteratively (a million-deep array costs `max` steps, never the call stack) and
 * reports the first container nested deeper than `max`, or, when `strings`, the first string or
 * key holding a lone UTF-16 surrogate (which canonical JSON cannot carry).
 */
function scan(root: unknown, max: number, strings: boolean): Finding | undefined {
  if (typeof root !== 'object' || root === null) {
    if (strings && typeof root === 'string' && !(root as unknown as WellFormed).isWellFormed()) {
      return { code: 'surrogate', path: '', key: false };
    }
    return undefined;
  }
  if (max < 1) return { code: 'too_deep', path: '', key: false };
  stackNodes[0] = root;
  stackKeys[0] = Array.isArray(root) ? null : Object.keys(root);
  stackNext[0] = 0;
  let sp = 1;
  let high = 1; // slots used, to clear afterwards
  let found: Finding | undefined;
  while (sp > 0) {
    const top = sp - 1;
    const node = stackNodes[top] as Record<string, unknown> & unknown[];
    const keys = stackKeys[top] as string[] | null;
    const i = stackNext[top] as number;
    let child: unknown;
    if (keys === null) {
      if (i >= node.length) {
        sp--;
        continue;
      }
      child = node[i];
    } else {
      if (i >= keys.length) {
        sp--;
        continue;
      }
      const k = keys[i] as string;
      if (strings && !(k as unknown as WellFormed).isWellFormed()) {
        stackNext[top] = i + 1;
        found = { code: 'surrogate', path: pathTo(top), key: true };
        break;
      }
      child = node[k];
    }
    stackNext[top] = i + 1;
    if (typeof child === 'object') {
      if (child === null) continue;
      if (sp >= max) {
        found = { code: 'too_deep', path: pathTo(sp), key: false };
        break;
      }
      stackNodes[sp] = child;
      stackKeys[sp] = Array.isArray(child) ? null : Object.keys(child);
      stackNext[sp] = 0;
      sp++;
      if (sp > high) high = sp;
    } else if (strings && typeof child === 'string' && !(child as unknown as WellFormed).isWellFormed()) {
      found = { code: 'surrogate', path: pathTo(sp), key: false };
      break;
    }
  }
  // Drop references so the scan does not keep a request's body alive.
  for (let j = 0; j < high; j++) {
    stackNodes[j] = undefined;
    stackKeys[j] = null;
  }
  return found;
}

function depthMessage(f: Finding, max: number): string {
  return `${f.path || 'the value'} is nested deeper than the limit of ${max} levels`;
}

/**
 * Refuses a value that nests arrays/objects more than `max` levels deep (an object or array is one
 * level, a scalar none). Iterative: safe on any input JSON.parse can produce.
 */
export function checkDepth(value: unknown, max = MAX_DEPTH): void {
  const f = scan(value, max, false);
  if (f) throw new SteleError('too_deep', depthMessage(f, max), { detail: { pointer: f.path } });
}

// ---------------------------------------------------------------------------------------------
// Schema validation

// Compiled once at module load; allErrors:false stops at the first problem (cheaper, and a client
// fixes one thing at a time anyway). strictRequired off: the ai_agent `then: {required}` names a
// property declared in the enclosing `properties`, which that check does not see.
const ajv = new Ajv2020({ allErrors: false, strict: true, strictRequired: false });
addFormats.default(ajv, ['date-time']);
// `id`'s pattern already pins the UUID form; the format stays in the published schema for readers.
ajv.addFormat('uuid', true);
const validate = ajv.compile(eventSchema);

// Human wording for pattern/format failures, keyed by the schema location of the property.
const SHAPES: Record<string, string> = {
  '#/properties/id': 'must be a UUID such as 0193a5f0-7c1e-7d2a-9b3c-4d5e6f708192',
  '#/properties/time': 'must be an RFC 3339 date-time with upper-case T and an offset, such as 2026-11-22T10:15:03.140211Z',
  '#/properties/action':
    'must be a dotted lower-case name with at least two segments, such as git.commit or emacs.package.install',
  '#/properties/attachments/items/properties/sha256': 'must be 64 lower-case hex digits',
};

const ARTICLE: Record<string, string> = {
  object: 'an object',
  array: 'an array',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
};

/** The JSON pointer of what schema error `e` is about: the missing or extra property itself, or the value. */
function pointerOf(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'required') return `${e.instancePath}/${escapeSegment(String(p.missingProperty))}`;
  if (e.keyword === 'additionalProperties') return `${e.instancePath}/${escapeSegment(String(p.additionalProperty))}`;
  return e.instancePath;
}

function describe(e: ErrorObject): string {
  const at = e.instancePath || 'the event';
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const missing = pointerOf(e);
      if (e.schemaPath.includes('/then/')) return `${missing} is required when /actor/type is ai_agent`;
      return `${missing} is required`;
    }
    case 'additionalProperties': {
      const extra = pointerOf(e);
      if (extra === '/actor/issuer') return `${extra} is set by the server; a client cannot send it`;
      return `${extra} is not an allowed property`;
    }
    case 'type':
      return `${at} must be ${ARTICLE[String(p.type)] ?? String(p.type)}`;
    case 'enum':
      return `${at} must be one of ${(p.allowedValues as unknown[]).join(', ')}`;
    case 'const':
      if (e.instancePath === '/actor/verified') {
        return `${at} must be false or absent: actor.verified is set by the server; a client cannot claim it`;
      }
      return `${at} must be ${JSON.stringify(p.allowedValue)}`;
    case 'pattern':
    case 'format':
      return `${at} ${SHAPES[e.schemaPath.slice(0, e.schemaPath.lastIndexOf('/'))] ?? e.message ?? 'is malformed'}`;
    case 'minLength':
      return p.limit === 1 ? `${at} must not be empty` : `${at} must be at least ${p.limit} characters`;
    case 'maxLength':
      return `${at} must be at most ${p.limit} characters`;
    case 'maxItems':
      return `${at} must have at most ${p.limit} items`;
    case 'minimum':
      return `${at} must be at least ${p.limit}`;
    case 'maximum':
      return `${at} must be at most ${p.limit}`;
    default:
      return `${at} ${e.message ?? 'is invalid'}`;
  }
}

/**
 * Checks one client event against `eventSchema`, the nesting limit and canonical-JSON
 * representability. Throws SteleError 400: 'invalid_event' (or 'too_deep') with a message naming
 * the event's position (when given) and the JSON pointer of the problem, e.g.
 * `event 3: /actor/type must be one of human, service, ai_agent`; the same two are
 * `detail.batchIndex` and `detail.pointer`.
 */
export function validateEvent(input: unknown, position?: number): void {
  if (!validate(input)) {
    const err = validate.errors?.[0];
    const detail = { pointer: err ? pointerOf(err) : '' };
    throw new SteleError('invalid_event', err ? describe(err) : 'is invalid', eventAt(position, detail));
  }
  // After the schema, which settles the common mistakes with better messages. Outside `data` the
  // schema bounds the depth, so only the free-form strings there need a surrogate check; `data`
  // gets the full walk (the event is level 1, so `data` itself is level 2).
  const e = input as unknown as Record<string, unknown>;
  let f = knownStrings(e);
  if (!f && e.data !== undefined) {
    f = scan(e.data, MAX_DEPTH - 1, true);
    if (f) f.path = `/data${f.path}`;
  }
  if (f) {
    const at = eventAt(position, { pointer: f.path });
    if (f.code === 'too_deep') throw new SteleError('too_deep', depthMessage(f, MAX_DEPTH), at);
    const what = f.key ? `${f.path} has a key that contains` : `${f.path} contains`;
    throw new SteleError('invalid_event', `${what} a lone UTF-16 surrogate, which canonical JSON cannot represent`, at);
  }
}

function lone(v: unknown): boolean {
  return typeof v === 'string' && !(v as unknown as WellFormed).isWellFormed();
}

/**
 * The first free-text field of a schema-valid event (outside `data`) holding a lone surrogate.
 * Fields whose pattern or enum allows only ASCII (id, time, action, outcome, actor.type, sha256)
 * cannot. A test walks the schema to keep this list complete.
 */
function knownStrings(e: Record<string, unknown>): Finding | undefined {
  const at = (path: string): Finding => ({ code: 'surrogate', path, key: false });
  const actor = e.actor as Record<string, unknown>;
  if (lone(actor.id)) return at('/actor/id');
  if (lone(actor.on_behalf_of)) return at('/actor/on_behalf_of');
  const src = e.source as Record<string, unknown>;
  if (lone(src.kind)) return at('/source/kind');
  if (lone(src.host)) return at('/source/host');
  if (lone(src.agent)) return at('/source/agent');
  if (lone(src.version)) return at('/source/version');
  const res = e.resource as Record<string, unknown> | undefined;
  if (res) {
    if (lone(res.type)) return at('/resource/type');
    if (lone(res.id)) return at('/resource/id');
  }
  if (lone(e.reason)) return at('/reason');
  const appr = e.approval as Record<string, unknown> | undefined;
  if (appr) {
    if (lone(appr.by)) return at('/approval/by');
    if (lone(appr.ticket)) return at('/approval/ticket');
  }
  if (lone(e.subject)) return at('/subject');
  const att = e.attachments as Record<string, unknown>[] | undefined;
  if (att) {
    for (let i = 0; i < att.length; i++) {
      const a = att[i] as Record<string, unknown>;
      if (lone(a.name)) return at(`/attachments/${i}/name`);
      if (lone(a.media_type)) return at(`/attachments/${i}/media_type`);
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// UUIDv7

// Random hex digits are drawn from a pool refilled 2 KiB at a time (one syscall and one hex
// conversion per 256 ids instead of per id).
let randomHex = '';
let randomOff = 0;
const RANDOM_BYTES = 2048;

function random16(): string {
  if (randomOff + 16 > randomHex.length) {
    randomHex = randomBytes(RANDOM_BYTES).toString('hex');
    randomOff = 0;
  }
  const h = randomHex.slice(randomOff, randomOff + 16);
  randomOff += 16;
  return h;
}

// The first digit of the variant group: 10xx in binary, i.e. 8, 9, a or b.
const VARIANT = '89ab89ab89ab89ab';

// Ids minted in the same millisecond share the time prefix: keep the last one.
let lastWhole = -1;
let lastPrefix = '';

/**
 * A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then, when `ms` has a fractional part, 12 bits of
 * sub-millisecond time (RFC 9562 section 6.2, method 3) so ids stay ordered at microsecond
 * granularity; the remaining 62 bits random. Time-ordered ids keep B-tree inserts local.
 */
export function uuidv7(ms: number): string {
  if (!(ms >= 0 && ms < 2 ** 48)) throw new RangeError(`uuidv7: ${ms} is outside 0 .. 2^48 ms`);
  const whole = Math.floor(ms);
  if (whole !== lastWhole) {
    const t = whole.toString(16).padStart(12, '0');
    lastPrefix = `${t.slice(0, 8)}-${t.slice(8)}-7`;
    lastWhole = whole;
  }
  const sub = Math.floor((ms - whole) * 4096); // 0..4095
  const r = random16();
  return (
    `${lastPrefix}${(0x1000 | sub).toString(16).slice(1)}-` +
    `${VARIANT[Number.parseInt(r[0] as string, 16)]}${r.slice(1, 4)}-${r.slice(4)}`
  );
}

// ---------------------------------------------------------------------------------------------
// Normalisation

/**
 * The stored form of a validated event: `id` lower-cased or assigned (UUIDv7 of the receipt time),
 * `time` kept as sent or set to the receipt time, `subject`, `actor.id` and `actor.on_behalf_of` in
 * NFC (see nfc.ts), `actor.verified` false (server-side identity verification comes later). Does
 * not re-validate: call validateEvent first. Returns a new object
 * (with a new `actor`); `source`, `resource`, `data` and the other nested values are shared with
 * `input`, not copied.
 */
export function normalizeEvent(input: Record<string, unknown>, receivedMicros: bigint): Event {
  const a = input.actor as Record<string, unknown>;
  // Built in sorted key order, so canonicalize finds these two objects already sorted.
  const actor: Record<string, unknown> = { id: nfc(a.id as string) };
  if (a.on_behalf_of !== undefined) actor.on_behalf_of = nfc(a.on_behalf_of as string);
  actor.type = a.type;
  actor.verified = false;

  const out: Record<string, unknown> = { action: input.action, actor };
  if (input.approval !== undefined) out.approval = input.approval;
  if (input.attachments !== undefined) out.attachments = input.attachments;
  if (input.data !== undefined) out.data = input.data;
  out.id = typeof input.id === 'string' ? input.id.toLowerCase() : uuidv7(Number(receivedMicros) / 1000);
  out.outcome = input.outcome;
  if (input.reason !== undefined) out.reason = input.reason;
  if (input.resource !== undefined) out.resource = input.resource;
  out.source = input.source;
  if (input.subject !== undefined) out.subject = nfc(input.subject as string);
  out.time = typeof input.time === 'string' ? input.time : formatMicros(receivedMicros);
  return out as unknown as Event;
}
