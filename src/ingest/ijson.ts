/**
 * I-JSON (RFC 7493) integers. JSON.parse turns an integer beyond ±(2^53−1) into the nearest
 * double without a word (9007199254740993 becomes 9007199254740992), which would sign a changed
 * value into the log. Such numbers are refused, naming where they are; a client sends them as
 * strings. Numbers with a fraction or exponent are doubles by intent and are left alone.
 */
import { SteleError } from '../core/errors.js';

const MAX_SAFE = String(Number.MAX_SAFE_INTEGER); // 16 digits

/**
 * The cheap pre-check: only text with a run of 16 or more digits can hold an unsafe integer. Most
 * bodies have none (12-digit account ids, nanosecond times in strings do trip it; the full scan
 * then settles it).
 */
export function mayHoldUnsafeInteger(text: string, start = 0, end = text.length): boolean {
  // Any run of 16 digits covers one position in every 16: probe those, and measure the run around
  // a digit found. A sixteenth of the characters are read on most bodies (a regex reads them all).
  for (let i = start + 15; i < end; i += 16) {
    if (!isDigit(text.charCodeAt(i))) continue;
    let a = i;
    let b = i;
    while (a > start && isDigit(text.charCodeAt(a - 1))) a--;
    while (b + 1 < end && isDigit(text.charCodeAt(b + 1))) b++;
    if (b - a + 1 >= 16) return true;
    i = b; // the run ends at b: the next probe is b + 16
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

export interface UnsafeInteger {
  /** JSON pointer (RFC 6901) of the number, '' for the whole value. */
  pointer: string;
  /** The number as written. */
  literal: string;
}

interface Frame {
  obj: boolean;
  index: number;
  /** The current key's source text, quotes included (decoded only for the message). */
  keyStart: number;
  keyEnd: number;
}

function pointerOf(text: string, stack: readonly Frame[]): string {
  let p = '';
  for (const f of stack) {
    const seg = f.obj ? (JSON.parse(text.slice(f.keyStart, f.keyEnd)) as string) : String(f.index);
    p += `/${seg.replace(/~/g, '~0').replace(/\//g, '~1')}`;
  }
  return p;
}

/**
 * The first integer in `text[start, end)` — which must be valid JSON (parse it first) — that a
 * double cannot hold exactly, if any. One pass that skips strings with indexOf.
 */
export function findUnsafeInteger(text: string, start = 0, end = text.length): UnsafeInteger | undefined {
  const stack: Frame[] = [];
  let expectKey = false;
  let i = start;
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: find its closing quote (one not escaped by an odd run of backslashes).
      let j = i + 1;
      for (;;) {
        j = text.indexOf('"', j);
        if (j < 0) return undefined; // not valid JSON; JSON.parse has already said so
        let k = j - 1;
        while (text.charCodeAt(k) === 0x5c) k--;
        if ((j - 1 - k) % 2 === 0) break;
        j++;
      }
      if (expectKey) {
        const top = stack[stack.length - 1] as Frame;
        top.keyStart = i;
        top.keyEnd = j + 1;
        expectKey = false;
      }
      i = j + 1;
    } else if (c === 0x7b || c === 0x5b) {
      stack.push({ obj: c === 0x7b, index: 0, keyStart: 0, keyEnd: 0 });
      expectKey = c === 0x7b;
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
      i++;
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top?.obj) expectKey = true;
      else if (top) top.index++;
      i++;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = c === 0x2d ? i + 1 : i;
      const digits = j;
      while (j < end && text.charCodeAt(j) >= 0x30 && text.charCodeAt(j) <= 0x39) j++;
      const intEnd = j;
      // Fraction and exponent characters: such a number is a double by intent.
      while (j < end) {
        const d = text.charCodeAt(j);
        if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d || (d >= 0x30 && d <= 0x39)) j++;
        else break;
      }
      const n = intEnd - digits; // JSON has no leading zeros: the digit count is the magnitude
      if (j === intEnd && n >= MAX_SAFE.length && (n > MAX_SAFE.length || text.slice(digits, intEnd) > MAX_SAFE)) {
        return { pointer: pointerOf(text, stack), literal: text.slice(i, intEnd) };
      }
      i = j;
    } else i++;
  }
  return undefined;
}

/** The message for an unsafe integer, after `prefix` (e.g. "event 3: "). */
export function unsafeIntegerMessage(u: UnsafeInteger, where = u.pointer): string {
  return (
    `${where || 'the value'} is the integer ${u.literal}, beyond ±(2^53−1), which JSON numbers cannot carry exactly ` +
    '(I-JSON, RFC 7493); send it as a string'
  );
}

/** Throws 400 'unsafe_integer' when `text` (valid JSON) holds an integer a double cannot hold; `what` names the text. */
export function checkIntegers(text: string, what = ''): void {
  if (!mayHoldUnsafeInteger(text)) return;
  const u = findUnsafeInteger(text);
  if (u) throw new SteleError('unsafe_integer', `${what}${unsafeIntegerMessage(u)}`, { detail: { pointer: u.pointer } });
}
