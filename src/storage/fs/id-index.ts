import { getRandomValues } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { writeDurably } from '../../core/durable.js';
import { plural } from '../../core/plural.js';
import { DIGEST_BYTES, type IdEntry, type IdIndex } from '../../log/id-index.js';

const NO_DIGEST = Buffer.alloc(DIGEST_BYTES);

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX[(i < 10 ? 48 : 87) + i] = i; // 0-9, a-f
  if (i >= 10) HEX[55 + i] = i; // A-F
}

/** The 16 bytes of a UUID string (the schema has checked the form; this runs twice per event, so it is hand-rolled). */
export function uuidBytes(id: string): Buffer {
  const out = Buffer.allocUnsafe(16);
  uuidInto(id, out, 0);
  return out;
}

/** uuidBytes written into `out` at `at`, without allocating. */
export function uuidInto(id: string, out: Uint8Array, at: number): void {
  if (id.length !== 36) throw new Error(`event id ${JSON.stringify(id)} is not a UUID`);
  let j = at;
  for (let i = 0; i < 36; i += 2) {
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (id.charCodeAt(i) !== 45) throw new Error(`event id ${JSON.stringify(id)} is not a UUID`);
      i--;
      continue;
    }
    const hi = HEX[id.charCodeAt(i) & 127] as number;
    const lo = HEX[id.charCodeAt(i + 1) & 127] as number;
    if (hi < 0 || lo < 0 || id.charCodeAt(i) > 127 || id.charCodeAt(i + 1) > 127) {
      throw new Error(`event id ${JSON.stringify(id)} is not a UUID`);
    }
    out[j++] = (hi << 4) | lo;
  }
}

/** Big-endian uint32 at `at` of `b`. */
const u32 = (b: Uint8Array, at: number): number =>
  (((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)) >>> 0;

/** Segments of an IdTable: each grows on its own, so no growth rehashes more than 1/1024 of the table. */
const SEGMENT_BITS = 10;
const SEGMENTS = 1 << SEGMENT_BITS;
/** Slots a segment starts with. */
const FIRST_SLOTS = 64;
/** The most slots a segment may have: positions come from the 24-bit tag. */
const MAX_SLOTS = 1 << 24;
/** A segment grows by this factor, when its load reaches between MAX_LOAD / GROWTH and MAX_LOAD. */
const GROWTH = 1.25;
const MAX_LOAD = 0.7;

/** A 32-bit mix of the 16-byte key at `at` under `s` (four seed words from `o`). */
function mix(key: Uint8Array, at: number, s: Uint32Array, o: number): number {
  let h =
    Math.imul(u32(key, at) ^ (s[o] as number), 0x9e3779b1) ^
    Math.imul(u32(key, at + 4) ^ (s[o + 1] as number), 0x85ebca77) ^
    Math.imul(u32(key, at + 8) ^ (s[o + 2] as number), 0xc2b2ae3d) ^
    Math.imul(u32(key, at + 12) ^ (s[o + 3] as number), 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  h ^= h >>> 15;
  return h >>> 0;
}

/** The first slot of tag `t` (24 bits) in a segment of `slots` slots: the tag scaled, so any size works. */
const home = (t: number, slots: number): number => ((t * slots) / 0x1000000) | 0;

/**
 * The pure part: a hash table from 128-bit keys to indices that keeps only a 24-bit tag per key,
 * 8 bytes a slot: the tag and the index's top 8 bits in one word, its low 32 bits in the next
 * (indices below 2^40). Tags and segments are mixed with a random per-process seed, so clients
 * cannot choose ids that pile into one probe chain. `confirm(index, key)` tells whether the entry
 * at `index` really has `key`.
 *
 * The table is 1024 segments (chosen by a second mix of the key), each an open-addressing table
 * with linear probing that grows by a quarter on its own. Segment s grows at a load between 0.56
 * and 0.7, evenly spread over the segments, so growth is spread evenly over the log's: memory
 * rises with the log in small steps (about 14 bytes an id), and no insert stops the thread for a
 * large rehash (a single table of 8M slots took 90 ms to double).
 */
export class IdTable {
  private readonly segs: Uint32Array[] = [];
  private readonly counts = new Uint32Array(SEGMENTS);
  private readonly limits = new Float64Array(SEGMENTS);
  private count = 0;
  private readonly seed = getRandomValues(new Uint32Array(8));
  /** The segment of the key last given to tag(). */
  private seg = 0;

  /** `expected` ids: the table starts large enough to hold them without growing. */
  constructor(expected = 0) {
    const each = (expected / SEGMENTS) * 1.1; // a segment's share, and room for chance
    for (let s = 0; s < SEGMENTS; s++) {
      const slots = Math.min(MAX_SLOTS, Math.max(FIRST_SLOTS, Math.ceil(each / this.load(s))));
      this.segs.push(new Uint32Array(2 * slots));
      this.limits[s] = slots * this.load(s);
    }
  }

  get size(): number {
    return this.count;
  }

  /** Bytes the slots take. */
  get bytes(): number {
    let n = 0;
    for (const t of this.segs) n += t.byteLength;
    return n;
  }

  /** The load at which segment s grows. */
  private load(s: number): number {
    return (MAX_LOAD / GROWTH) * GROWTH ** (s / SEGMENTS);
  }

  /** The nonzero 24-bit tag of the 16-byte key at `at` of `key`; its segment goes to this.seg. */
  tag(key: Uint8Array, at = 0): number {
    this.seg = mix(key, at, this.seed, 4) >>> (32 - SEGMENT_BITS);
    return mix(key, at, this.seed, 0) >>> 8 || 1; // 0 marks an empty slot
  }

  find(key: Uint8Array, confirm: (index: number, key: Uint8Array) => boolean): number | undefined {
    const t = this.tag(key);
    const seg = this.segs[this.seg] as Uint32Array;
    const slots = seg.length >>> 1;
    for (let i = home(t, slots); ; i = i + 1 === slots ? 0 : i + 1) {
      const w = seg[2 * i] as number;
      if (w === 0) return undefined;
      if (w >>> 8 === t) {
        const index = (w & 0xff) * 0x1_0000_0000 + (seg[2 * i + 1] as number);
        if (confirm(index, key)) return index;
      }
    }
  }

  /** Adds the 16-byte key at `at` of `key` (only its tag is kept). */
  insert(key: Uint8Array, index: number, at = 0): void {
    if (!(index >= 0 && index < 2 ** 40)) throw new RangeError(`id index: ${index} is not an index below 2^40`);
    const t = this.tag(key, at);
    const s = this.seg;
    const n = (this.counts[s] as number) + 1;
    if (n > (this.limits[s] as number)) this.grow(s);
    place(this.segs[s] as Uint32Array, t, index);
    this.counts[s] = n;
    this.count++;
  }

  private grow(s: number): void {
    const old = this.segs[s] as Uint32Array;
    const slots = Math.ceil((old.length >>> 1) * GROWTH);
    if (slots > MAX_SLOTS) throw new RangeError('id index: a segment is full (more than 10^10 ids)');
    const seg = new Uint32Array(2 * slots);
    // The slot depends only on the tag, so rehashing needs no keys.
    for (let i = 0; i < old.length; i += 2) {
      const w = old[i] as number;
      if (w !== 0) place(seg, w >>> 8, (w & 0xff) * 0x1_0000_0000 + (old[i + 1] as number));
    }
    this.segs[s] = seg;
    this.limits[s] = slots * this.load(s);
  }
}

/** Puts tag `t` and `index` into the first free slot from the tag's home. */
function place(seg: Uint32Array, t: number, index: number): void {
  const slots = seg.length >>> 1;
  let i = home(t, slots);
  while (seg[2 * i] !== 0) i = i + 1 === slots ? 0 : i + 1;
  seg[2 * i] = ((t << 8) | Math.floor(index / 0x1_0000_0000)) >>> 0;
  seg[2 * i + 1] = index >>> 0;
}

/**
 * The embedded IdIndex: an in-memory hash table of 24-bit tags and indices (IdTable, about 16
 * bytes an id), backed by an append-only journal holding the 16 bytes of each entry's UUID at
 * offset 16 × index. A tag match is confirmed against the journal, so distinct ids never collide.
 * The journal is not fsync'd per batch: `flush` makes it durable and records how far.
 *
 * Concretely, an IdTable over `<state>/ids.journal` (16 bytes of UUID per entry) and
 * `<state>/ids.journal.digests` (16 bytes of content digest per entry, all zero when unknown),
 * both durable up to `<state>/ids.journal.json`. A journal from before digests gets a digest file
 * of zeros up to its durable mark: those entries' content is unknown, and a repeat of their ids is
 * answered with the first index, as it was when they were written.
 */
export class JournalIdIndex implements IdIndex {
  private readonly table: IdTable;
  private readonly fd: number;
  private readonly dfd: number;
  private covered: number;
  private readonly buf = Buffer.alloc(16);
  /** Scratch for the key being looked up. */
  private readonly key = Buffer.alloc(16);
  private readonly confirm = (index: number, key: Uint8Array) => {
    readSync(this.fd, this.buf, 0, 16, index * 16);
    return this.buf.equals(key);
  };

  constructor(private readonly path: string) {
    const marker = `${path}.json`;
    this.covered = existsSync(marker) ? (JSON.parse(readFileSync(marker, 'utf8')) as { upto: number }).upto : 0;
    this.fd = openSync(path, existsSync(path) ? 'r+' : 'w+', 0o600);
    const dpath = `${path}.digests`;
    this.dfd = openSync(dpath, existsSync(dpath) ? 'r+' : 'w+', 0o600);
    // Past the durable mark the journals may hold anything a crash left; the WAL replays it.
    // A shorter digest journal (one from before digests) is extended with zeros: unknown.
    ftruncateSync(this.fd, this.covered * 16);
    if (fstatSync(this.dfd).size !== this.covered * DIGEST_BYTES) ftruncateSync(this.dfd, this.covered * DIGEST_BYTES);
    const all = this.covered ? readFileSync(path) : Buffer.alloc(0);
    this.table = new IdTable(this.covered);
    for (let i = 0; i < this.covered; i++) this.table.insert(all, i, i * 16);
  }

  lookup(ids: readonly string[]): Map<string, number> {
    const found = new Map<string, number>();
    const key = this.key;
    for (const id of ids) {
      uuidInto(id, key, 0);
      const index = this.table.find(key, this.confirm);
      if (index !== undefined) found.set(id, index);
    }
    return found;
  }

  digestAt(index: number): Buffer | null {
    if (index >= this.covered) return null;
    const d = Buffer.alloc(DIGEST_BYTES);
    readSync(this.dfd, d, 0, DIGEST_BYTES, index * DIGEST_BYTES);
    return d.equals(NO_DIGEST) ? null : d;
  }

  add(first: number, entries: readonly IdEntry[]): void {
    if (first > this.covered)
      throw new Error(`id index covers ${plural(this.covered, 'entry', 'entries')}; cannot add from ${first}`);
    const skip = this.covered - first;
    if (skip >= entries.length) return;
    const n = entries.length - skip;
    const out = Buffer.allocUnsafe(n * 16);
    const digests = Buffer.alloc(n * DIGEST_BYTES);
    for (let i = skip; i < entries.length; i++) {
      const e = entries[i] as IdEntry;
      const at = (i - skip) * 16;
      uuidInto(e.id, out, at);
      if (e.digest) digests.set(e.digest.subarray(0, DIGEST_BYTES), (i - skip) * DIGEST_BYTES);
      this.table.insert(out, first + i, at);
    }
    writeAll(this.fd, out, this.covered * 16);
    writeAll(this.dfd, digests, this.covered * DIGEST_BYTES);
    this.covered = first + entries.length;
  }

  upto(): number {
    return this.covered;
  }

  async flush(): Promise<void> {
    const upto = this.covered;
    const sync = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
    await Promise.all([sync(this.fd), sync(this.dfd)]);
    await writeDurably(`${this.path}.json`, `${JSON.stringify({ upto })}\n`);
  }

  close(): void {
    closeSync(this.fd);
    closeSync(this.dfd);
  }
}

function writeAll(fd: number, buf: Buffer, at: number): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off, at + off);
}
