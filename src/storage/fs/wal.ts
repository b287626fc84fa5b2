import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { syncDir } from '../../core/durable.js';
import { metrics } from '../../core/metrics.js';
import type { SequencedEntry } from '../../log/storage.js';

/**
 * The sequencer's write-ahead log: the durable home of every entry from the moment it is
 * acknowledged until the tiles and bundles that hold it are known to be on disk.
 *
 * Segments are files named by the index of their first entry (20 digits, so they sort). A record is
 * `u32 length ‖ u32 crc32 ‖ payload`, payload `u8 id length ‖ id ‖ leaf`, or, for an entry with a
 * content digest, `0x00 ‖ 16-byte digest ‖ u8 id length ‖ id ‖ leaf` (ids are never empty, so the
 * zero byte tells the forms apart and older segments still read). One group commit is one
 * write and one fdatasync, so a crash can only tear the tail of the newest segment, and only records
 * that were never acknowledged.
 */

const HEADER = 8;
const DIGEST = 16;
const SEGMENT_BYTES = 64 * 1024 * 1024;
/** A torn tail is at most one group commit; more junk than this after a bad record is corruption. */
export const MAX_GROUP_BYTES = 64 * 1024 * 1024;

export function encodeRecords(entries: readonly SequencedEntry[]): Buffer {
  let total = 0;
  const n = entries.length;
  // Ids are ASCII (UUIDs) almost always: their byte length is their string length, and they are
  // written straight into the output. Others are encoded once up front.
  let encoded: (Buffer | undefined)[] | undefined;
  for (let i = 0; i < n; i++) {
    const e = entries[i] as SequencedEntry;
    let idLen = e.id.length;
    if (!isAscii(e.id)) {
      encoded ??= new Array(n);
      const id = Buffer.from(e.id, 'utf8');
      encoded[i] = id;
      idLen = id.length;
    }
    if (idLen > 255) throw new Error(`entry id is ${idLen} bytes; the write-ahead log allows 255`);
    if (idLen === 0) throw new Error('entry id is empty');
    total += HEADER + 1 + idLen + e.leaf.length + (e.digest ? 1 + DIGEST : 0);
  }
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const e = entries[i] as SequencedEntry;
    const d = e.digest;
    const start = off + HEADER;
    let p = start;
    if (d) {
      if (d.length !== DIGEST) throw new Error(`entry digest is ${d.length} bytes; the write-ahead log holds ${DIGEST}`);
      out[p++] = 0;
      out.set(d, p);
      p += DIGEST;
    }
    const id = encoded?.[i];
    if (id) {
      out[p++] = id.length;
      p += id.copy(out, p);
    } else {
      out[p++] = e.id.length;
      p += out.write(e.id, p, 'latin1');
    }
    out.set(e.leaf, p);
    p += e.leaf.length;
    const len = p - start;
    out.writeUInt32BE(len, off);
    out.writeUInt32BE(crc32(out.subarray(start, p)), off + 4);
    off = p;
  }
  return out;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

export interface DecodedSegment {
  entries: SequencedEntry[];
  /** Bytes of valid records; anything after is a torn tail. */
  validBytes: number;
}

export function decodeRecords(buf: Buffer): DecodedSegment {
  const entries: SequencedEntry[] = [];
  let off = 0;
  while (off + HEADER <= buf.length) {
    const len = buf.readUInt32BE(off);
    const sum = buf.readUInt32BE(off + 4);
    const start = off + HEADER;
    if (len < 1 || start + len > buf.length) break;
    const payload = buf.subarray(start, start + len);
    if (crc32(payload) !== sum) break;
    const pre = payload[0] === 0 ? 1 + DIGEST : 0;
    if (pre + 1 > len) break;
    const idLen = payload[pre] as number;
    if (pre + 1 + idLen > len) break;
    const entry: SequencedEntry = {
      id: payload.toString('utf8', pre + 1, pre + 1 + idLen),
      leaf: Buffer.from(payload.subarray(pre + 1 + idLen)),
    };
    if (pre) entry.digest = Buffer.from(payload.subarray(1, 1 + DIGEST));
    entries.push(entry);
    off = start + len;
  }
  return { entries, validBytes: off };
}

const segmentName = (first: number) => `${String(first).padStart(20, '0')}.wal`;

export class WriteAheadLog {
  private fh: FileHandle | null = null;
  private segBytes = 0;
  /** First index of every segment on disk, ascending. */
  private segments: number[] = [];

  private constructor(
    private readonly dir: string,
    private nextIndex: number,
  ) {}

  /**
   * Opens the WAL, truncates a torn tail, and returns the entries from `from` on.
   * Throws when the WAL does not reach back to `from` or is corrupt before its tail.
   */
  static async open(dir: string, from: number): Promise<{ wal: WriteAheadLog; entries: SequencedEntry[] }> {
    const segments = readdirSync(dir)
      .filter((n) => /^\d{20}\.wal$/.test(n))
      .map((n) => Number(n.slice(0, 20)))
      .sort((a, b) => a - b);
    const entries: SequencedEntry[] = [];
    let next = from;
    /** Whether a segment holding `from` was read (an empty one counts). */
    let started = false;
    for (let i = 0; i < segments.length; i++) {
      const segFirst = segments[i] as number;
      const segNext = segments[i + 1];
      if (segNext !== undefined && segNext <= from) continue;
      const path = join(dir, segmentName(segFirst));
      const buf = readFileSync(path);
      const dec = decodeRecords(buf);
      const last = i === segments.length - 1;
      if (dec.validBytes < buf.length) {
        const junk = buf.length - dec.validBytes;
        if (!last || junk > MAX_GROUP_BYTES) {
          throw new Error(`write-ahead log ${path} is corrupt at byte ${dec.validBytes} (${junk} bytes unreadable)`);
        }
        // A torn tail from a crash mid-write: those records were never acknowledged.
        const fh = await open(path, 'r+');
        await fh.truncate(dec.validBytes);
        await fh.datasync();
        await fh.close();
      }
      if (!started) {
        if (segFirst > from) throw new Error(`write-ahead log starts at entry ${segFirst}, but recovery needs entry ${from}`);
        started = true;
        entries.push(...dec.entries.slice(from - segFirst));
        next = segFirst + dec.entries.length;
      } else {
        if (segFirst !== next)
          throw new Error(`write-ahead log segment ${segmentName(segFirst)} does not follow entry ${next - 1}`);
        entries.push(...dec.entries);
        next = segFirst + dec.entries.length;
      }
    }
    if (next < from) throw new Error(`write-ahead log ends at entry ${next}, but recovery needs entries from ${from}`);
    const wal = new WriteAheadLog(dir, next);
    wal.segments = segments;
    return { wal, entries };
  }

  /** Durably appends entries starting at `first` (which must be the next index). */
  async append(first: number, entries: readonly SequencedEntry[]): Promise<void> {
    if (first !== this.nextIndex) throw new Error(`write-ahead log expected entry ${this.nextIndex}, got ${first}`);
    if (!this.fh || this.segBytes >= SEGMENT_BYTES) await this.rotate(first);
    const buf = encodeRecords(entries);
    const fh = this.fh as FileHandle;
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await fh.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
    const t = performance.now();
    await fh.datasync();
    metrics.walSync((performance.now() - t) / 1000, buf.length);
    this.segBytes += buf.length;
    this.nextIndex += entries.length;
  }

  /** Deletes segments whose entries all lie below `size` (they are durable in tiles elsewhere). */
  truncateBefore(size: number): void {
    while (this.segments.length > 1) {
      const next = this.segments[1] as number;
      if (next > size) break;
      const first = this.segments.shift() as number;
      unlinkSync(join(this.dir, segmentName(first)));
    }
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = null;
  }

  private async rotate(first: number): Promise<void> {
    await this.fh?.close();
    // A new segment per process start too: the previous tail may have been truncated, and
    // appending after it would be fine, but starting fresh keeps segment names == first index.
    this.fh = await open(join(this.dir, segmentName(first)), 'a', 0o600);
    this.segBytes = 0;
    if (this.segments[this.segments.length - 1] !== first) this.segments.push(first);
    await syncDir(this.dir);
  }
}
