/**
 * OTLP/HTTP binary protobuf: a decoder for ExportLogsServiceRequest and an encoder for the two
 * messages a server answers with (ExportLogsServiceResponse is empty on success; google.rpc.Status
 * on errors). Hand-written over the protobuf wire format (protobuf.dev/programming-guides/encoding)
 * because Stele needs eleven small messages, not a code generator. Field numbers are those of
 * opentelemetry-proto v1 (common/v1/common.proto, resource/v1/resource.proto, logs/v1/logs.proto).
 *
 * Proto3 rules apply: unknown fields are skipped, the last value of a non-repeated field wins, a
 * oneof keeps its last member, and strings must be valid UTF-8. Anything malformed (truncated
 * data, a known field with the wrong wire type, lengths past the end) is refused with a message
 * naming the field's path, e.g. `resourceLogs[0].scopeLogs[1].logRecords[3].attributes[2].value:
 * truncated varint`.
 */
import {
  MAX_VALUE_DEPTH,
  type OtlpKeyValue,
  type OtlpLogRecord,
  type OtlpLogsRequest,
  type OtlpResourceLogs,
  type OtlpScopeLogs,
  type OtlpValue,
  otlpError,
} from './otlp-model.js';

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const WIRE_NAMES = ['varint', 'i64', 'len', 'start group', 'end group', 'i32', '6', '7'];

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A position in the buffer being decoded. */
class Cursor {
  private readonly view: DataView;
  constructor(
    readonly buf: Uint8Array,
    public pos = 0,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  varint(end: number, path: string): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw otlpError(path, 'truncated varint');
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw otlpError(path, 'varint longer than 10 bytes');
  }

  /** A varint that must fit in 32 bits unsigned (tags, lengths, enums, counts); fast path for one byte. */
  uint32(end: number, path: string): number {
    if (this.pos < end) {
      const b = this.buf[this.pos] as number;
      if (b < 0x80) {
        this.pos++;
        return b;
      }
    }
    const v = this.varint(end, path);
    if (v > 0xffffffffn) throw otlpError(path, `value ${v} does not fit in 32 bits`);
    return Number(v);
  }

  fixed64(end: number, path: string): bigint {
    if (this.pos + 8 > end) throw otlpError(path, 'truncated fixed64');
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  double(end: number, path: string): number {
    if (this.pos + 8 > end) throw otlpError(path, 'truncated double');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  fixed32(end: number, path: string): number {
    if (this.pos + 4 > end) throw otlpError(path, 'truncated fixed32');
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A length-delimited field: returns [start, stop) and moves past it. */
  len(end: number, path: string): [number, number] {
    const n = this.uint32(end, path);
    const start = this.pos;
    if (n > end - start) throw otlpError(path, `length ${n} runs past the end of its message (${end - start} bytes left)`);
    this.pos = start + n;
    return [start, start + n];
  }

  string(end: number, path: string): string {
    const [s, e] = this.len(end, path);
    try {
      return utf8.decode(this.buf.subarray(s, e));
    } catch {
      throw otlpError(path, 'string is not valid UTF-8');
    }
  }

  bytes(end: number, path: string): Uint8Array {
    const [s, e] = this.len(end, path);
    return this.buf.slice(s, e);
  }

  skip(wt: number, end: number, path: string): void {
    switch (wt) {
      case VARINT:
        this.varint(end, path);
        return;
      case I64:
        if (this.pos + 8 > end) throw otlpError(path, 'truncated i64 field');
        this.pos += 8;
        return;
      case LEN:
        this.len(end, path);
        return;
      case I32:
        if (this.pos + 4 > end) throw otlpError(path, 'truncated i32 field');
        this.pos += 4;
        return;
      default:
        throw otlpError(path, `wire type ${WIRE_NAMES[wt]} (${wt}) is not supported`);
    }
  }
}

/**
 * Walks the fields of the message in [c.pos, end). `on` reads a field it knows (after checking its
 * wire type with `want`) and returns true; other fields are skipped.
 */
function fields(c: Cursor, end: number, path: string, on: (no: number, wt: number) => boolean): void {
  while (c.pos < end) {
    const tag = c.uint32(end, path);
    const no = tag >>> 3;
    const wt = tag & 7;
    if (no === 0) throw otlpError(path, 'field number 0 is not allowed');
    if (!on(no, wt)) c.skip(wt, end, `${path} (field ${no})`);
  }
}

function want(wt: number, expected: number, path: string): void {
  if (wt !== expected) throw otlpError(path, `has wire type ${WIRE_NAMES[wt]}, expected ${WIRE_NAMES[expected]}`);
}

function keyValue(c: Cursor, end: number, path: string, depth: number): OtlpKeyValue {
  let key = '';
  let value: OtlpValue = { t: 'empty' };
  fields(c, end, path, (no, wt) => {
    if (no === 1) {
      want(wt, LEN, `${path}.key`);
      key = c.string(end, `${path}.key`);
    } else if (no === 2) {
      want(wt, LEN, `${path}.value`);
      value = sub(c, end, `${path}.value`, (stop) => anyValue(c, stop, `${path}.value`, depth + 1));
    } else return false;
    return true;
  });
  return { key, value };
}

/** Reads a length-delimited submessage: `read` gets a cursor positioned at its start and its end. */
function sub<T>(c: Cursor, end: number, path: string, read: (stop: number) => T): T {
  const [s, e] = c.len(end, path);
  c.pos = s;
  const v = read(e);
  c.pos = e;
  return v;
}

function anyValue(c: Cursor, end: number, path: string, depth: number): OtlpValue {
  if (depth > MAX_VALUE_DEPTH) throw otlpError(path, `values are nested deeper than ${MAX_VALUE_DEPTH} levels`);
  let v: OtlpValue = { t: 'empty' };
  fields(c, end, path, (no, wt) => {
    switch (no) {
      case 1:
        want(wt, LEN, `${path}.stringValue`);
        v = { t: 'string', v: c.string(end, `${path}.stringValue`) };
        return true;
      case 2:
        want(wt, VARINT, `${path}.boolValue`);
        v = { t: 'bool', v: c.varint(end, `${path}.boolValue`) !== 0n };
        return true;
      case 3:
        want(wt, VARINT, `${path}.intValue`);
        v = { t: 'int', v: BigInt.asIntN(64, c.varint(end, `${path}.intValue`)) };
        return true;
      case 4:
        want(wt, I64, `${path}.doubleValue`);
        v = { t: 'double', v: c.double(end, `${path}.doubleValue`) };
        return true;
      case 5: {
        want(wt, LEN, `${path}.arrayValue`);
        const items: OtlpValue[] = [];
        sub(c, end, `${path}.arrayValue`, (stop) =>
          fields(c, stop, `${path}.arrayValue`, (n, w) => {
            if (n !== 1) return false;
            const p = `${path}.arrayValue.values[${items.length}]`;
            want(w, LEN, p);
            items.push(sub(c, stop, p, (s2) => anyValue(c, s2, p, depth + 1)));
            return true;
          }),
        );
        v = { t: 'array', v: items };
        return true;
      }
      case 6: {
        want(wt, LEN, `${path}.kvlistValue`);
        const kvs: OtlpKeyValue[] = [];
        sub(c, end, `${path}.kvlistValue`, (stop) =>
          fields(c, stop, `${path}.kvlistValue`, (n, w) => {
            if (n !== 1) return false;
            const p = `${path}.kvlistValue.values[${kvs.length}]`;
            want(w, LEN, p);
            kvs.push(sub(c, stop, p, (s2) => keyValue(c, s2, p, depth + 1)));
            return true;
          }),
        );
        v = { t: 'kvlist', v: kvs };
        return true;
      }
      case 7:
        want(wt, LEN, `${path}.bytesValue`);
        v = { t: 'bytes', v: c.bytes(end, `${path}.bytesValue`) };
        return true;
      default:
        return false;
    }
  });
  return v;
}

function attribute(c: Cursor, end: number, path: string, into: OtlpKeyValue[]): void {
  const p = `${path}[${into.length}]`;
  into.push(sub(c, end, p, (stop) => keyValue(c, stop, p, 1)));
}

function logRecord(c: Cursor, end: number, path: string): OtlpLogRecord {
  const r: OtlpLogRecord = {
    path,
    timeUnixNano: 0n,
    observedTimeUnixNano: 0n,
    severityNumber: 0,
    severityText: '',
    attributes: [],
    traceId: new Uint8Array(0),
    spanId: new Uint8Array(0),
    flags: 0,
    eventName: '',
  };
  fields(c, end, path, (no, wt) => {
    switch (no) {
      case 1:
        want(wt, I64, `${path}.timeUnixNano`);
        r.timeUnixNano = c.fixed64(end, `${path}.timeUnixNano`);
        return true;
      case 11:
        want(wt, I64, `${path}.observedTimeUnixNano`);
        r.observedTimeUnixNano = c.fixed64(end, `${path}.observedTimeUnixNano`);
        return true;
      case 2:
        want(wt, VARINT, `${path}.severityNumber`);
        r.severityNumber = Number(BigInt.asIntN(32, c.varint(end, `${path}.severityNumber`)));
        return true;
      case 3:
        want(wt, LEN, `${path}.severityText`);
        r.severityText = c.string(end, `${path}.severityText`);
        return true;
      case 5:
        want(wt, LEN, `${path}.body`);
        r.body = sub(c, end, `${path}.body`, (stop) => anyValue(c, stop, `${path}.body`, 1));
        return true;
      case 6:
        want(wt, LEN, `${path}.attributes`);
        attribute(c, end, `${path}.attributes`, r.attributes);
        return true;
      case 8:
        want(wt, I32, `${path}.flags`);
        r.flags = c.fixed32(end, `${path}.flags`);
        return true;
      case 9:
        want(wt, LEN, `${path}.traceId`);
        r.traceId = c.bytes(end, `${path}.traceId`);
        return true;
      case 10:
        want(wt, LEN, `${path}.spanId`);
        r.spanId = c.bytes(end, `${path}.spanId`);
        return true;
      case 12:
        want(wt, LEN, `${path}.eventName`);
        r.eventName = c.string(end, `${path}.eventName`);
        return true;
      default:
        return false; // 7 dropped_attributes_count and anything newer
    }
  });
  return r;
}

function scopeLogs(c: Cursor, end: number, path: string): OtlpScopeLogs {
  const out: OtlpScopeLogs = { logRecords: [] };
  fields(c, end, path, (no, wt) => {
    if (no === 1) {
      want(wt, LEN, `${path}.scope`);
      const scope = { name: '', version: '', attributes: [] as OtlpKeyValue[] };
      sub(c, end, `${path}.scope`, (stop) =>
        fields(c, stop, `${path}.scope`, (n, w) => {
          if (n === 1) {
            want(w, LEN, `${path}.scope.name`);
            scope.name = c.string(stop, `${path}.scope.name`);
          } else if (n === 2) {
            want(w, LEN, `${path}.scope.version`);
            scope.version = c.string(stop, `${path}.scope.version`);
          } else if (n === 3) {
            want(w, LEN, `${path}.scope.attributes`);
            attribute(c, stop, `${path}.scope.attributes`, scope.attributes);
          } else return false;
          return true;
        }),
      );
      out.scope = scope;
    } else if (no === 2) {
      const p = `${path}.logRecords[${out.logRecords.length}]`;
      want(wt, LEN, p);
      out.logRecords.push(sub(c, end, p, (stop) => logRecord(c, stop, p)));
    } else return false;
    return true;
  });
  return out;
}

function resourceLogs(c: Cursor, end: number, path: string): OtlpResourceLogs {
  const out: OtlpResourceLogs = { path, resource: { attributes: [] }, scopeLogs: [] };
  fields(c, end, path, (no, wt) => {
    if (no === 1) {
      want(wt, LEN, `${path}.resource`);
      const attrs: OtlpKeyValue[] = [];
      sub(c, end, `${path}.resource`, (stop) =>
        fields(c, stop, `${path}.resource`, (n, w) => {
          if (n !== 1) return false;
          want(w, LEN, `${path}.resource.attributes`);
          attribute(c, stop, `${path}.resource.attributes`, attrs);
          return true;
        }),
      );
      out.resource = { attributes: attrs };
    } else if (no === 2) {
      const p = `${path}.scopeLogs[${out.scopeLogs.length}]`;
      want(wt, LEN, p);
      out.scopeLogs.push(sub(c, end, p, (stop) => scopeLogs(c, stop, p)));
    } else return false;
    return true;
  });
  return out;
}

/** Decodes an ExportLogsServiceRequest (application/x-protobuf). */
export function decodeLogsProto(body: Uint8Array): OtlpLogsRequest {
  const c = new Cursor(body);
  const req: OtlpLogsRequest = { resourceLogs: [] };
  fields(c, body.length, 'protobuf ExportLogsServiceRequest', (no, wt) => {
    if (no !== 1) return false;
    const p = `resourceLogs[${req.resourceLogs.length}]`;
    want(wt, LEN, p);
    req.resourceLogs.push(sub(c, body.length, p, (stop) => resourceLogs(c, stop, p)));
    return true;
  });
  return req;
}

// ---------------------------------------------------------------------------------------------
// Encoding (responses)

function varintBytes(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/**
 * google.rpc.Status { int32 code = 1; string message = 2; }: the body of every OTLP/HTTP error
 * answer to a protobuf request.
 */
export function encodeStatus(code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const parts: number[] = [];
  if (code !== 0) parts.push(0x08, ...varintBytes(code));
  const head = Buffer.from(msg.length ? [...parts, 0x12, ...varintBytes(msg.length)] : parts);
  return Buffer.concat([head, msg]);
}
