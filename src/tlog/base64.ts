/** Strict standard base64 (RFC 4648 §4), as the C2SP formats require. Internal helper. */

/** Decode padded, canonical standard base64; null for anything else (Node's decoder would guess). */
export function decodeBase64Strict(s: string): Buffer | null {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  // Round-tripping rejects non-zero padding bits, which Node silently drops.
  return b.toString('base64') === s ? b : null;
}
