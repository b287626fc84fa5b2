/**
 * OTLP/HTTP JSON (application/json): the proto3 JSON mapping with OTLP's deviations
 * (opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): lowerCamelCase keys, trace and span
 * ids as hex strings (not base64), enums as integers, 64-bit integers as decimal strings (numbers
 * are accepted too), bytes values base64. Unknown keys are ignored, as the spec requires. For
 * leniency, the original snake_case field names and enum names (SEVERITY_NUMBER_INFO) are read as
 * well, as proto3 JSON parsers do. Type errors name the field's path.
 */
import { findUnsafeInteger, mayHoldUnsafeInteger, unsafeIntegerMessage } from '../ingest/ijson.js';
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

type Obj = Record<string, unknown>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `obj[camel]`, else `obj[snake]`; null counts as absent (proto3 JSON). */
function get(obj: Obj, camel: string, snake = camel): unknown {
  const v = obj[camel];
  if (v !== undefined && v !== null) return v;
  const s = obj[snake];
  return s === null ? undefined : s;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function object(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw otlpError(path, `must be an object, got ${describe(v)}`);
  return v as Obj;
}

function array(v: unknown, path: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw otlpError(path, `must be an array, got ${describe(v)}`);
  return v;
}

function str(v: unknown, path: string): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') throw otlpError(path, `must be a string, got ${describe(v)}`);
  return v;
}

const UINT64_MAX = (1n << 64n) - 1n;

/** A fixed64/uint64 in proto3 JSON: a decimal string or a (safe) integer number. */
function uint64(v: unknown, path: string): bigint {
  if (v === undefined) return 0n;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^[0-9]{1,20}$/.test(v)) {
    const n = BigInt(v);
    if (n <= UINT64_MAX) return n;
  }
  throw otlpError(path, `must be an unsigned 64-bit integer as a decimal string (nanoseconds), got ${describe(v)}`);
}

function int64(v: unknown, path: string): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?[0-9]{1,19}$/.test(v)) {
    const n = BigInt(v);
    if (n >= -(1n << 63n) && n < 1n << 63n) return n;
  }
  throw otlpError(path, `must be a signed 64-bit integer (a decimal string or an integer), got ${describe(v)}`);
}

function uint32(v: unknown, path: string): number {
  if (v === undefined) return 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return v;
  throw otlpError(path, `must be an unsigned 32-bit integer, got ${describe(v)}`);
}

const SEVERITIES = [
  'UNSPECIFIED',
  'TRACE',
  'TRACE2',
  'TRACE3',
  'TRACE4',
  'DEBUG',
  'DEBUG2',
  'DEBUG3',
  'DEBUG4',
  'INFO',
  'INFO2',
  'INFO3',
  'INFO4',
  'WARN',
  'WARN2',
  'WARN3',
  'WARN4',
  'ERROR',
  'ERROR2',
  'ERROR3',
  'ERROR4',
  'FATAL',
  'FATAL2',
  'FATAL3',
  'FATAL4',
];

function severity(v: unknown, path: string): number {
  if (v === undefined) return 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 24) return v;
  if (typeof v === 'string') {
    const i = SEVERITIES.indexOf(v.replace(/^SEVERITY_NUMBER_/, ''));
    if (i >= 0 && v.startsWith('SEVERITY_NUMBER_')) return i;
  }
  throw otlpError(path, `must be a SeverityNumber, an integer from 0 to 24, got ${describe(v)}`);
}

/** A trace or span id: hex of exactly `bytes` bytes, or empty. */
function hexId(v: unknown, bytes: number, path: string): Uint8Array {
  if (v === undefined || v === '') return new Uint8Array(0);
  if (typeof v !== 'string' || v.length !== bytes * 2 || !/^[0-9a-fA-F]+$/.test(v)) {
    throw otlpError(
      path,
      `must be ${bytes * 2} hex digits (${bytes} bytes; OTLP JSON does not use base64 here), got ${describe(v)}`,
    );
  }
  return Uint8Array.from(Buffer.from(v, 'hex'));
}

function base64(v: unknown, path: string): Uint8Array {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) throw otlpError(path, `must be base64, got ${describe(v)}`);
  return Uint8Array.from(Buffer.from(v, v.includes('-') || v.includes('_') ? 'base64url' : 'base64'));
}

function double(v: unknown, path: string): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  throw otlpError(path, `must be a number, got ${describe(v)}`);
}

function anyValue(v: unknown, path: string, depth: number): OtlpValue {
  if (depth > MAX_VALUE_DEPTH) throw otlpError(path, `values are nested deeper than ${MAX_VALUE_DEPTH} levels`);
  if (v === undefined) return { t: 'empty' };
  const o = object(v, path);
  // The oneof: the last member present wins, as in the binary encoding; several is a client bug,
  // but not ambiguous enough to refuse.
  let out: OtlpValue = { t: 'empty' };
  for (const k of Object.keys(o)) {
    const x = o[k];
    if (x === null || x === undefined) continue;
    switch (k) {
      case 'stringValue':
      case 'string_value':
        out = { t: 'string', v: str(x, `${path}.stringValue`) };
        break;
      case 'boolValue':
      case 'bool_value':
        if (typeof x !== 'boolean') throw otlpError(`${path}.boolValue`, `must be true or false, got ${describe(x)}`);
        out = { t: 'bool', v: x };
        break;
      case 'intValue':
      case 'int_value':
        out = { t: 'int', v: int64(x, `${path}.intValue`) };
        break;
      case 'doubleValue':
      case 'double_value':
        out = { t: 'double', v: double(x, `${path}.doubleValue`) };
        break;
      case 'bytesValue':
      case 'bytes_value':
        out = { t: 'bytes', v: base64(x, `${path}.bytesValue`) };
        break;
      case 'arrayValue':
      case 'array_value': {
        const p = `${path}.arrayValue`;
        const items = array(get(object(x, p), 'values'), `${p}.values`);
        out = { t: 'array', v: items.map((item, i) => anyValue(item, `${p}.values[${i}]`, depth + 1)) };
        break;
      }
      case 'kvlistValue':
      case 'kvlist_value': {
        const p = `${path}.kvlistValue`;
        const items = array(get(object(x, p), 'values'), `${p}.values`);
        out = { t: 'kvlist', v: items.map((item, i) => keyValue(item, `${p}.values[${i}]`, depth + 1)) };
        break;
      }
    }
  }
  return out;
}

function keyValue(v: unknown, path: string, depth: number): OtlpKeyValue {
  const o = object(v, path);
  return { key: str(get(o, 'key'), `${path}.key`), value: anyValue(get(o, 'value'), `${path}.value`, depth + 1) };
}

function attributes(v: unknown, path: string): OtlpKeyValue[] {
  return array(v, path).map((kv, i) => keyValue(kv, `${path}[${i}]`, 1));
}

function logRecord(v: unknown, path: string): OtlpLogRecord {
  const o = object(v, path);
  const body = get(o, 'body');
  return {
    path,
    timeUnixNano: uint64(get(o, 'timeUnixNano', 'time_unix_nano'), `${path}.timeUnixNano`),
    observedTimeUnixNano: uint64(get(o, 'observedTimeUnixNano', 'observed_time_unix_nano'), `${path}.observedTimeUnixNano`),
    severityNumber: severity(get(o, 'severityNumber', 'severity_number'), `${path}.severityNumber`),
    severityText: str(get(o, 'severityText', 'severity_text'), `${path}.severityText`),
    ...(body === undefined ? {} : { body: anyValue(body, `${path}.body`, 1) }),
    attributes: attributes(get(o, 'attributes'), `${path}.attributes`),
    traceId: hexId(get(o, 'traceId', 'trace_id'), 16, `${path}.traceId`),
    spanId: hexId(get(o, 'spanId', 'span_id'), 8, `${path}.spanId`),
    flags: uint32(get(o, 'flags'), `${path}.flags`),
    eventName: str(get(o, 'eventName', 'event_name'), `${path}.eventName`),
  };
}

function scopeLogs(v: unknown, path: string): OtlpScopeLogs {
  const o = object(v, path);
  const scope = get(o, 'scope');
  const out: OtlpScopeLogs = {
    logRecords: array(get(o, 'logRecords', 'log_records'), `${path}.logRecords`).map((r, i) =>
      logRecord(r, `${path}.logRecords[${i}]`),
    ),
  };
  if (scope !== undefined) {
    const s = object(scope, `${path}.scope`);
    out.scope = {
      name: str(get(s, 'name'), `${path}.scope.name`),
      version: str(get(s, 'version'), `${path}.scope.version`),
      attributes: attributes(get(s, 'attributes'), `${path}.scope.attributes`),
    };
  }
  return out;
}

function resourceLogs(v: unknown, path: string): OtlpResourceLogs {
  const o = object(v, path);
  const res = get(o, 'resource');
  return {
    path,
    resource: {
      attributes:
        res === undefined ? [] : attributes(get(object(res, `${path}.resource`), 'attributes'), `${path}.resource.attributes`),
    },
    scopeLogs: array(get(o, 'scopeLogs', 'scope_logs'), `${path}.scopeLogs`).map((s, i) =>
      scopeLogs(s, `${path}.scopeLogs[${i}]`),
    ),
  };
}

/** Decodes an ExportLogsServiceRequest in OTLP JSON. */
export function decodeLogsJson(body: Uint8Array): OtlpLogsRequest {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw otlpError('', 'the request body is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw otlpError('', `the request body is not valid JSON (${(err as Error).message})`);
  }
  if (mayHoldUnsafeInteger(text)) {
    const u = findUnsafeInteger(text);
    if (u) throw otlpError('', unsafeIntegerMessage(u, `the request body: ${u.pointer}`));
  }
  const o = object(parsed, 'the request body');
  return {
    resourceLogs: array(get(o, 'resourceLogs', 'resource_logs'), 'resourceLogs').map((r, i) =>
      resourceLogs(r, `resourceLogs[${i}]`),
    ),
  };
}
