/**
 * A closed query-store partition as one immutable file of compressed columns and a full-text
 * inverted index (issue 18: the row store's B-trees cost 312 bytes an event; a partition that will
 * never take another row can be written once in a form built for size). Pure: bytes in, bytes out.
 *
 * Layout: `STSEG1\n`, then the sections, then the directory (zstd JSON), then its length (u32 LE)
 * and `SEG1`. Every section is a frame: a byte saying how it is stored (0 as is, 1 zstd), then
 * its bytes. Sections:
 * - the dictionary: every value of the coded fields (CODED), sorted, each held once;
 * - the vocabulary: every token of the full text, sorted and front-coded in groups of
 *   TOKEN_GROUP, each with the blocks that hold it; a token's number is its place in it;
 * - per block of BLOCK_ROWS rows, so a search reads the newest blocks first and stops when its
 *   page is full:
 *   - per column, the column's values in the block: `idx` as deltas, `time` and `received` as
 *     signed deltas (each block decodes alone), coded fields as one- or two-byte places in the
 *     block's list of the codes it uses, the event id as its 16 bytes when a UUID;
 *   - the block's full text: its token numbers ascending, in groups, each group a frame of the
 *     numbers (as deltas) with how many rows hold each and the length of their postings (a lookup
 *     skips the others' undecoded), and a frame of the postings: row numbers within the block as
 *     deltas, and with `positions`, each row's token positions (what a phrase needs; without
 *     them a phrase would be confirmed on the entry, like FTS5 detail=none).
 *   The directory keeps each block's idx and time ranges and the codes each coded column uses,
 *   so a search skips blocks without reading them.
 *
 * Not yet used by the server: this is the format, its search (search.ts), counts (tally.ts) and
 * rewrite without erased rows (rewriteSegment), measured beside the SQLite store in
 * bench/storage/options.ts. Next: a partition written as a segment when it closes, and the
 * partitioned store reading it (docs/design.md, segments).
 */
import { compress, decompress } from 'zstd-napi';
import type { IndexRow } from '../../event/searchable.js';
import { tokenize } from '../../index/unicode61.js';
import { CODED_COLUMNS, UUID_ID } from '../fs/query-schema.js';
import { ByteReader, ByteWriter } from './varint.js';

/** Rows a block holds when written from text (the last fewer); a rewrite leaves blocks smaller. */
export const BLOCK_ROWS = 8192;
export const TOKEN_GROUP = 128;
const MAGIC = Buffer.from('STSEG1\n');
const TRAILER = Buffer.from('SEG1');
const LEVEL = 3;

/** Fields with few distinct values, stored as numbers into the dictionary: the row store's, and the tier. */
export const CODED = [...CODED_COLUMNS, 'tier'] as const satisfies readonly (keyof IndexRow)[];
export type Coded = (typeof CODED)[number];

const COLUMNS = ['idx', 'time', 'received', 'id', 'verified', 'resource_id', 'subject', ...CODED] as const;
export type Column = (typeof COLUMNS)[number];
type Numeric = 'idx' | 'time' | 'received' | 'verified';
const isNumeric = (c: Column): c is Numeric => c === 'idx' || c === 'time' || c === 'received' || c === 'verified';
const isCoded = (c: Column): c is Coded => (CODED as readonly string[]).includes(c);

/** `out.length` LEB128 values of `buf`: as they are, summed (deltas), or zigzag-decoded and summed (signed deltas). */
function readVarints(buf: Uint8Array, out: Float64Array | Uint32Array, mode: 'plain' | 'delta' | 'signed-delta'): void {
  const signed = mode === 'signed-delta';
  const sum = mode !== 'plain';
  let pos = 0;
  let prev = 0;
  for (let i = 0; i < out.length; i++) {
    let byte = buf[pos++] as number;
    let v = byte;
    if (byte >= 0x80) {
      v = byte & 0x7f;
      for (let scale = 0x80; byte >= 0x80; scale *= 0x80) {
        if (pos >= buf.length || scale > 2 ** 56) throw new RangeError('a varint runs past its column');
        byte = buf[pos++] as number;
        v += (byte & 0x7f) * scale;
      }
    }
    // Zigzag: with 32-bit operations while they hold the value (most deltas), else arithmetic.
    if (signed) v = v < 0x80000000 ? (v >>> 1) ^ -(v & 1) : v % 2 === 0 ? v / 2 : -(v + 1) / 2;
    if (sum) {
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
/** A block's tokens in groups: `first` is the group's first token id (its place in the vocabulary). */
type TokenGroup = { first: number; tokens: Span; postings: Span };
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
  positions: boolean;
  dictionary: Span;
  blocks: BlockInfo[];
  /** Every token of the segment with the blocks that hold it, in groups of TOKEN_GROUP. */
  vocabulary: { first: string; span: Span }[];
}

/** A block's content: its rows, and each token with the rows (numbers within the block) holding it. */
interface BlockInput {
  rows: IndexRow[];
  tokens: Map<string, Posting[]>;
}

/** One segment file's bytes for `rows` (ascending idx) and each row's full text. */
export function encodeSegment(rows: readonly { row: IndexRow; text: string }[], opts: SegmentOptions = {}): Buffer {
  for (let i = 1; i < rows.length; i++)
    if ((rows[i] as { row: IndexRow }).row.idx <= (rows[i - 1] as { row: IndexRow }).row.idx)
      throw new Error(`segment rows must ascend by idx: ${rows[i]?.row.idx} follows ${rows[i - 1]?.row.idx}`);
  return encodeBlocks(Math.ceil(rows.length / BLOCK_ROWS), opts.positions ?? false, (b) => {
    const block = rows.slice(b * BLOCK_ROWS, (b + 1) * BLOCK_ROWS);
    const tokens = new Map<string, Posting[]>();
    block.forEach(({ text }, r) => {
      tokenize(text).forEach((t, p) => {
        const list = tokens.get(t) ?? [];
        tokens.set(t, list);
        const last = list[list.length - 1];
        if (last?.row === r) last.positions?.push(p);
        else list.push({ row: r, positions: [p] });
      });
    });
    return { rows: block.map((x) => x.row), tokens };
  });
}

/**
 * `seg` written again with only the rows `keep` admits: what an erasure or an expiry leaves. Every
 * trace of a dropped row goes with it: its columns, its postings, a token or a coded value no
 * kept row holds (so an erased person's name is not left in the dictionary or the vocabulary).
 */
export function rewriteSegment(seg: SegmentReader, keep: (row: IndexRow) => boolean): Buffer {
  const vocabulary: string[] = [];
  seg.forVocabulary('', (t) => vocabulary.push(t) > 0);
  return encodeBlocks(seg.blocks, seg.positions, (b) => {
    const old = seg.blockRows(b);
    const renumber = new Map<number, number>();
    const rows = old.filter((row, i) => keep(row) && renumber.set(i, renumber.size) !== undefined);
    const tokens = new Map<string, Posting[]>();
    if (rows.length > 0)
      for (const [id, postings] of seg.blockPostings(b)) {
        const kept = postings.flatMap((p) => {
          const row = renumber.get(p.row);
          return row === undefined ? [] : [{ ...p, row }];
        });
        if (kept.length > 0) tokens.set(vocabulary[id] as string, kept);
      }
    return { rows, tokens };
  });
}

/**
 * The file for `count` blocks of input (each asked for twice: once for the dictionary and the
 * vocabulary, once to be written; blocks with no rows are left out).
 */
function encodeBlocks(count: number, positions: boolean, blockOf: (b: number) => BlockInput): Buffer {
  const parts: Buffer[] = [MAGIC];
  let at = MAGIC.length;
  const put = (b: Buffer): Span => {
    const span: Span = [at, b.length];
    parts.push(b);
    at += b.length;
    return span;
  };
  const frame = (w: ByteWriter): Span => put(packFrame(w.finish()));

  // First pass: the coded values, and each token's blocks (numbered as written), so blocks can
  // name tokens by their number in the vocabulary.
  const values = new Set<string>();
  const tokenBlocks = new Map<string, number[]>();
  let written = 0;
  for (let b = 0; b < count; b++) {
    const { rows, tokens } = blockOf(b);
    if (rows.length === 0) continue;
    for (const row of rows) for (const c of CODED) if (row[c] !== null) values.add(row[c] as string);
    for (const t of tokens.keys()) {
      const list = tokenBlocks.get(t) ?? [];
      tokenBlocks.set(t, list);
      list.push(written);
    }
    written++;
  }
  const sorted = [...values].sort();
  const code = new Map(sorted.map((v, i) => [v, i + 1]));
  const dw = new ByteWriter();
  dw.uvarint(sorted.length);
  for (const v of sorted) dw.string(v);
  const dictionary = frame(dw);
  const vocabularyTokens = [...tokenBlocks.keys()].sort();
  const tokenId = new Map(vocabularyTokens.map((t, i) => [t, i]));
  const vocabulary = vocabularyOf(vocabularyTokens, tokenBlocks, frame);

  const blocks: BlockInfo[] = [];
  let rowCount = 0;
  for (let b = 0; b < count; b++) {
    const { rows: block, tokens } = blockOf(b);
    if (block.length === 0) continue;
    rowCount += block.length;
    const codeOf = (c: Coded, row: IndexRow) => (row[c] === null ? 0 : (code.get(row[c] as string) as number));
    const codes = {} as Record<Coded, number[]>;
    for (const c of CODED) codes[c] = [...new Set(block.map((row) => codeOf(c, row)))].sort((x, y) => x - y);
    const columns = {} as Record<Column, Span>;
    for (const c of COLUMNS) {
      if (isCoded(c)) {
        // Each row's place in the block's list of the codes it uses: one byte (two past 256), so a
        // row is read without decoding the rows before it.
        const local = new Map(codes[c].map((n, i) => [n, i]));
        const width = codes[c].length <= 256 ? 1 : 2;
        const bytes = Buffer.alloc(block.length * width);
        block.forEach((row, i) => {
          const n = local.get(codeOf(c, row)) as number;
          if (width === 1) bytes[i] = n;
          else bytes.writeUInt16LE(n, i * 2);
        });
        columns[c] = put(packFrame(bytes));
        continue;
      }
      const w = new ByteWriter();
      let prev = 0;
      for (const row of block) {
        writeValue(w, c, row, prev);
        prev = deltaBase(c, row, prev);
      }
      columns[c] = frame(w);
    }
    const times = block.map((row) => row.time);
    blocks.push({
      rows: block.length,
      idx: [(block[0] as IndexRow).idx, (block[block.length - 1] as IndexRow).idx],
      time: [Math.min(...times), Math.max(...times)],
      codes,
      columns,
      text: textIndex(tokens, positions, tokenId, frame),
    });
  }

  const dir: Directory = { v: 1, rows: rowCount, positions, dictionary, blocks, vocabulary };
  const json = compress(Buffer.from(JSON.stringify(dir)), { compressionLevel: LEVEL });
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  parts.push(json, len, TRAILER);
  return Buffer.concat(parts);
}

/**
 * A frame: a byte saying how it is stored, then the bytes. Zstd, unless it saves under an eighth
 * (random event ids): those are stored as they are, and read without a decompression.
 */
function packFrame(plain: Buffer): Buffer {
  const packed = compress(plain, { compressionLevel: LEVEL });
  return packed.length < plain.length * 0.875 ? Buffer.concat([FRAME_ZSTD, packed]) : Buffer.concat([FRAME_RAW, plain]);
}
const FRAME_RAW = Buffer.from([0]);
const FRAME_ZSTD = Buffer.from([1]);

/**
 * One block's inverted index: its token numbers ascending, in groups, each group a frame of the
 * numbers (as deltas) with how many rows hold each and their postings' length, and a frame of the
 * postings.
 */
function textIndex(
  tokens: Map<string, Posting[]>,
  positions: boolean,
  tokenId: Map<string, number>,
  frame: (w: ByteWriter) => Span,
): TokenGroup[] {
  const post = new Map([...tokens].map(([t, list]) => [tokenId.get(t) as number, list]));
  const ids = [...post.keys()].sort((x, y) => x - y);
  const groups: TokenGroup[] = [];
  for (let g = 0; g < ids.length; g += TOKEN_GROUP) {
    const group = ids.slice(g, g + TOKEN_GROUP);
    const tw = new ByteWriter();
    const pw = new ByteWriter();
    tw.uvarint(group.length);
    let lastId = (group[0] as number) - 1;
    for (const id of group) {
      tw.uvarint(id - lastId - 1);
      lastId = id;
      const list = post.get(id) as Posting[];
      tw.uvarint(list.length);
      const start = pw.length;
      let prev = -1;
      list.forEach(({ row: r, positions: ps = [] }) => {
        pw.uvarint(r - prev - 1);
        prev = r;
        if (positions) {
          pw.uvarint(ps.length);
          let pp = -1;
          for (const p of ps) {
            pw.uvarint(p - pp - 1);
            pp = p;
          }
        }
      });
      // Its postings' length, so a reader looking for a later token skips them undecoded.
      tw.uvarint(pw.length - start);
    }
    groups.push({ first: group[0] as number, tokens: frame(tw), postings: frame(pw) });
  }
  return groups;
}

/** The segment's tokens, sorted and front-coded, each with the blocks holding it as deltas. */
function vocabularyOf(
  tokens: readonly string[],
  tokenBlocks: Map<string, number[]>,
  frame: (w: ByteWriter) => Span,
): Directory['vocabulary'] {
  const out: Directory['vocabulary'] = [];
  for (let g = 0; g < tokens.length; g += TOKEN_GROUP) {
    const group = tokens.slice(g, g + TOKEN_GROUP);
    const w = new ByteWriter();
    w.uvarint(group.length);
    let last = '';
    for (const t of group) {
      const shared = commonPrefix(last, t);
      w.uvarint(shared);
      w.string(t.slice(shared));
      const bs = tokenBlocks.get(t) as number[];
      w.uvarint(bs.length);
      let prev = -1;
      for (const b of bs) {
        w.uvarint(b - prev - 1);
        prev = b;
      }
      last = t;
    }
    out.push({ first: group[0] as string, span: frame(w) });
  }
  return out;
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

function writeValue(w: ByteWriter, c: Exclude<Column, Coded>, row: IndexRow, prev: number): void {
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
  }
}

/** The last of `groups` (sorted by first token) starting at or before `token`; -1 when none does. */
function lastAtOrBefore<K extends string | number>(groups: readonly { first: K }[], token: K): number {
  let lo = -1;
  let hi = groups.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((groups[mid] as { first: K }).first <= token) lo = mid;
    else hi = mid - 1;
  }
  return lo;
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

  private frame(span: Span): ByteReader {
    return new ByteReader(this.unpack(span));
  }

  /** A frame's bytes, decompressed when it was compressed. */
  private unpack([offset, length]: Span): Uint8Array {
    if (offset < MAGIC.length || length < 1 || offset + length > this.bytes.length)
      throw new Error(`segment span ${offset}+${length} out of the file`);
    const body = this.bytes.subarray(offset + 1, offset + length);
    switch (this.bytes[offset]) {
      case 0:
        return body;
      case 1:
        return decompress(body);
      default:
        throw new Error(`segment frame at ${offset} is of unknown kind ${this.bytes[offset]}`);
    }
  }

  /** The dictionary of coded values; number n is entry n - 1. */
  dictionary(): string[] {
    if (!this.dict) {
      const r = this.frame(this.dir.dictionary);
      this.dict = Array.from({ length: r.uvarint() }, () => r.string());
    }
    return this.dict;
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
      const codes = this.codes(c, b);
      const out: (string | null)[] = new Array(codes.length);
      for (let i = 0; i < codes.length; i++) out[i] = codes[i] === 0 ? null : (dict[(codes[i] as number) - 1] ?? null);
      return out;
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
    const used = this.block(b).codes[c];
    const local = this.localCodes(c, b);
    const out = new Uint32Array(local.length);
    for (let i = 0; i < local.length; i++) out[i] = used[local[i] as number] as number;
    return out;
  }

  /** Each row's place in `block(b).codes[c]`, the codes coded column `c` uses in block `b`. */
  localCodes(c: Coded, b: number): Uint8Array | Uint16Array {
    const raw = this.raw(b, c);
    const n = this.blockSize(b);
    if (raw.length === n) return raw;
    if (raw.length !== n * 2) throw new Error(`segment block ${b} of ${c}: ${raw.length} bytes for ${n} rows`);
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = (raw[2 * i] as number) | ((raw[2 * i + 1] as number) << 8);
    return out;
  }

  private raw(b: number, c: Column): Uint8Array {
    return this.unpack(this.block(b).columns[c]);
  }

  /** The dictionary numbers coded column `c` uses in any block (0: none), ascending. */
  used(c: Coded): number[] {
    return [...new Set(this.dir.blocks.flatMap((b) => b.codes[c]))].sort((x, y) => x - y);
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
        const used = this.block(b).codes[c];
        const v = this.localCodes(c, b);
        set((i) => {
          const n = used[v[i] as number] as number;
          return n === 0 ? null : dict[n - 1];
        });
      } else {
        const v = this.column(c, b, keep);
        set((i) => v[i]);
      }
    }
    return rows as unknown as IndexRow[];
  }

  /**
   * Each token of the segment from `from` on, in sorted order, with its number and the blocks
   * holding it, until `visit` answers false.
   */
  forVocabulary(from: string, visit: (token: string, id: number, blocks: number[]) => boolean): void {
    const vocab = this.dir.vocabulary;
    for (let g = Math.max(0, lastAtOrBefore(vocab, from)); g < vocab.length; g++) {
      const r = this.frame((vocab[g] as { span: Span }).span);
      let last = '';
      let id = g * TOKEN_GROUP;
      for (let n = r.uvarint(); n > 0; n--, id++) {
        const shared = r.uvarint();
        last = last.slice(0, shared) + r.string();
        const blocks: number[] = [];
        let prev = -1;
        for (let k = r.uvarint(); k > 0; k--) {
          prev += r.uvarint() + 1;
          blocks.push(prev);
        }
        if (last >= from && !visit(last, id, blocks)) return;
      }
    }
  }

  /** Token `token`'s number and blocks; null when the segment does not hold it. */
  token(token: string): { id: number; blocks: number[] } | null {
    let found: { id: number; blocks: number[] } | null = null;
    this.forVocabulary(token, (t, id, blocks) => {
      if (t === token) found = { id, blocks };
      return false;
    });
    return found;
  }

  /** The rows of block `b` (numbers within it) holding token number `id`, with their positions when kept. */
  postingsOf(b: number, id: number): Posting[] {
    const text = this.block(b).text;
    const g = lastAtOrBefore(text, id);
    let found: Posting[] = [];
    if (g >= 0)
      this.walkGroup(text[g] as TokenGroup, (at, count, bytes, pr) => {
        if (at < id) {
          pr.skip(bytes);
          return true;
        }
        if (at === id) found = this.readPostings(pr, count);
        return false;
      });
    return found;
  }

  /** Every token number of block `b` with its postings. */
  blockPostings(b: number): Map<number, Posting[]> {
    const out = new Map<number, Posting[]>();
    for (const group of this.block(b).text)
      this.walkGroup(group, (at, count, _bytes, pr) => out.set(at, this.readPostings(pr, count)) !== undefined);
    return out;
  }

  /**
   * Each token of a group in order: its number, how many rows hold it, its postings' length, and
   * the postings reader at them (the visitor reads or skips them), until `visit` answers false.
   */
  private walkGroup(group: TokenGroup, visit: (id: number, count: number, bytes: number, postings: ByteReader) => boolean): void {
    const tr = this.frame(group.tokens);
    const pr = this.frame(group.postings);
    let at = group.first - 1;
    for (let n = tr.uvarint(); n > 0; n--) {
      at += tr.uvarint() + 1;
      const count = tr.uvarint();
      if (!visit(at, count, tr.uvarint(), pr)) return;
    }
  }

  /** `count` postings from `pr`: row deltas, and each row's position deltas when kept. */
  private readPostings(pr: ByteReader, count: number): Posting[] {
    const out: Posting[] = new Array(count);
    let prev = -1;
    for (let k = 0; k < count; k++) {
      prev += pr.uvarint() + 1;
      if (!this.positions) {
        out[k] = { row: prev };
        continue;
      }
      const positions: number[] = [];
      let pp = -1;
      for (let m = pr.uvarint(); m > 0; m--) {
        pp += pr.uvarint() + 1;
        positions.push(pp);
      }
      out[k] = { row: prev, positions };
    }
    return out;
  }

  /** The rows of block `b` (numbers within it) whose text holds `token`, each with its positions when kept. */
  postings(b: number, token: string): Posting[] {
    this.block(b);
    const t = this.token(token);
    return t?.blocks.includes(b) ? this.postingsOf(b, t.id) : [];
  }
}

/** A row (its number within the segment) holding a token, and where in its text when kept. */
export interface Posting {
  row: number;
  positions?: number[];
}
