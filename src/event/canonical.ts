/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes a leaf hashes.
 *
 * JCS is defined in terms of ECMAScript, so the primitives are the engine's own: numbers are
 * `Number::toString` (what JSON.stringify prints; -0 becomes 0), strings are JSON.stringify's escaping
 * (the short escapes \b \t \n \f \r, other controls as lower-case \u00xx, everything else literal).
 * What JCS adds: object keys sorted by UTF-16 code units, no whitespace, and refusal of what I-JSON
 * cannot carry (NaN, Infinity, lone surrogates) or JSON does not have (undefined, functions, bigint,
 * class instances).
 */
import { SteleError } from '../errors.js';

/**
 * Nesting bound for canonicalize's recursion. Events are limited to 32 levels before they get here
 * (`checkDepth`); this only keeps a hostile or cyclic value from overflowing the stack.
 */
export const MAX_CANONICAL_DEPTH = 512;

// Node >= 20 has String.prototype.isWellFormed (ES2024); the project's lib is es2023.
interface WellFormed {
  isWellFormed(): boolean;
}

/** Carries the failing location outwards; each level on the way prepends its key (only on errors). */
class Refusal {
  readonly path: string[] = [];
  constructor(
    readonly code: string,
    readonly problem: string,
  ) {}
}

// Most strings need no escaping: one pass over the code units proves it (and rules out
// surrogates, which are then checked properly), which is much cheaper than JSON.stringify's call.
function str(s: string): string {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return strSlow(s);
  }
  return `"${s}"`;
}

function strSlow(s: string): string {
  if (!(s as unknown as WellFormed).isWellFormed()) {
    throw new Refusal('invalid_json', 'contains a lone UTF-16 surrogate, which canonical JSON cannot represent');
  }
  return JSON.stringify(s);
}

/** Sorts by UTF-16 code units in place. Insertion sort for the usual handful of keys: far cheaper than Array.prototype.sort's setup. */
function sortKeys(keys: string[]): void {
  const n = keys.length;
  if (n > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const k = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > k) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = k;
  }
}

function ser(v: unknown, depth: number): string {
  switch (typeof v) {
    case 'string':
      return str(v);
    case 'number':
      if (!Number.isFinite(v)) throw new Refusal('invalid_json', `is ${v}, which JSON cannot represent`);
      return `${v}`; // Number::toString; -0 gives "0" as JCS requires
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw new Refusal('invalid_json', `is ${typeof v}, which JSON cannot represent`);
  }
  if (v === null) return 'null';
  if (depth >= MAX_CANONICAL_DEPTH) {
    throw new Refusal('too_deep', `nests deeper than ${MAX_CANONICAL_DEPTH} levels (or is cyclic)`);
  }
  if (Array.isArray(v)) {
    const n = v.length;
    if (n === 0) return '[]';
    let out = '[';
    for (let i = 0; i < n; i++) {
      try {
        out += (i === 0 ? '' : ',') + ser(v[i], depth + 1);
      } catch (e) {
        if (e instanceof Refusal) e.path.push(String(i));
        throw e;
      }
    }
    return `${out}]`;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    // Date, Map, Buffer ... would silently become {} or change shape: refuse rather than guess.
    throw new Refusal('invalid_json', 'is not a plain object');
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  const n = keys.length;
  if (n === 0) return '{}';
  // Objects built by our own code (normalizeEvent, buildLeaf) already have sorted keys; checking
  // is cheaper than sorting. String `<` compares UTF-16 code units, as JCS requires.
  for (let i = 1; i < n; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) {
      sortKeys(keys);
      break;
    }
  }
  let out = '{';
  for (let i = 0; i < n; i++) {
    const k = keys[i] as string;
    let ks: string;
    try {
      ks = str(k);
    } catch {
      throw new Refusal('invalid_json', 'has a key that contains a lone UTF-16 surrogate, which canonical JSON cannot represent');
    }
    try {
      out += (i === 0 ? '' : ',') + ks + ':' + ser(o[k], depth + 1);
    } catch (e) {
      if (e instanceof Refusal) e.path.push(k);
      throw e;
    }
  }
  return `${out}}`;
}

function pointer(path: string[]): string {
  // Segments were pushed innermost first.
  let p = '';
  for (let i = path.length - 1; i >= 0; i--) {
    p += `/${(path[i] as string).replace(/~/g, '~0').replace(/\//g, '~1')}`;
  }
  return p;
}

/**
 * The RFC 8785 canonical JSON text of `value`. Throws SteleError 'invalid_json' (400), naming the JSON
 * pointer of the offending value, for anything I-JSON cannot represent, and 'too_deep' past
 * MAX_CANONICAL_DEPTH levels.
 */
export function canonicalize(value: unknown): string {
  try {
    return ser(value, 0);
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    const at = e.path.length === 0 ? 'the value' : pointer(e.path);
    throw new SteleError(e.code, `${at} ${e.problem}`, 400);
  }
}
