/**
 * FTS5's unicode61 tokenizer as the SQLite query store configures it (`remove_diacritics 2`,
 * default categories), in JavaScript, so the in-memory store finds exactly what SQLite finds.
 * Which characters separate tokens and how each folds comes from SQLite itself (its tables are
 * older than the Unicode that JavaScript knows, so no rule over \p{...} classes matches them):
 * unicode61-table.ts is generated from the SQLite that better-sqlite3 bundles, and
 * unicode61.test.ts checks it against FTS5.
 */
import { FOLDS, SEPARATORS } from './unicode61-table.js';

let separator: Uint8Array | undefined;
let folds: Map<number, string> | undefined;
/** Whether, in ASCII, folding is lowercasing (so ASCII text can be tokenized by slicing its lowercase). */
let asciiLowercases = false;

/** Built on first use from the tables (one byte a code point: 1.1 MB, for a lookup per character). */
function tables(): { separator: Uint8Array; folds: Map<number, string> } {
  if (!separator || !folds) {
    separator = new Uint8Array(0x110000);
    separator[0] = 1;
    separator.fill(1, 0xd800, 0xe000); // lone surrogates (UTF-8 has none; SQLite sees U+FFFD)
    for (const r of SEPARATORS.split(',')) {
      const [a, b = a] = r.split('-').map((h) => Number.parseInt(h, 16)) as [number, number?];
      separator.fill(1, a, b + 1);
    }
    folds = new Map();
    for (const f of FOLDS.split(',')) {
      const [a, b] = f.split('>') as [string, string];
      folds.set(Number.parseInt(a, 16), b === '' ? '' : String.fromCodePoint(Number.parseInt(b, 16)));
    }
    asciiLowercases = true;
    for (let cp = 0; cp < 0x80; cp++) {
      const ch = String.fromCharCode(cp);
      if (!separator[cp] && (folds.get(cp) ?? ch) !== ch.toLowerCase()) asciiLowercases = false;
    }
  }
  return { separator, folds };
}

/** Whether every character of `text` is ASCII. */
export function isAscii(text: string): boolean {
  return !NON_ASCII.test(text);
}
// Surrogates (code points past U+FFFF) are in this range too.
const NON_ASCII = /[\u0080-\uffff]/;

/** The tokens FTS5 indexes for `text`, in order (their positions are their indices). */
export function tokenize(text: string): string[] {
  const { separator: sep, folds: fold } = tables();
  const out: string[] = [];
  if (asciiLowercases && isAscii(text)) {
    // Most audit text: slices of its lowercase, without a string built a character at a time.
    const lower = text.toLowerCase();
    let start = -1;
    for (let i = 0; i < lower.length; i++) {
      if (sep[lower.charCodeAt(i)]) {
        if (start >= 0) out.push(lower.slice(start, i));
        start = -1;
      } else if (start < 0) start = i;
    }
    if (start >= 0) out.push(lower.slice(start));
    return out;
  }
  let cur = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (sep[cp]) {
      if (cur !== '') out.push(cur);
      cur = '';
    } else {
      // A character folded to nothing (a lone combining mark) is dropped, not a separator.
      const f = fold.get(cp);
      cur += f === undefined ? ch : f;
    }
  }
  if (cur !== '') out.push(cur);
  return out;
}
