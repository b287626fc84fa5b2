/**
 * A closed query-store partition as one immutable file of compressed columns and a full-text
 * inverted index (issue 18: the row store's B-trees cost 312 bytes an event; a partition that will
 * never take another row can be written once in a form built for size). Pure: bytes in, bytes out.
 *
 * Layout: `STSEG1\n`, then the sections, then the directory (zstd JSON), then its length (u32 LE)
 * and `SEG1`. Sections:
 * - the dictionary: every value of the coded fields (CODED), sorted, each held once;
 * - per block of BLOCK_ROWS rows, so a search reads the newest blocks first and stops when its
 *   page is full:
 *   - per column, a zstd frame of the column's values in the block: `idx` as deltas, `time` and
 *     `received` as signed deltas (each block decodes alone), coded fields as dictionary numbers
 *     (0 for none), the event id as its 16 bytes when a UUID;
 *   - the block's full text: its tokens sorted, in groups of TOKEN_GROUP, each group a zstd frame
 *     of its tokens (front-coded, with how many rows hold each) and one of their postings: row
 *     numbers within the block as deltas, and with `positions`, each row's token positions (what a
 *     phrase needs; without them a phrase would be confirmed on the entry, like FTS5 detail=none).
 *   The directory keeps each block's idx and time ranges and the dictionary numbers each coded
 *   column uses, so a search skips blocks without reading them.
 *
 * Not yet used by the server: this is the format and its search (search.ts), measured beside the
 * SQLite store in bench/storage/options.ts. Next: a partition rewritten as a segment when it
 * closes, and erasure as a rewrite without the erased rows.
 */
import { compress, decompress } from 'zstd-napi';
import type { IndexRow } from '../../event/searchable.js';
import { tokenize } from '../../index/unicode61.js';
import { UUID_ID } from '../fs/query-schema.js';
import { ByteReader, ByteWriter } from './varint.js';

export const BLOCK_ROWS = 8192;
export const TOKEN_GROUP = 128;
const MAGIC = Buffer.from('STSEG1\n');
const TRAILER = Buffer.from('SEG1');
const LEVEL = 3;

/** Fields with few distinct values, stored as numbers into the dictionary. */
export const CODED = [
  'actor',
  'actor_type',
  'on_behalf_of',
  'action',
  'source',
  'host',
  'resource_type',
  'outcome',
  'tier',
  'key_id',
  'principal',
] as const satisfies readonly (keyof IndexRow)[];
export type Coded = (typeof CODED)[number];

const COLUMNS = ['idx', 'time', 'received', 'id', 'verified', 'resource_id', 'subject', ...CODED] as const;
export type Column = (typeof COLUMNS)[number];
type Numeric = 'idx' | 'time' | 'received' | 'verified';
const isNumeric = (c: Column): c is Numeric => c === 'idx' || c === 'time' || c === 'received' || c === 'verified';
const isCoded = (c: Column): c is Coded => (CODED as readonly string[]).includes(c);

/** `out.length` LEB128 values of `buf`: as they are, summed (deltas), or zigzag-decoded and summed (signed deltas). */
function readVarints(buf: Uint8Array, out: Float64Array | Uint32Array, mode: 'plain' | 'delta' | 'signed-delta'): void {
  let pos = 0;
  let prev = 0;
  for (let i = 0; i < out.length; i++) {
    let byte = buf[pos++] as number;
    let v = byte & 0x7f;
    for (let scale = 0x80; byte >= 0x80; scale *= 0x80) {
      if (pos >= buf.length || scale > 2 ** 56) throw new RangeError('a varint runs past its column');
      byte = buf[pos++] as number;
      v += (byte & 0x7f) * scale;
    }
    if (mode === 'signed-delta') v = v % 2 === 0 ? v / 2 : -(v + 1) / 2;
    if (mode !== 'plain') {
      prev += v;
      v = prev;
    }
    out[i] = v;
  }
  if (pos > buf.length) throw new RangeError('a column ends before its rows');
}

export interface SegmentOptions {
  /** Keep each row's token positions (phrases answered from the index alone). */
  positions?: boolean;
}

type Span = [offset: number, length: number];
type TokenGroup = { first: string; tokens: Span; postings: Span };
export interface BlockInfo {
  rows: number;
  idx: [min: number, max: number];
  time: [min: number, max: number];
  /** The dictionary numbers (0: none) each coded column uses in the block, ascending. */
  codes: Record<Coded, number[]>;
  columns: Record<Column, Span>;
  text: TokenGroup[];
}
interface Directory {
  v: 1;
  rows: number;
  blockRows: number;
  positions: boolean;
  dictionary: Span;
  blocks: BlockInfo[];
}

/** One segment file's bytes for `rows` (ascending idx) and each row's full text. */
export function encodeSegment(rows: readonly { row: IndexRow; text: string }[], opts: SegmentOptions = {}): Buffer {
  const positions = opts.positions ?? false;
  for (let i = 1; i < rows.length; i++)
    if ((rows[i] as { row: IndexRow }).row.idx <= (rows[i - 1] as { row: IndexRow }).row.idx)
      throw new Error(`segment rows must ascend by idx: ${rows[i]?.row.idx} follows ${rows[i - 1]?.row.idx}`);
  const parts: Buffer[] = [MAGIC];
  let at = MAGIC.length;
  const put = (b: Buffer): Span => {
    const span: Span = [at, b.length];
    parts.push(b);
    at += b.length;
    return span;
  };
  const frame = (w: ByteWriter): Span => put(compress(w.finish(), { compressionLevel: LEVEL }));

  const values = new Set<string>();
  for (const { row } of rows) for (const c of CODED) if (row[c] !== null) values.add(row[c] as string);
  const sorted = [...values].sort();
  const code = new Map(sorted.map((v, i) => [v, i + 1]));
  const dw = new ByteWriter();
  dw.uvarint(sorted.length);
  for (const v of sorted) dw.string(v);
  const dictionary = frame(dw);

  const blocks: BlockInfo[] = [];
  for (let b = 0; b < rows.length; b += BLOCK_ROWS) {
    const block = rows.slice(b, b + BLOCK_ROWS);
    const columns = {} as Record<Column, Span>;
    for (const c of COLUMNS) {
      const w = new ByteWriter();
      let prev = 0;
      for (const { row } of block) {
        writeValue(w, c, row, code, prev);
        prev = deltaBase(c, row, prev);
      }
      columns[c] = frame(w);
    }
    const codes = {} as Record<Coded, number[]>;
    for (const c of CODED)
      codes[c] = [...new Set(block.map(({ row }) => (row[c] === null ? 0 : (code.get(row[c] as string) as number))))].sort(
        (x, y) => x - y,
      );
    const times = block.map(({ row }) => row.time);
    blocks.push({
      rows: block.length,
      idx: [(block[0] as { row: IndexRow }).row.idx, (block[block.length - 1] as { row: IndexRow }).row.idx],
      time: [Math.min(...times), Math.max(...times)],
      codes,
      columns,
      text: textIndex(block, positions, frame),
    });
  }

  const dir: Directory = { v: 1, rows: rows.length, blockRows: BLOCK_ROWS, positions, dictionary, blocks };
  const json = compress(Buffer.from(JSON.stringify(dir)), { compressionLevel: LEVEL });
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  parts.push(json, len, TRAILER);
  return Buffer.concat(parts);
}

/** One block's inverted index: token groups, each a frame of tokens and one of their postings. */
function textIndex(block: readonly { text: string }[], positions: boolean, frame: (w: ByteWriter) => Span): TokenGroup[] {
  // token → rows (and positions), rows ascending as they are visited.
  const post = new Map<string, { rows: number[]; pos: number[][] }>();
  block.forEach(({ text }, r) => {
    const seen = new Map<string, number[]>();
    tokenize(text).forEach((t, p) => {
      const ps = seen.get(t);
      if (ps) ps.push(p);
      else seen.set(t, [p]);
    });
    for (const [t, ps] of seen) {
      const e = post.get(t) ?? { rows: [], pos: [] };
      post.set(t, e);
      e.rows.push(r);
      if (positions) e.pos.push(ps);
    }
  });
  const tokens = [...post.keys()].sort();
  const groups: TokenGroup[] = [];
  for (let g = 0; g < tokens.length; g += TOKEN_GROUP) {
    const group = tokens.slice(g, g + TOKEN_GROUP);
    const tw = new ByteWriter();
    const pw = new ByteWriter();
    tw.uvarint(group.length);
    let last = '';
    for (const t of group) {
      const shared = commonPrefix(last, t);
      tw.uvarint(shared);
      tw.string(t.slice(shared));
      const e = post.get(t) as { rows: number[]; pos: number[][] };
      tw.uvarint(e.rows.length);
      let prev = -1;
      e.rows.forEach((r, k) => {
        pw.uvarint(r - prev - 1);
        prev = r;
        if (positions) {
          const ps = e.pos[k] as number[];
          pw.uvarint(ps.length);
          let pp = -1;
          for (const p of ps) {
            pw.uvarint(p - pp - 1);
            pp = p;
          }
        }
      });
      last = t;
    }
    groups.push({ first: group[0] as string, tokens: frame(tw), postings: frame(pw) });
  }
  return groups;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** What the next row's delta of column `c` is taken from. */
function deltaBase(c: Column, row: IndexRow, prev: number): number {
  return c === 'idx' || c === 'time' || c === 'received' ? row[c] : prev;
}

function writeValue(w: ByteWriter, c: Column, row: IndexRow, code: Map<string, number>, prev: number): void {
  switch (c) {
    case 'idx':
      w.uvarint(row.idx - prev);
      return;
    case 'time':
    case 'received':
      w.zigzag(row[c] - prev);
      return;
    case 'verified':
      w.uvarint(row.verified);
      return;
    case 'id':
      if (UUID_ID.test(row.id)) {
        w.uvarint(0);
        w.bytes(Buffer.from(row.id.replaceAll('-', ''), 'hex'));
      } else w.string(row.id); // never empty, so its length is never the UUID's 0
      return;
    case 'resource_id':
    case 'subject': {
      const v = row[c];
      if (v === null) w.uvarint(0);
      else {
        const b = Buffer.from(v, 'utf8');
        w.uvarint(b.length + 1);
        w.bytes(b);
      }
      return;
    }
    default: {
      const v = row[c as Coded];
      w.uvarint(v === null ? 0 : (code.get(v) as number));
    }
  }
}

/** Reads a segment's columns and postings; every frame is checked by zstd and every read is bounded. */
export class SegmentReader {
  readonly rows: number;
  readonly positions: boolean;
  private readonly dir: Directory;
  private dict: string[] | undefined;

  constructor(private readonly bytes: Buffer) {
    const bad = (why: string) => new Error(`not a Stele segment: ${why}`);
    if (bytes.length < MAGIC.length + 8 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw bad('no STSEG1 header');
    if (!bytes.subarray(-4).equals(TRAILER)) throw bad('no SEG1 trailer (a truncated file?)');
    const len = bytes.readUInt32LE(bytes.length - 8);
    if (len > bytes.length - MAGIC.length - 8) throw bad(`a directory of ${len} bytes in a file of ${bytes.length}`);
    this.dir = JSON.parse(decompress(bytes.subarray(bytes.length - 8 - len, bytes.length - 8)).toString()) as Directory;
    if (this.dir.v !== 1) throw bad(`version ${this.dir.v}`);
    this.rows = this.dir.rows;
    this.positions = this.dir.positions;
  }

  private frame([offset, length]: Span): ByteReader {
    if (offset < MAGIC.length || offset + length > this.bytes.length)
      throw new Error(`segment span ${offset}+${length} out of the file`);
    return new ByteReader(decompress(this.bytes.subarray(offset, offset + length)));
  }

  /** The dictionary of coded values; number n is entry n - 1. */
  dictionary(): string[] {
    if (!this.dict) {
      const r = this.frame(this.dir.dictionary);
      this.dict = Array.from({ length: r.uvarint() }, () => r.string());
    }
    return this.dict;
  }

  /** Rows a block holds (the last may hold fewer): row r is in block floor(r / blockCapacity). */
  get blockCapacity(): number {
    return this.dir.blockRows;
  }

  get blocks(): number {
    return this.dir.blocks.length;
  }

  /** What the directory says of block `b` (ranges and codes used), without reading it. */
  block(b: number): BlockInfo {
    const info = this.dir.blocks[b];
    if (!info) throw new RangeError(`segment has no block ${b}`);
    return info;
  }

  /** Column `c` of block `b`, decoded. */
  column(c: Column, b: number, keep?: Uint8Array): (string | number | null)[] {
    if (isNumeric(c)) return Array.from(this.numbers(c, b));
    if (isCoded(c)) {
      const dict = this.dictionary();
      return Array.from(this.codes(c, b), (n) => (n === 0 ? null : (dict[n - 1] ?? null)));
    }
    const r = this.frame(this.block(b).columns[c]);
    const n = this.blockSize(b);
    const out: (string | null)[] = new Array(n);
    for (let i = 0; i < n; i++) {
      // Rows not kept are read past, not built (strings and ids are most of a block's cost).
      const built = !keep || keep[i] === 1;
      const len = r.uvarint();
      if (c === 'id') {
        if (!built) r.skip(len === 0 ? 16 : len);
        else if (len === 0) {
          const h = Buffer.from(r.bytes(16)).toString('hex');
          out[i] = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
        } else out[i] = Buffer.from(r.bytes(len)).toString('utf8');
      } else if (!built) r.skip(Math.max(0, len - 1));
      else out[i] = len === 0 ? null : Buffer.from(r.bytes(len - 1)).toString('utf8');
    }
    return out;
  }

  /** A numeric column of block `b`: idx and times summed from their deltas. */
  numbers(c: Numeric, b: number): Float64Array {
    const out = new Float64Array(this.blockSize(b));
    readVarints(this.raw(b, c), out, c === 'idx' ? 'delta' : c === 'verified' ? 'plain' : 'signed-delta');
    return out;
  }

  /** The dictionary numbers of coded column `c` in block `b` (0: none; n: dictionary()[n - 1]). */
  codes(c: Coded, b: number): Uint32Array {
    const out = new Uint32Array(this.blockSize(b));
    readVarints(this.raw(b, c), out, 'plain');
    return out;
  }

  private raw(b: number, c: Column): Uint8Array {
    const [offset, length] = this.block(b).columns[c];
    if (offset < MAGIC.length || offset + length > this.bytes.length)
      throw new Error(`segment span ${offset}+${length} out of the file`);
    return decompress(this.bytes.subarray(offset, offset + length));
  }

  /** How many rows block `b` holds. */
  blockSize(b: number): number {
    return this.block(b).rows;
  }

  /** Every row of block `b`, as the row store would give it back. */
  blockRows(b: number): IndexRow[] {
    return this.rowsAt(
      b,
      Array.from({ length: this.blockSize(b) }, (_, i) => i),
    );
  }

  /** Rows `at` (positions within block `b`), in that order. */
  rowsAt(b: number, at: readonly number[]): IndexRow[] {
    const keep = new Uint8Array(this.blockSize(b));
    for (const i of at) keep[i] = 1;
    const dict = this.dictionary();
    const rows = at.map(() => ({}) as Record<string, unknown>);
    for (const c of COLUMNS) {
      const set = (value: (i: number) => unknown) => {
        at.forEach((i, k) => {
          (rows[k] as Record<string, unknown>)[c] = value(i);
        });
      };
      if (isNumeric(c)) {
        const v = this.numbers(c, b);
        set((i) => v[i]);
      } else if (isCoded(c)) {
        const v = this.codes(c, b);
        set((i) => (v[i] === 0 ? null : dict[(v[i] as number) - 1]));
      } else {
        const v = this.column(c, b, keep);
        set((i) => v[i]);
      }
    }
    return rows as unknown as IndexRow[];
  }

  /**
   * Each token of block `b` from `from` on, in sorted order, with the rows of the block that hold
   * it (and their positions when kept), until `visit` answers false.
   */
  forTokens(b: number, from: string, visit: (token: string, postings: Posting[]) => boolean): void {
    const text = this.block(b).text;
    // The last group starting at or before `from` (binary search on each group's first token).
    let lo = 0;
    let hi = text.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((text[mid] as { first: string }).first <= from) lo = mid;
      else hi = mid - 1;
    }
    for (let g = lo; g < text.length; g++) {
      const group = text[g] as TokenGroup;
      const tr = this.frame(group.tokens);
      const pr = this.frame(group.postings);
      let last = '';
      for (let n = tr.uvarint(); n > 0; n--) {
        const shared = tr.uvarint();
        last = last.slice(0, shared) + tr.string();
        const count = tr.uvarint();
        const wanted = last >= from;
        const out: Posting[] = wanted ? new Array(count) : [];
        let prev = -1;
        for (let k = 0; k < count; k++) {
          prev += pr.uvarint() + 1;
          let positions: number[] | undefined;
          if (this.positions) {
            positions = [];
            let pp = -1;
            for (let m = pr.uvarint(); m > 0; m--) {
              pp += pr.uvarint() + 1;
              positions.push(pp);
            }
          }
          if (wanted) out[k] = positions ? { row: prev, positions } : { row: prev };
        }
        if (wanted && !visit(last, out)) return;
      }
    }
  }

  /** The rows of block `b` (numbers within it) whose text holds `token`, each with its positions when kept. */
  postings(b: number, token: string): Posting[] {
    let found: Posting[] = [];
    this.forTokens(b, token, (t, ps) => {
      if (t === token) found = ps;
      return false;
    });
    return found;
  }
}

/** A row (its number within the segment) holding a token, and where in its text when kept. */
export interface Posting {
  row: number;
  positions?: number[];
}
