/**
 * Leaves travel between threads as one buffer and their lengths: one copy (or a transfer), not
 * one message part per leaf. `pack` always allocates its own ArrayBuffer (never Buffer's shared
 * pool), so the result can be transferred.
 */

/** A Buffer view of any Uint8Array (what arrives from another thread), without copying. */
export const bytes = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export interface Packed {
  data: Uint8Array;
  lengths: Uint32Array;
}

export function pack(leaves: readonly Uint8Array[]): Packed {
  let total = 0;
  for (const l of leaves) total += l.length;
  const data = new Uint8Array(total);
  const lengths = new Uint32Array(leaves.length);
  let off = 0;
  for (let i = 0; i < leaves.length; i++) {
    const l = leaves[i] as Uint8Array;
    data.set(l, off);
    off += l.length;
    lengths[i] = l.length;
  }
  return { data, lengths };
}

export function unpack(p: Packed): Buffer[] {
  const all = bytes(p.data);
  const out: Buffer[] = new Array(p.lengths.length);
  let off = 0;
  for (let i = 0; i < p.lengths.length; i++) {
    const n = p.lengths[i] as number;
    out[i] = all.subarray(off, off + n);
    off += n;
  }
  return out;
}

/** The ArrayBuffers of a Packed, for postMessage's transfer list. */
export const transferList = (p: Packed): ArrayBuffer[] => [p.data.buffer as ArrayBuffer, p.lengths.buffer as ArrayBuffer];
