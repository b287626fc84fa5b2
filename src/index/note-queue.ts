/**
 * The index thread's queue of index notes (event/searchable.ts indexNote) for entries it has not
 * indexed yet, in log order. Up to `memMax` notes are kept in memory; past that, whole runs of
 * notes go to a spill file, appended in order and read back in order once the thread gets to
 * them, so a backlog of any length is indexed from its notes (half the cost of opening the
 * leaves, bench:index) and costs disk, not memory. Without a file, notes past `memMax` are
 * dropped and those entries are opened from their leaves. The file holds derived data only: it is
 * emptied when the queue is created and whenever it drains.
 *
 * Notes are what the query store holds (searchable fields and text, in the clear), and a file's
 * freed blocks are not scrubbed like the store's pages (secure-delete): so each run is sealed with
 * AES-256-GCM under a key that only this thread's memory holds and that is replaced whenever the
 * file drains. What an erasure or expiry leaves in the file's old blocks is unreadable once the
 * queue has drained (an erasure first waits for the index to catch up) or the process has ended;
 * a run whose tag does not check is dropped (those entries are opened from their leaves).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, truncateSync, writeFileSync, writeSync } from 'node:fs';

interface Spilled {
  first: number;
  count: number;
  offset: number;
  bytes: number;
  iv: Buffer;
  tag: Buffer;
}

export class NoteQueue {
  private readonly mem = new Map<number, Buffer>();
  /** Runs in the file not yet read back, oldest first; while any is, new runs go to the file too (order). */
  private spilled: Spilled[] = [];
  private end = 0;
  /** Seals the runs in the file; replaced each time the file is emptied. */
  private key = randomBytes(32);

  /**
   * The file is opened for each run written or read back, not held open: the index thread has no
   * shutdown of its own (it is terminated), and a descriptor held here would outlive it.
   */
  constructor(
    private readonly file: string | null,
    private readonly memMax: number,
  ) {
    if (file !== null) writeFileSync(file, '', { mode: 0o600 });
  }

  /** Notes of entries first, first + 1, … (an empty note: none for that entry). */
  push(first: number, notes: readonly Buffer[]): void {
    if (this.spilled.length === 0 && this.mem.size + notes.length <= this.memMax) {
      for (let k = 0; k < notes.length; k++) if ((notes[k] as Buffer).length > 0) this.mem.set(first + k, notes[k] as Buffer);
      return;
    }
    if (this.file === null) return;
    // One record: the count, each note's length, then the notes back to back.
    const head = Buffer.allocUnsafe(4 + 4 * notes.length);
    head.writeUInt32LE(notes.length, 0);
    for (let k = 0; k < notes.length; k++) head.writeUInt32LE((notes[k] as Buffer).length, 4 + 4 * k);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const run = Buffer.concat([cipher.update(Buffer.concat([head, ...notes])), cipher.final()]);
    this.io('r+', (fd) => writeSync(fd, run, 0, run.length, this.end));
    this.spilled.push({ first, count: notes.length, offset: this.end, bytes: run.length, iv, tag: cipher.getAuthTag() });
    this.end += run.length;
  }

  /** The note of entry `i`, if queued (reading spilled runs back once `i` reaches them). */
  get(i: number): Buffer | undefined {
    const hit = this.mem.get(i);
    if (hit) return hit;
    while (this.spilled.length > 0 && (this.spilled[0] as Spilled).first <= i && this.mem.size < this.memMax) this.load();
    return this.mem.get(i);
  }

  /** Forgets the notes of entries below `next` (indexed). */
  dropBelow(next: number): void {
    for (const i of this.mem.keys()) {
      if (i >= next) break; // a Map keeps insertion order, which is log order
      this.mem.delete(i);
    }
    while (this.spilled.length > 0 && this.spilled[0] && this.spilled[0].first + this.spilled[0].count <= next)
      this.spilled.shift();
    this.emptyIfDrained();
  }

  private io(flags: string, f: (fd: number) => void): void {
    const fd = openSync(this.file as string, flags);
    try {
      f(fd);
    } finally {
      closeSync(fd);
    }
  }

  private emptyIfDrained(): void {
    if (this.spilled.length > 0 || this.end === 0 || this.file === null) return;
    truncateSync(this.file, 0);
    this.end = 0;
    this.key = randomBytes(32);
  }

  private load(): void {
    const s = this.spilled.shift() as Spilled;
    const sealed = Buffer.allocUnsafe(s.bytes);
    this.io('r', (fd) => readSync(fd, sealed, 0, s.bytes, s.offset));
    let buf: Buffer;
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, s.iv);
      d.setAuthTag(s.tag);
      buf = Buffer.concat([d.update(sealed), d.final()]);
    } catch {
      buf = Buffer.alloc(0); // altered on disk: these entries are opened from their leaves instead
    }
    this.emptyIfDrained();
    if (buf.length === 0) return;
    let off = 4 + 4 * s.count;
    for (let k = 0; k < s.count; k++) {
      const n = buf.readUInt32LE(4 + 4 * k);
      if (n > 0) this.mem.set(s.first + k, buf.subarray(off, off + n));
      off += n;
    }
  }
}
