/**
 * LEB128 varints for the segment format: unsigned, and zigzag for signed deltas. Plain numbers, not
 * bigints: every value a segment holds (indices, microsecond times and their deltas, lengths) is a
 * safe integer, and arithmetic instead of shifts keeps the full 53 bits.
 */

/** A growable byte buffer written front to back. */
export class ByteWriter {
  private buf = new Uint8Array(1024);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** A non-negative safe integer, 7 bits a byte, low bits first. */
  uvarint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`uvarint of ${n}`);
    this.room(8);
    while (n >= 0x80) {
      this.buf[this.length++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.length++] = n;
  }

  /** A signed integer of magnitude under 2^52: 0, -1, 1, -2, … as 0, 1, 2, 3, … */
  zigzag(n: number): void {
    if (!(Math.abs(n) < 2 ** 52)) throw new RangeError(`zigzag of ${n}`);
    this.uvarint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** A length-prefixed UTF-8 string. */
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.uvarint(b.length);
    this.bytes(b);
  }

  /** The bytes written (a copy: the writer may be reused). */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

/** Reads what a ByteWriter wrote; every read past the end throws rather than inventing zeros. */
export class ByteReader {
  pos = 0;

  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  uvarint(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.buf.length) throw new RangeError('varint runs past the end');
      const b = this.buf[this.pos++] as number;
      n += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 56) throw new RangeError('varint longer than 8 bytes');
    }
    return n;
  }

  zigzag(): number {
    const z = this.uvarint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new RangeError(`${n} bytes run past the end`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** Moves past `n` bytes without reading them. */
  skip(n: number): void {
    if (this.pos + n > this.buf.length) throw new RangeError(`${n} bytes run past the end`);
    this.pos += n;
  }

  string(): string {
    return Buffer.from(this.bytes(this.uvarint())).toString('utf8');
  }
}
