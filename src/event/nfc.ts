// Every character below U+0300 is NFC-stable and none combines with what precedes it (the first
// combining marks start at U+0300), so such strings (nearly all identifiers) skip ICU.
const MAYBE_NOT_NFC = /[\u0300-\uffff]/;

/**
 * `s` in Unicode Normalization Form C. Identifiers (subject, actor, on_behalf_of) are hashed for
 * erasure keys, searched and compared byte for byte, so "é" typed as one code point and as
 * e + U+0301 must become the same string before anything is stored or matched. Its own module so
 * the key and policy layers can use it without the event schema.
 */
export function nfc(s: string): string {
  return MAYBE_NOT_NFC.test(s) ? s.normalize('NFC') : s;
}
