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

/**
 * `shared`: the bytes go in a SharedArrayBuffer, so that the leaves unpacked from them can be
 * handed on to yet another thread without a copy (see `sharedRuns`).
 */
export function pack(leaves: readonly Uint8Array[], shared = false): Packed {
  let total = 0;
  for (const l of leaves) total += l.length;
  const data = shared ? new Uint8Array(new SharedArrayBuffer(total)) : new Uint8Array(total);
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

/**
 * `leaves` as Packed runs over the SharedArrayBuffers they already live in (consecutive leaves
 * that lie back to back in one buffer make one run): posting these shares the bytes, no copy.
 * Null when any leaf is not in a SharedArrayBuffer.
 */
export function sharedRuns(leaves: readonly Uint8Array[]): Packed[] | null {
  const runs: Packed[] = [];
  let i = 0;
  while (i < leaves.length) {
    const a = leaves[i] as Uint8Array;
    if (!(a.buffer instanceof SharedArrayBuffer)) return null;
    let j = i + 1;
    let end = a.byteOffset + a.byteLength;
    for (; j < leaves.length; j++) {
      const b = leaves[j] as Uint8Array;
      if (b.buffer !== a.buffer || b.byteOffset !== end) break;
      end += b.byteLength;
    }
    const lengths = new Uint32Array(j - i);
    for (let k = i; k < j; k++) lengths[k - i] = (leaves[k] as Uint8Array).byteLength;
    runs.push({ data: new Uint8Array(a.buffer, a.byteOffset, end - a.byteOffset), lengths });
    i = j;
  }
  return runs;
}

/** The ArrayBuffers of a Packed, for postMessage's transfer list (shared bytes are shared, not moved). */
export const transferList = (p: Packed): ArrayBuffer[] =>
  p.data.buffer instanceof SharedArrayBuffer
    ? [p.lengths.buffer as ArrayBuffer]
    : [p.data.buffer as ArrayBuffer, p.lengths.buffer as ArrayBuffer];
