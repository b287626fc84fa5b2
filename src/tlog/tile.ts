/**
 * c2sp.org/tlog-tiles: tile paths, entry bundles, and the integrator's incremental
 * tree (TileBuilder), which produces hash tiles as leaves are appended.
 */
import { emptyRoot, HASH_SIZE, nodeHash } from './hash.js';

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
const TILE_BYTES = TILE_WIDTH * HASH_SIZE;
const MAX_LEVEL = 63;
const MAX_ENTRY = 65_535;

function checkIndex(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${n}`);
  }
}

function checkLevel(level: number): void {
  if (!Number.isInteger(level) || level < 0 || level > MAX_LEVEL) {
    throw new RangeError(`tile level must be an integer in 0..${MAX_LEVEL}, got ${level}`);
  }
}

function checkWidth(width: number): void {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) {
    throw new RangeError(`tile width must be an integer in 1..${TILE_WIDTH}, got ${width}`);
  }
}

/** N in 3-digit groups, all but the last prefixed with x: 1234067 → x001/x234/067. */
function encodeIndex(index: number): string {
  const digits = String(index);
  const padded = digits.padStart(Math.ceil(digits.length / 3) * 3, '0');
  const groups: string[] = [];
  for (let i = 0; i < padded.length; i += 3) groups.push(padded.slice(i, i + 3));
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

function suffix(width: number): string {
  return width === TILE_WIDTH ? '' : `.p/${width}`;
}

/** Path of a hash tile, relative to the log prefix: tile/<L>/<N>[.p/<W>]. */
export function tilePath(level: number, index: number, width = TILE_WIDTH): string {
  checkLevel(level);
  checkIndex('tile index', index);
  checkWidth(width);
  return `tile/${level}/${encodeIndex(index)}${suffix(width)}`;
}

/** Path of an entry bundle, relative to the log prefix: tile/entries/<N>[.p/<W>]. */
export function entriesPath(index: number, width = TILE_WIDTH): string {
  checkIndex('bundle index', index);
  checkWidth(width);
  return `tile/entries/${encodeIndex(index)}${suffix(width)}`;
}

/** The C2SP path of a tile (`level` ≥ 0) or entry bundle (`level` = 'entries'). */
export function tileFilePath(level: number | 'entries', index: number, width = TILE_WIDTH): string {
  return level === 'entries' ? entriesPath(index, width) : tilePath(level, index, width);
}

/** The tree size at which a full tile (or entry bundle: level 'entries') is complete. */
export function fullTileSize(t: { level: number | 'entries'; index: number }): number {
  const level = t.level === 'entries' ? 0 : t.level;
  return (t.index + 1) * TILE_WIDTH ** (level + 1);
}

const TILE_PATH_RE = /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*)([0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

/**
 * Strict inverse of tilePath/entriesPath: returns null for any path they would not
 * produce (leading x000 groups, L > 63, W outside 1..255, index beyond 2^53, …).
 */
export function parseTilePath(path: string): { level: number | 'entries'; index: number; width: number } | null {
  const m = TILE_PATH_RE.exec(path);
  if (m === null) return null;
  const [, l = '', xs = '', last = '', w] = m;
  // The first group may be 000 only if it is the only group (index 0 is "000").
  if (xs.startsWith('x000/')) return null;
  const index = Number(xs.replaceAll('x', '').replaceAll('/', '') + last);
  if (!Number.isSafeInteger(index)) return null;
  let width = TILE_WIDTH;
  if (w !== undefined) {
    width = Number(w);
    if (width > TILE_WIDTH - 1) return null;
  }
  if (l === 'entries') return { level: 'entries', index, width };
  const level = Number(l);
  if (level > MAX_LEVEL) return null;
  return { level, index, width };
}

/** Number of hashes stored at tile level `level` for a tree of `treeSize` leaves. */
export function storedCount(level: number, treeSize: number): number {
  checkLevel(level);
  checkIndex('tree size', treeSize);
  return Math.floor(treeSize / TILE_WIDTH ** level);
}

/** Width of tile (level, index) in a tree of `treeSize` leaves: 256 if full, 0 if absent. */
export function tileWidth(level: number, index: number, treeSize: number): number {
  checkIndex('tile index', index);
  const n = storedCount(level, treeSize);
  const start = index * TILE_WIDTH;
  if (start >= n) return 0;
  return Math.min(TILE_WIDTH, n - start);
}

/** Number of tile levels holding at least one hash (0 for the empty tree). */
export function tileLevels(treeSize: number): number {
  checkIndex('tree size', treeSize);
  let levels = 0;
  for (let n = treeSize; n >= 1; n = Math.floor(n / TILE_WIDTH)) levels++;
  return levels;
}

/**
 * The rightmost tile of every level of a tree of `treeSize`: the tiles whose hashes (with their
 * widths, 0 where a level has no partial tile) make up the tree's compact range, and so its root.
 */
export function rightEdge(treeSize: number): { level: number; index: number; width: number }[] {
  const out: { level: number; index: number; width: number }[] = [];
  for (let level = 0; level < tileLevels(treeSize); level++) {
    const n = storedCount(level, treeSize);
    out.push({ level, index: Math.floor(n / TILE_WIDTH), width: n % TILE_WIDTH });
  }
  return out;
}

/**
 * The tiles and entry bundles a tree of `to` leaves has that a tree of `from` lacks or holds at a
 * smaller width: what a copy of the log at size `from` needs to reach `to` (lowest level first,
 * bundles beside level 0). Empty when `from` ≥ `to`.
 */
export function tilesBetween(from: number, to: number): { level: number | 'entries'; index: number; width: number }[] {
  checkIndex('tree size', from);
  const out: { level: number | 'entries'; index: number; width: number }[] = [];
  if (from >= to) return out;
  for (let level = 0; level < tileLevels(to); level++) {
    const lo = storedCount(level, from);
    const hi = storedCount(level, to);
    if (hi === lo) continue;
    for (let index = Math.floor(lo / TILE_WIDTH); index <= Math.floor((hi - 1) / TILE_WIDTH); index++) {
      const width = tileWidth(level, index, to);
      out.push({ level, index, width });
      if (level === 0) out.push({ level: 'entries', index, width });
    }
  }
  return out;
}

/** Entry bundle: each entry as a big-endian uint16 length followed by its bytes. */
export function encodeBundle(entries: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (let i = 0; i < entries.length; i++) {
    const len = (entries[i] as Uint8Array).length;
    if (len > MAX_ENTRY) {
      throw new RangeError(`bundle entry ${i} is ${len} bytes; the limit is ${MAX_ENTRY}`);
    }
    total += 2 + len;
  }
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const e of entries) {
    out.writeUInt16BE(e.length, off);
    out.set(e, off + 2);
    off += 2 + e.length;
  }
  return out;
}

/** Inverse of encodeBundle; the returned entries are copies (they don't alias `data`). */
export function decodeBundle(data: Uint8Array, expectedCount?: number): Buffer[] {
  if (expectedCount !== undefined) checkIndex('expected entry count', expectedCount);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    if (expectedCount !== undefined && out.length === expectedCount) {
      throw new Error(
        `bundle has ${buf.length - off} trailing bytes at byte ${off}, after the expected ${expectedCount} entries`,
      );
    }
    if (off + 2 > buf.length) {
      throw new Error(`bundle truncated: length prefix of entry ${out.length} at byte ${off} is cut off`);
    }
    const len = buf.readUInt16BE(off);
    const end = off + 2 + len;
    if (end > buf.length) {
      throw new Error(
        `bundle truncated: entry ${out.length} at byte ${off} declares ${len} bytes but only ${buf.length - off - 2} remain`,
      );
    }
    out.push(Buffer.from(buf.subarray(off + 2, end)));
    off = end;
  }
  if (expectedCount !== undefined && out.length !== expectedCount) {
    throw new Error(`bundle has ${out.length} entries, expected ${expectedCount}`);
  }
  return out;
}

const rootScratch = Buffer.allocUnsafe(TILE_BYTES);

/** MTH of `count` (a power of two ≤ 256) consecutive hashes of a tile starting at hash `offset`. */
function tileSubtreeRoot(tile: Uint8Array, offset: number, count: number): Buffer {
  if (count === 1) return Buffer.from(tile.subarray(offset * HASH_SIZE, (offset + 1) * HASH_SIZE));
  // Fold in place in a scratch copy: avoids allocating a Buffer per intermediate row.
  rootScratch.set(tile.subarray(offset * HASH_SIZE, (offset + count) * HASH_SIZE));
  for (let n = count; n > 1; n >>= 1) {
    for (let i = 0; i < n / 2; i++) {
      const l = rootScratch.subarray(2 * i * HASH_SIZE, (2 * i + 1) * HASH_SIZE);
      const r = rootScratch.subarray((2 * i + 1) * HASH_SIZE, (2 * i + 2) * HASH_SIZE);
      rootScratch.set(nodeHash(l, r), i * HASH_SIZE);
    }
  }
  return Buffer.from(rootScratch.subarray(0, HASH_SIZE));
}

/** MTH of a full tile: its 256 hashes taken as the bottom row of a perfect subtree. */
export function tileRoot(tile: Uint8Array): Buffer {
  if (tile.length !== TILE_BYTES) {
    throw new RangeError(`tileRoot: a full tile is ${TILE_BYTES} bytes, got ${tile.length}`);
  }
  return tileSubtreeRoot(tile, 0, TILE_WIDTH);
}

/**
 * Where the perfect-subtree node (tree level `level`, index `index`) lives: its hash
 * is perfectRoot of `count` consecutive hashes starting at `offset` in that tile.
 */
export function nodeLocation(
  level: number,
  index: number,
): { tileLevel: number; tileIndex: number; offset: number; count: number } {
  if (!Number.isInteger(level) || level < 0 || level >= (MAX_LEVEL + 1) * TILE_HEIGHT) {
    throw new RangeError(`node level must be an integer in 0..${(MAX_LEVEL + 1) * TILE_HEIGHT - 1}, got ${level}`);
  }
  checkIndex('node index', index);
  const tileLevel = Math.floor(level / TILE_HEIGHT);
  const count = 2 ** (level % TILE_HEIGHT);
  const first = index * count; // index of the first covered hash within tile level `tileLevel`
  if (!Number.isSafeInteger(first)) throw new RangeError(`node (${level}, ${index}) is beyond 2^53`);
  return { tileLevel, tileIndex: Math.floor(first / TILE_WIDTH), offset: first % TILE_WIDTH, count };
}

export interface DrainedTile {
  level: number;
  index: number;
  width: number;
  data: Buffer;
}

/**
 * The integrator's incremental tree. It keeps only the rightmost (partial) tile of
 * each level, plus the tiles that became full since the last drain().
 */
export class TileBuilder {
  #size: number;
  /** Per level: an 8 KiB buffer holding the current partial tile, filled to #width[L]. */
  #cur: Buffer[] = [];
  #width: number[] = [];
  /** Per level: whether the partial tile gained hashes since the last drain. */
  #dirty: boolean[] = [];
  /** Tiles that became full since the last drain, in completion order. */
  #full: DrainedTile[] = [];

  static empty(): TileBuilder {
    return new TileBuilder(0, []);
  }

  /**
   * Resume from `size` and the partial tiles of that size: partials[L] holds the
   * (storedCount(L, size) mod 256) hashes of the level-L partial tile, concatenated.
   */
  constructor(size: number, partials: Uint8Array[]) {
    checkIndex('tree size', size);
    const levels = tileLevels(size);
    for (let L = 0; L < Math.max(levels, partials.length); L++) {
      const want = L < levels ? (storedCount(L, size) % TILE_WIDTH) * HASH_SIZE : 0;
      const got = partials[L]?.length ?? 0;
      if (got !== want) {
        throw new RangeError(
          `TileBuilder: partial tile at level ${L} for size ${size} must be ${want} bytes (${want / HASH_SIZE} hashes), got ${got}`,
        );
      }
    }
    this.#size = size;
    for (let L = 0; L < levels; L++) {
      const buf = Buffer.alloc(TILE_BYTES);
      const p = partials[L];
      if (p !== undefined) buf.set(p);
      this.#cur.push(buf);
      this.#width.push(storedCount(L, size) % TILE_WIDTH);
      this.#dirty.push(false);
    }
  }

  get size(): number {
    return this.#size;
  }

  append(leafHash: Uint8Array): void {
    if (leafHash.length !== HASH_SIZE) {
      throw new RangeError(`TileBuilder.append: leaf hash must be ${HASH_SIZE} bytes, got ${leafHash.length}`);
    }
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new RangeError('TileBuilder: tree size would exceed 2^53-1');
    this.#size++;
    let hash: Uint8Array = leafHash;
    // Carry upward: a tile that fills contributes its root to the level above.
    for (let L = 0; ; L++) {
      if (L === this.#cur.length) {
        this.#cur.push(Buffer.alloc(TILE_BYTES));
        this.#width.push(0);
        this.#dirty.push(false);
      }
      const cur = this.#cur[L] as Buffer;
      const w = this.#width[L] as number;
      cur.set(hash, w * HASH_SIZE);
      if (w + 1 < TILE_WIDTH) {
        this.#width[L] = w + 1;
        this.#dirty[L] = true;
        return;
      }
      const index = (storedCount(L, this.#size) - TILE_WIDTH) / TILE_WIDTH;
      this.#full.push({ level: L, index, width: TILE_WIDTH, data: cur });
      this.#cur[L] = Buffer.alloc(TILE_BYTES);
      this.#width[L] = 0;
      this.#dirty[L] = false; // reported as the full tile instead
      hash = tileRoot(cur);
    }
  }

  /** RFC 6962 root of the current tree, from the compact range held in the partial tiles. */
  root(): Buffer {
    // Left to right: highest level first, then within a level by decreasing chunk size.
    const nodes: Buffer[] = [];
    for (let L = this.#cur.length - 1; L >= 0; L--) {
      const w = this.#width[L] as number;
      const cur = this.#cur[L] as Buffer;
      let off = 0;
      for (let bit = TILE_WIDTH / 2; bit >= 1; bit >>= 1) {
        if (w & bit) {
          nodes.push(tileSubtreeRoot(cur, off, bit));
          off += bit;
        }
      }
    }
    if (nodes.length === 0) return emptyRoot();
    let acc = nodes[nodes.length - 1] as Buffer;
    for (let i = nodes.length - 2; i >= 0; i--) acc = nodeHash(nodes[i] as Buffer, acc);
    return acc;
  }

  /**
   * Every tile whose contents changed since the previous drain (or construction),
   * with its contents at the current size, ordered by level then index. A tile that
   * became full is reported once, with width 256. The returned data is never mutated later.
   */
  drain(): DrainedTile[] {
    const out: DrainedTile[] = this.#full;
    this.#full = [];
    for (let L = 0; L < this.#cur.length; L++) {
      const w = this.#width[L] as number;
      if (this.#dirty[L] && w > 0) {
        const index = Math.floor(storedCount(L, this.#size) / TILE_WIDTH);
        out.push({ level: L, index, width: w, data: Buffer.from((this.#cur[L] as Buffer).subarray(0, w * HASH_SIZE)) });
      }
      this.#dirty[L] = false;
    }
    return out.sort((a, b) => a.level - b.level || a.index - b.index);
  }

  /** Current partial tile contents per level (copies), one entry per level in tileLevels(size). */
  partials(): Buffer[] {
    const levels = tileLevels(this.#size);
    const out: Buffer[] = [];
    for (let L = 0; L < levels; L++) {
      const w = this.#width[L] ?? 0;
      out.push(Buffer.from((this.#cur[L] as Buffer).subarray(0, w * HASH_SIZE)));
    }
    return out;
  }
}
