/**
 * The index thread's queue of index notes (event/searchable.ts indexNote) for entries it has not
 * indexed yet, in log order. Up to `memMax` notes are kept in memory; past that, whole runs of
 * notes go to a spill file, appended in order and read back in order once the thread gets to
 * them, so a backlog of any length is indexed from its notes (half the cost of opening the
 * leaves, bench:index) and costs disk, not memory. Without a file, notes past `memMax` are
 * dropped and those entries are opened from their leaves. The file holds derived data only: it is
 * emptied when the queue is created and whenever it drains.
 */
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';

interface Spilled {
  first: number;
  count: number;
  offset: number;
  bytes: number;
}

export class NoteQueue {
  private readonly mem = new Map<number, Buffer>();
  /** Runs in the file not yet read back, oldest first; while any is, new runs go to the file too (order). */
  private spilled: Spilled[] = [];
  private fd: number | null;
  private end = 0;

  constructor(
    file: string | null,
    private readonly memMax: number,
  ) {
    this.fd = file === null ? null : openSync(file, 'w+', 0o600);
  }

  /** Notes of entries first, first + 1, … (an empty note: none for that entry). */
  push(first: number, notes: readonly Buffer[]): void {
    if (this.spilled.length === 0 && this.mem.size + notes.length <= this.memMax) {
      for (let k = 0; k < notes.length; k++) if ((notes[k] as Buffer).length > 0) this.mem.set(first + k, notes[k] as Buffer);
      return;
    }
    if (this.fd === null) return;
    // One record: the count, each note's length, then the notes back to back.
    const head = Buffer.allocUnsafe(4 + 4 * notes.length);
    head.writeUInt32LE(notes.length, 0);
    for (let k = 0; k < notes.length; k++) head.writeUInt32LE((notes[k] as Buffer).length, 4 + 4 * k);
    const run = Buffer.concat([head, ...notes]);
    writeSync(this.fd, run, 0, run.length, this.end);
    const bytes = run.length;
    this.spilled.push({ first, count: notes.length, offset: this.end, bytes });
    this.end += bytes;
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
    if (this.spilled.length === 0 && this.end > 0 && this.fd !== null) {
      ftruncateSync(this.fd, 0);
      this.end = 0;
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private load(): void {
    const s = this.spilled.shift() as Spilled;
    const buf = Buffer.allocUnsafe(s.bytes);
    readSync(this.fd as number, buf, 0, s.bytes, s.offset);
    let off = 4 + 4 * s.count;
    for (let k = 0; k < s.count; k++) {
      const n = buf.readUInt32LE(4 + 4 * k);
      if (n > 0) this.mem.set(s.first + k, buf.subarray(off, off + n));
      off += n;
    }
    if (this.spilled.length === 0 && this.fd !== null) {
      ftruncateSync(this.fd, 0);
      this.end = 0;
    }
  }
}
