/**
 * The part of an OTLP logs export (opentelemetry/proto/collector/logs/v1 ExportLogsServiceRequest)
 * Stele reads, decoded from either OTLP/HTTP encoding (otlp-proto.ts, otlp-json.ts) into one
 * shape, so the mapping to events (otlp.ts) does not care which arrived.
 */
import { SteleError } from '../core/errors.js';

/** opentelemetry.proto.common.v1.AnyValue: exactly one of its kinds, or none (`empty`). */
export type OtlpValue =
  | { t: 'string'; v: string }
  | { t: 'bool'; v: boolean }
  | { t: 'int'; v: bigint }
  | { t: 'double'; v: number }
  | { t: 'bytes'; v: Uint8Array }
  | { t: 'array'; v: OtlpValue[] }
  | { t: 'kvlist'; v: OtlpKeyValue[] }
  | { t: 'empty' };

export interface OtlpKeyValue {
  key: string;
  value: OtlpValue;
}

export interface OtlpLogRecord {
  /** Where the record sits in the request, e.g. `resourceLogs[0].scopeLogs[1].logRecords[2]` (for messages). */
  path: string;
  /** Nanoseconds since the Unix epoch; 0 when unset. */
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  /** SeverityNumber, 0 (unspecified) to 24 (FATAL4). */
  severityNumber: number;
  severityText: string;
  body?: OtlpValue;
  attributes: OtlpKeyValue[];
  /** 16 bytes, or empty when unset. */
  traceId: Uint8Array;
  /** 8 bytes, or empty when unset. */
  spanId: Uint8Array;
  flags: number;
  /** LogRecord.event_name (OTLP 1.5); empty when unset. */
  eventName: string;
}

export interface OtlpScopeLogs {
  scope?: { name: string; version: string; attributes: OtlpKeyValue[] };
  logRecords: OtlpLogRecord[];
}

export interface OtlpResourceLogs {
  path: string;
  resource: { attributes: OtlpKeyValue[] };
  scopeLogs: OtlpScopeLogs[];
}

export interface OtlpLogsRequest {
  resourceLogs: OtlpResourceLogs[];
}

/** AnyValue and KeyValueList nesting deeper than this is refused (the event's own limit is 32 levels). */
export const MAX_VALUE_DEPTH = 32;

/** A 400 naming where in the request the problem is. */
export function otlpError(path: string, message: string): SteleError {
  return new SteleError('invalid_otlp', path ? `${path}: ${message}` : message);
}
