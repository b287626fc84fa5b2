/**
 * Making a foreign record fit one leaf, for every source adapter: sources never refuse a record
 * for values a client controls (the sender would drop the whole batch), they bound them — long
 * strings clipped with a hash of the whole, bodies too large or too deep dropped with a note in
 * `data.truncated`.
 */
import { createHash } from 'node:crypto';
import { checkDepth, MAX_DEPTH } from '../event/normalize.js';

type Json = Record<string, unknown>;

/**
 * Largest mapped event, in bytes of JSON. A sealed leaf carries the event encrypted (77 bytes more)
 * and base64-encoded (4/3), plus the leaf's other fields; 47,000 bytes leaves about 2 KB of room
 * for those within the 65,535-byte limit.
 */
export const MAX_EVENT_BYTES = 47_000;

/** `s` cut to at most `n` characters, the cut marked with `…#` and 12 hex digits of its SHA-256 (so distinct values stay distinct). */
export function clip(s: string, n: number): string {
  if (s.length <= n) return s;
  let head = s.slice(0, Math.max(0, n - 14));
  const last = head.charCodeAt(head.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1); // never split a surrogate pair
  return `${head}…#${createHash('sha256').update(s).digest('hex').slice(0, 12)}`;
}

const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v));

/** A copy of `v` with strings cut to `maxString` characters and lists and objects to `maxItems` entries. */
function shrink(v: unknown, maxString: number, maxItems: number, depth = 0): unknown {
  if (typeof v === 'string') return v.length > maxString ? clip(v, maxString) : v;
  if (typeof v !== 'object' || v === null) return v;
  if (depth > MAX_DEPTH) return '…';
  if (Array.isArray(v)) {
    const out = v.slice(0, maxItems).map((x) => shrink(x, maxString, maxItems, depth + 1));
    if (v.length > maxItems) out.push(`…${v.length - maxItems} more items`);
    return out;
  }
  const out: Json = {};
  const keys = Object.keys(v);
  for (const k of keys.slice(0, maxItems)) out[clip(k, maxString)] = shrink((v as Json)[k], maxString, maxItems, depth + 1);
  if (keys.length > maxItems) out['…'] = `${keys.length - maxItems} more keys`;
  return out;
}

/**
 * Makes `event` fit a leaf: drops the `bodies` fields of `data` (in order) that nest too deep or
 * while the event is over MAX_EVENT_BYTES, then shortens long strings and lists in `data`. Each
 * step is noted in `data.truncated` as `{field, reason: 'size'|'depth', bytes?}`.
 */
export function fitEvent(event: Json, data: Json, bodies: readonly string[]): void {
  const truncated: Json[] = [];
  data.truncated = truncated;
  for (const k of bodies) {
    if (data[k] === undefined) continue;
    try {
      checkDepth(data[k], MAX_DEPTH - 2); // the event is level 1, data 2
    } catch {
      truncated.push({ field: k, reason: 'depth', bytes: bytes(data[k]) });
      delete data[k];
    }
  }
  let size = bytes(event);
  for (const k of bodies) {
    if (size <= MAX_EVENT_BYTES) break;
    if (data[k] === undefined) continue;
    truncated.push({ field: k, reason: 'size', bytes: bytes(data[k]) });
    delete data[k];
    size = bytes(event);
  }
  const steps: [number, number][] = [
    [4096, 256],
    [1024, 64],
    [256, 16],
    [64, 4],
  ];
  for (const [maxString, maxItems] of steps) {
    if (size <= MAX_EVENT_BYTES) break;
    const note = { field: '*', reason: 'size', bytes: bytes(data) };
    for (const k of Object.keys(data)) if (k !== 'truncated') data[k] = shrink(data[k], maxString, maxItems);
    truncated.push({ ...note, note: `strings cut to ${maxString} characters, lists to ${maxItems} items` });
    size = bytes(event);
  }
  if (size > MAX_EVENT_BYTES) {
    for (const k of Object.keys(data)) if (k !== 'truncated') delete data[k];
    truncated.push({ field: '*', reason: 'size', note: 'all of data dropped' });
  }
  if (truncated.length === 0) delete data.truncated;
}
