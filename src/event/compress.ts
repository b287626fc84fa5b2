/**
 * Per-event compression of what a v3 sealed leaf encrypts (issue 18): Zstandard with a fixed
 * dictionary trained on audit events, one event per frame, so no event is ever compressed together
 * with another's fields (an attacker who chooses one event's content learns nothing about another's
 * from the lengths). The dictionary is part of the leaf format: leaves name it by number, and the
 * file of that number may never change (its SHA-256 is pinned here and checked on load).
 *
 * Zstandard comes from `zstd-napi` (the reference C library); Node 20's zlib has no zstd, and its
 * deflate with a preset dictionary compresses as well at 35× the time per event
 * (`npm run bench:storage-options`).
 */
import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** How a v3 leaf's plaintext was compressed before sealing: the byte the leaf carries. */
export const CODEC = { none: 0, zstdLeaf1: 1 } as const;
export type Codec = (typeof CODEC)[keyof typeof CODEC];

/** The dictionaries by codec: file (relative to this module in dist/src/event/) and SHA-256. */
const DICTIONARY = {
  path: '../../../src/event/dictionaries/leaf-1.zdict',
  sha256: '1678e447b3685246301f2aa857eb0788ec6bef5533a534b2dcd9110a4d7ad64c',
};

// The parts of zstd-napi's native binding this module uses.
interface CCtx {
  setParameter(param: number, value: number): void;
  loadDictionary(dict: Uint8Array): void;
  compress2(dst: Uint8Array, src: Uint8Array): number;
}
interface DCtx {
  loadDictionary(dict: Uint8Array): void;
  decompress(dst: Uint8Array, src: Uint8Array): number;
}
interface Binding {
  CCtx: new () => CCtx;
  DCtx: new () => DCtx;
  CParameter: Record<string, number>;
  getFrameContentSize(frame: Uint8Array): number | null;
}

/** Level 3 (zstd's default): about 2 µs an event; level 9 saves 8 % more bytes at 5.6× the time (bench:storage-options). */
const LEVEL = 3;

let zstd: { c: CCtx; d: DCtx; binding: Binding } | undefined;

/** The dictionary's bytes, checked against the pinned digest (a changed file would make old leaves unreadable). */
export function leafDictionary(): Buffer {
  const bytes = readFileSync(new URL(DICTIONARY.path, import.meta.url));
  const got = hash('sha256', bytes, 'hex');
  if (got !== DICTIONARY.sha256) throw new Error(`leaf dictionary 1 has SHA-256 ${got}, not ${DICTIONARY.sha256}`);
  return bytes;
}

/** This thread's compressor and decompressor, with the dictionary loaded once (zstd keeps it). */
function codec() {
  if (!zstd) {
    const binding = createRequire(import.meta.url)('zstd-napi/binding') as Binding;
    const dict = leafDictionary();
    const c = new binding.CCtx();
    const P = binding.CParameter;
    c.setParameter(P.compressionLevel as number, LEVEL);
    // The AEAD authenticates the frame and the leaf names the dictionary: neither a checksum nor a
    // dictionary id in every frame is worth its bytes.
    c.setParameter(P.checksumFlag as number, 0);
    c.setParameter(P.dictIDFlag as number, 0);
    c.setParameter(P.contentSizeFlag as number, 1);
    c.loadDictionary(dict);
    const d = new binding.DCtx();
    d.loadDictionary(dict);
    zstd = { c, d, binding };
  }
  return zstd;
}

let scratch = Buffer.allocUnsafe(0);

/**
 * `plain` compressed with the leaf dictionary, or as it is when that is not smaller (already
 * compressed or random data). The bytes returned are valid until the next call.
 */
export function compressPlaintext(plain: Uint8Array): { codec: Codec; bytes: Uint8Array } {
  const z = codec();
  const room = plain.length + (plain.length >> 7) + 64; // ≥ ZSTD_compressBound for these sizes
  if (scratch.length < room) scratch = Buffer.allocUnsafe(Math.max(room, 4096));
  const n = z.c.compress2(scratch, plain);
  return n < plain.length ? { codec: CODEC.zstdLeaf1, bytes: scratch.subarray(0, n) } : { codec: CODEC.none, bytes: plain };
}

/**
 * The plaintext of `bytes` compressed with `codec`, at most `max` bytes. Throws on a frame that is
 * not one (a forged leaf cannot get this far: the AEAD authenticated it) or that would be larger.
 */
export function decompressPlaintext(codecId: number, bytes: Uint8Array, max: number): Buffer {
  if (codecId === CODEC.none) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (codecId !== CODEC.zstdLeaf1) throw new Error(`unknown compression ${codecId}`);
  const z = codec();
  const size = z.binding.getFrameContentSize(bytes);
  if (size === null || size > max) throw new Error(`the compressed plaintext declares ${size ?? 'no'} size (at most ${max})`);
  const out = Buffer.allocUnsafe(size);
  const n = z.d.decompress(out, bytes);
  if (n !== size) throw new Error(`the compressed plaintext is ${n} bytes, not the ${size} it declares`);
  return out;
}
