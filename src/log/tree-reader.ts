import { nodeHash } from '../tlog/hash.js';
import { type NodeId, rehash } from '../tlog/proof.js';
import { decodeBundle, nodeLocation, tileWidth } from '../tlog/tile.js';
import type { TileSource } from '../tlog/verify.js';

/**
 * A bounded cache that keeps what was used recently: two generations of at most max/2 entries;
 * a hit in the old one moves the entry to the young one, and when the young one is full it
 * becomes the old one (the old one is dropped). Unlike a strict LRU (a delete and a set on every
 * hit), a hit in the young generation is one Map lookup: a strict LRU of proof nodes spent most of
 * a proof's CPU making its Map rehash after deletes (bench:verify).
 */
export class Lru<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly half: number;
  constructor(max: number) {
    this.half = Math.max(1, Math.floor(max / 2));
  }
  get(k: K): V | undefined {
    const v = this.young.get(k);
    if (v !== undefined) return v;
    const o = this.old.get(k);
    if (o !== undefined) this.set(k, o);
    return o;
  }
  set(k: K, v: V): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(k, v);
  }
}

/**
 * A tile's cache key as one number (level, index, width): proofs look up about 16 tiles each, and
 * a number hashes cheaper than a string built for each lookup. Exact below 2^36 tiles a level.
 */
const tileKey = (level: number, index: number, width: number): number => (level * 2 ** 36 + index) * 257 + width;

/** A fold's cache key: its node ids. */
const foldKey = (ids: readonly NodeId[]): string => ids.map((id) => `${id.level}/${id.index}`).join(' ');

/**
 * Reads the integrated tree back out of storage: entries, tiles and the hash of any perfect
 * subtree, for proofs. Everything it caches is immutable (a tile path never changes contents, a
 * complete subtree never changes hash), so the caches never need invalidating.
 */
export class TreeReader {
  private readonly tiles = new Lru<number, Buffer>(4096);
  private readonly bundles = new Lru<string, Buffer[]>(256);
  /** Right-edge runs of subtrees folded into one hash (folded()), by their node ids. */
  private readonly folds = new Lru<string, Buffer>(1024);
  /** Inner levels of tiles proofs used (see inner()): ~8 KiB a tile, 32 MiB at most. */
  private readonly innerLevels = new Lru<number, Buffer[]>(4096);

  constructor(private readonly storage: TileSource) {}

  /** The tile at its width in a tree of `size`; throws if storage lacks it or it has the wrong length. */
  async tile(level: number, index: number, size: number): Promise<Buffer> {
    return this.cachedTile(level, index, size) ?? this.readTile(level, index, size);
  }

  /** The tile if it is cached (no storage read, no await: most of a proof's tiles are). */
  private cachedTile(level: number, index: number, size: number): Buffer | undefined {
    return this.tiles.get(tileKey(level, index, tileWidth(level, index, size)));
  }

  private async readTile(level: number, index: number, size: number): Promise<Buffer> {
    const width = tileWidth(level, index, size);
    if (width === 0) throw new RangeError(`tile ${level}/${index} does not exist in a tree of size ${size}`);
    const key = tileKey(level, index, width);
    let t = this.tiles.get(key);
    if (!t) {
      const data = await this.read(level, index, width);
      if (!data) throw new Error(`storage is missing tile ${level}/${index} of width ${width}`);
      if (data.length !== width * 32) throw new Error(`tile ${level}/${index} of width ${width} is ${data.length} bytes`);
      t = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      this.tiles.set(key, t);
    }
    return t;
  }

  /** The entry at `index` of a tree of `size` (index < size). */
  async entry(index: number, size: number): Promise<Buffer> {
    return (await this.bundle(Math.floor(index / 256), size))[index % 256] as Buffer;
  }

  /** The entries of bundle `index` at its width in a tree of `size`. */
  async bundle(index: number, size: number): Promise<Buffer[]> {
    const width = tileWidth(0, index, size);
    const key = `${index}/${width}`;
    let entries = this.bundles.get(key);
    if (!entries) {
      const data = await this.read('entries', index, width);
      if (!data) throw new Error(`storage is missing entry bundle ${index} of width ${width}`);
      entries = data.length === width ? data : data.slice(0, width);
      this.bundles.set(key, entries);
    }
    return entries;
  }

  /**
   * A tile (hashes; or for 'entries' its decoded leaves) at `width`. A partial tile is deleted
   * once its full tile is durable (c2sp.org/tlog-tiles), so a reader of an older tree size may
   * find only the full one: its first `width` hashes or leaves are the partial's, as tiles only grow.
   */
  private async read(level: number, index: number, width: number): Promise<Uint8Array | null>;
  private async read(level: 'entries', index: number, width: number): Promise<Buffer[] | null>;
  private async read(level: number | 'entries', index: number, width: number): Promise<Uint8Array | Buffer[] | null> {
    let data = await this.storage.readTile(level, index, width);
    let have = width;
    if (!data && width < 256) {
      data = await this.storage.readTile(level, index, 256);
      have = 256;
    }
    if (!data) return null;
    if (level === 'entries') return decodeBundle(data, have);
    return have === width ? data : data.subarray(0, width * 32);
  }

  /**
   * The perfect subtrees `ids` (a proof plan's run from begin to end) folded into one hash as
   * rehash does. Perfect subtrees never change, so neither does their fold: kept by ids.
   */
  async folded(ids: readonly NodeId[], size: number): Promise<Buffer> {
    let h = this.cachedFold(ids);
    if (!h) {
      h = rehash({ ids: [...ids], begin: 0, end: ids.length }, await this.hashes(ids, size))[0] as Buffer;
      this.folds.set(foldKey(ids), h);
    }
    return h;
  }

  /** folded() if it is cached. */
  cachedFold(ids: readonly NodeId[]): Buffer | undefined {
    return this.folds.get(foldKey(ids));
  }

  /**
   * Hashes of perfect subtrees (complete in a tree of `size`), for proofs: views of cached tiles,
   * not to be written to.
   */
  async hashes(ids: readonly NodeId[], size: number): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (const id of ids) {
      const loc = nodeLocation(id.level, id.index);
      const tile =
        this.cachedTile(loc.tileLevel, loc.tileIndex, size) ?? (await this.readTile(loc.tileLevel, loc.tileIndex, size));
      out.push(this.node(id, loc, tile));
    }
    return out;
  }

  /** hashes() without an await, when every tile they are in is cached (most of a busy monitor's proofs); else null. */
  cachedHashes(ids: readonly NodeId[], size: number): Buffer[] | null {
    const out: Buffer[] = [];
    for (const id of ids) {
      const loc = nodeLocation(id.level, id.index);
      const tile = this.cachedTile(loc.tileLevel, loc.tileIndex, size);
      if (!tile) return null;
      out.push(this.node(id, loc, tile));
    }
    return out;
  }

  /** The hash of node `id` at `loc` of `tile`. */
  private node(id: NodeId, loc: ReturnType<typeof nodeLocation>, tile: Buffer): Buffer {
    const r = id.level % 8;
    if (r === 0) return tile.subarray(loc.offset * 32, loc.offset * 32 + 32);
    // A node inside a tile: one of the tile's inner levels (r = 1..7), hashed once per tile.
    const level = this.inner(loc.tileLevel, loc.tileIndex, tile)[r - 1] as Buffer;
    const at = (loc.offset >> r) * 32;
    return level.subarray(at, at + 32);
  }

  /**
   * The inner levels of a tile (as hashed in a tree: level r holds the hashes of its complete runs
   * of 2^r hashes), computed together the first time a proof needs any of them: a proof needs
   * one node from up to seven of them, which would otherwise cost up to 254 hashes each time.
   */
  private inner(level: number, index: number, tile: Buffer): Buffer[] {
    const key = tileKey(level, index, tile.length / 32);
    let levels = this.innerLevels.get(key);
    if (!levels) {
      levels = [];
      let below = tile;
      for (let r = 1; r < 8; r++) {
        const n = Math.floor(below.length / 64);
        const out = Buffer.allocUnsafe(n * 32);
        for (let i = 0; i < n; i++)
          out.set(nodeHash(below.subarray(i * 64, i * 64 + 32), below.subarray(i * 64 + 32, i * 64 + 64)), i * 32);
        levels.push(out);
        below = out;
      }
      this.innerLevels.set(key, levels);
    }
    return levels;
  }
}
