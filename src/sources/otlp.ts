/**
 * OpenTelemetry logs → Stele events. Any OpenTelemetry SDK or Collector can forward audit records
 * over OTLP/HTTP (POST /v1/sources/otlp/v1/logs); each LogRecord becomes one event by the
 * conventions below (docs/sources/otlp.md has them as a table).
 *
 * - `stele.*` attributes name event fields directly (on the record, or on the resource for all of
 *   its records; the record wins): stele.id, stele.action, stele.actor.id, stele.actor.type,
 *   stele.actor.on_behalf_of, stele.outcome, stele.reason, stele.subject, stele.approval.by,
 *   stele.approval.ticket, stele.resource.type + stele.resource.id, stele.source.kind. Any other
 *   `stele.` key is refused, so a typo does not silently lose a field.
 * - Otherwise OpenTelemetry's semantic conventions: the record's event name (or the `event.name`
 *   attribute) is the action; `enduser.id`, `user.id`, `user.email` or `user.name` the (human)
 *   actor, else the resource's `service.name` as a service actor; `host.name`, `service.name` and
 *   `service.version` of the resource the source's host, agent and version; a severity of ERROR or
 *   above, or an `error.type` attribute, makes the outcome `failure`.
 * - The time is the record's time, else its observed time. The body, severity, trace and span
 *   ids, the remaining attributes and resource attributes and the scope go into `data`.
 * - The id is `stele.id`, else derived from `log.record.uid`, else (when the record has a time)
 *   derived from the SHA-256 of the mapped event, so a collector retrying a batch stores each record
 *   once; a record with neither gets a fresh id from the server.
 *
 * All or nothing: the first record that does not map, or whose event does not validate, refuses the
 * request with a 400 naming the record (`resourceLogs[0].scopeLogs[0].logRecords[3]`) and the
 * attribute the bad value came from; nothing is stored.
 */
import { createHash } from 'node:crypto';
import { batchIndexOf, relabel, SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { canonicalBytes } from '../event/canonical.js';
import { validateEvent } from '../event/normalize.js';
import type { Appended } from '../ingest/append.js';
import { MAX_BATCH_EVENTS } from '../ingest/prepare.js';
import { derivedId } from './ids.js';
import type { OtlpKeyValue, OtlpLogRecord, OtlpLogsRequest, OtlpValue } from './otlp-model.js';
import { otlpError } from './otlp-model.js';

export { decodeLogsJson } from './otlp-json.js';
export { decodeLogsProto, encodeStatus } from './otlp-proto.js';

/** The `stele.*` attributes the mapping reads; any other `stele.` key is refused. */
export const STELE_ATTRIBUTES = [
  'stele.id',
  'stele.action',
  'stele.actor.id',
  'stele.actor.type',
  'stele.actor.on_behalf_of',
  'stele.outcome',
  'stele.reason',
  'stele.subject',
  'stele.approval.by',
  'stele.approval.ticket',
  'stele.resource.type',
  'stele.resource.id',
  'stele.source.kind',
] as const;
const KNOWN = new Set<string>(STELE_ATTRIBUTES);

/** Attributes that name a human actor, in order of preference (semantic conventions, old and new). */
export const ACTOR_ATTRIBUTES = ['enduser.id', 'user.id', 'user.email', 'user.name'] as const;

/** Resource attributes that become `source` fields, and are therefore not repeated in data.resource. */
const SOURCE_RESOURCE_KEYS = new Set(['service.name', 'service.version', 'host.name']);

/** SeverityNumber ERROR (17) and above make the default outcome `failure`. */
export const SEVERITY_ERROR = 17;

/** An AnyValue as plain JSON: 64-bit integers beyond 2^53 as strings, bytes as base64, NaN/±Infinity as strings. */
export function valueToJson(v: OtlpValue): unknown {
  switch (v.t) {
    case 'string':
    case 'bool':
      return v.v;
    case 'int':
      return v.v >= BigInt(Number.MIN_SAFE_INTEGER) && v.v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v.v) : v.v.toString();
    case 'double':
      return Number.isFinite(v.v) ? v.v : String(v.v);
    case 'bytes':
      return Buffer.from(v.v).toString('base64');
    case 'array':
      return v.v.map(valueToJson);
    case 'kvlist':
      // fromEntries makes own properties even of "__proto__"; a repeated key keeps its last value.
      return Object.fromEntries(v.v.map((kv) => [kv.key, valueToJson(kv.value)]));
    case 'empty':
      return null;
  }
}

/** Nanoseconds since the epoch as RFC 3339 UTC, with as many fractional digits as needed (at most 9). */
export function nanosToTime(ns: bigint): string {
  const secs = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  const base = new Date(Number(secs) * 1000).toISOString().slice(0, 19);
  return frac === 0n ? `${base}Z` : `${base}.${frac.toString().padStart(9, '0').replace(/0+$/, '')}Z`;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const allZero = (b: Uint8Array) => b.every((x) => x === 0);

/** Attributes by key (the last of a repeated key wins, as in a KeyValueList). */
function byKey(attrs: readonly OtlpKeyValue[]): Map<string, OtlpValue> {
  const m = new Map<string, OtlpValue>();
  for (const kv of attrs) m.set(kv.key, kv.value);
  return m;
}

/** A scalar attribute as text (ids may arrive as integers); undefined for arrays, maps, bytes, empty. */
function scalarText(v: OtlpValue): string | undefined {
  switch (v.t) {
    case 'string':
      return v.v;
    case 'int':
      return v.v.toString();
    case 'double':
    case 'bool':
      return String(v.v);
    default:
      return undefined;
  }
}

/** One record's event (before validation), with where each field came from for error messages. */
interface Mapped {
  event: Record<string, unknown>;
  from: Map<string, string>;
}

function mapRecord(
  r: OtlpLogRecord,
  resource: Map<string, OtlpValue>,
  scope: { name: string; version: string } | undefined,
): Mapped {
  const attrs = byKey(r.attributes);
  const fail = (message: string) => otlpError(r.path, message);
  for (const [where, m] of [
    ['attribute', attrs],
    ['resource attribute', resource],
  ] as const) {
    for (const k of m.keys()) {
      if (k.startsWith('stele.') && !KNOWN.has(k)) {
        throw fail(`unknown ${where} ${k}; the stele.* attributes are ${STELE_ATTRIBUTES.join(', ')}`);
      }
    }
  }
  const from = new Map<string, string>();
  const used = new Set<string>();

  /** A stele.* attribute of the record, else of the resource; it must be a string. */
  const stele = (key: string, field: string): string | undefined => {
    let v = attrs.get(key);
    let where = 'attribute';
    if (v === undefined) {
      v = resource.get(key);
      where = 'resource attribute';
    } else used.add(key);
    if (v === undefined) return undefined;
    if (v.t !== 'string') throw fail(`${where} ${key} must be a string (stringValue), got a ${v.t} value`);
    from.set(field, `${where} ${key}`);
    return v.v;
  };

  const event: Record<string, unknown> = {};
  const id = stele('stele.id', '/id');
  if (id !== undefined) event.id = id.toLowerCase();

  const time = r.timeUnixNano || r.observedTimeUnixNano;
  if (time) {
    event.time = nanosToTime(time);
    from.set('/time', r.timeUnixNano ? 'timeUnixNano' : 'observedTimeUnixNano');
  }

  // actor
  let actorId = stele('stele.actor.id', '/actor/id');
  let defaultType = 'human';
  if (actorId === undefined) {
    for (const k of ACTOR_ATTRIBUTES) {
      const v = attrs.get(k);
      const text = v && scalarText(v);
      if (text !== undefined) {
        actorId = text;
        used.add(k);
        from.set('/actor/id', `attribute ${k}`);
        break;
      }
    }
  }
  if (actorId === undefined) {
    const svc = resource.get('service.name');
    if (svc?.t === 'string') {
      actorId = svc.v;
      defaultType = 'service';
      from.set('/actor/id', 'resource attribute service.name');
    }
  }
  if (actorId === undefined) {
    throw fail(
      `no actor: set the attribute stele.actor.id (or ${ACTOR_ATTRIBUTES.join(', ')}), or the resource attribute service.name`,
    );
  }
  const actorType = stele('stele.actor.type', '/actor/type');
  const onBehalfOf = stele('stele.actor.on_behalf_of', '/actor/on_behalf_of');
  event.actor = {
    id: actorId,
    type: actorType ?? defaultType,
    ...(onBehalfOf !== undefined ? { on_behalf_of: onBehalfOf } : {}),
  };

  // action
  let action = stele('stele.action', '/action');
  if (action === undefined && r.eventName !== '') {
    action = r.eventName;
    from.set('/action', 'the event name (eventName)');
  }
  if (action === undefined) {
    const v = attrs.get('event.name');
    if (v !== undefined) {
      if (v.t !== 'string') throw fail(`attribute event.name must be a string, got a ${v.t} value`);
      action = v.v;
      used.add('event.name');
      from.set('/action', 'attribute event.name');
    }
  }
  if (action === undefined) {
    throw fail(
      'no action: set the attribute stele.action, or the log record\u2019s event name (eventName, or the attribute event.name)',
    );
  }
  event.action = action;

  // source
  const str = (k: string) => {
    const v = resource.get(k);
    return v?.t === 'string' && v.v !== '' ? v.v : undefined;
  };
  const kind = stele('stele.source.kind', '/source/kind');
  const host = str('host.name');
  const agent = str('service.name');
  const version = str('service.version');
  if (host) from.set('/source/host', 'resource attribute host.name');
  if (agent) from.set('/source/agent', 'resource attribute service.name');
  if (version) from.set('/source/version', 'resource attribute service.version');
  event.source = {
    kind: kind ?? 'otlp',
    ...(host ? { host } : {}),
    ...(agent ? { agent } : {}),
    ...(version ? { version } : {}),
  };

  // resource
  const resType = stele('stele.resource.type', '/resource/type');
  const resId = stele('stele.resource.id', '/resource/id');
  if ((resType === undefined) !== (resId === undefined)) {
    throw fail('stele.resource.type and stele.resource.id go together: set both or neither');
  }
  if (resType !== undefined) event.resource = { type: resType, id: resId };

  // outcome
  const outcome = stele('stele.outcome', '/outcome');
  if (outcome !== undefined) event.outcome = outcome;
  else event.outcome = r.severityNumber >= SEVERITY_ERROR || attrs.has('error.type') ? 'failure' : 'success';

  const reason = stele('stele.reason', '/reason');
  if (reason !== undefined) event.reason = reason;
  const subject = stele('stele.subject', '/subject');
  if (subject !== undefined) event.subject = subject;
  const by = stele('stele.approval.by', '/approval/by');
  const ticket = stele('stele.approval.ticket', '/approval/ticket');
  if (ticket !== undefined && by === undefined) throw fail('stele.approval.ticket needs stele.approval.by');
  if (by !== undefined) event.approval = { by, ...(ticket !== undefined ? { ticket } : {}) };

  // data: what the record says beyond the mapped fields
  const data: Record<string, unknown> = {};
  if (r.body !== undefined && r.body.t !== 'empty') data.body = valueToJson(r.body);
  if (r.severityNumber) data.severity_number = r.severityNumber;
  if (r.severityText) data.severity_text = r.severityText;
  if (r.eventName && from.get('/action') !== 'the event name (eventName)') data.event_name = r.eventName;
  if (r.traceId.length && !allZero(r.traceId)) data.trace_id = hex(r.traceId);
  if (r.spanId.length && !allZero(r.spanId)) data.span_id = hex(r.spanId);
  const uid = attrs.get('log.record.uid');
  const rest = r.attributes.filter((kv) => !used.has(kv.key) && !kv.key.startsWith('stele.'));
  if (rest.length) data.attributes = valueToJson({ t: 'kvlist', v: rest });
  const resRest = [...resource.entries()].filter(([k]) => !SOURCE_RESOURCE_KEYS.has(k) && !k.startsWith('stele.'));
  if (resRest.length) data.resource = Object.fromEntries(resRest.map(([k, v]) => [k, valueToJson(v)]));
  if (scope?.name) data.scope = { name: scope.name, ...(scope.version ? { version: scope.version } : {}) };
  if (Object.keys(data).length) event.data = data;

  if (event.id === undefined) {
    const uidText = uid && scalarText(uid);
    if (uidText !== undefined && uidText !== '') {
      event.id = derivedId('otlp.log', uidText);
      from.set('/id', 'attribute log.record.uid');
    }
  }
  return { event, from };
}

/** "/actor/type must be …" + " (from attribute stele.actor.type)", for the longest known prefix of the error's pointer. */
function withProvenance(err: SteleError, from: Map<string, string>): string {
  const message = err.message;
  const pointer = err.detail?.pointer;
  if (typeof pointer !== 'string' || pointer === '') return message;
  let p = pointer;
  for (;;) {
    const src = from.get(p);
    if (src) return `${message} (from ${src})`;
    const cut = p.lastIndexOf('/');
    if (cut <= 0) return message;
    p = p.slice(0, cut);
  }
}

export interface MappedLogs {
  /** Validated events, in request order. */
  events: Record<string, unknown>[];
  /** The request path of each event's record. */
  paths: string[];
}

/** Maps and validates every record of a request, all or nothing (see the module comment). */
export function mapLogs(req: OtlpLogsRequest): MappedLogs {
  let total = 0;
  for (const rl of req.resourceLogs) for (const sl of rl.scopeLogs) total += sl.logRecords.length;
  if (total > MAX_BATCH_EVENTS) {
    throw new SteleError('too_many_events', `${total} log records in one request; the limit is ${MAX_BATCH_EVENTS}`);
  }
  const events: Record<string, unknown>[] = [];
  const paths: string[] = [];
  for (const rl of req.resourceLogs) {
    const resource = byKey(rl.resource.attributes);
    for (const sl of rl.scopeLogs) {
      for (const r of sl.logRecords) {
        const { event, from } = mapRecord(r, resource, sl.scope);
        try {
          validateEvent(event);
        } catch (err) {
          if (err instanceof SteleError) throw relabel(err, r.path, withProvenance(err, from));
          throw err;
        }
        if (event.id === undefined && event.time !== undefined) {
          // Same record, same id: a collector's retry of a batch is stored once.
          const digest = createHash('sha256').update(canonicalBytes(event)).digest('hex');
          event.id = derivedId('otlp.log', `sha256:${digest}`);
        }
        events.push(event);
        paths.push(r.path);
      }
    }
  }
  return { events, paths };
}

/**
 * What appending needs of the log: `Stele.appendAs` (src/app/stele.ts), named here so that the
 * sources stay below the application layer that opens the log.
 */
export interface Appender {
  appendAs(inputs: readonly unknown[], by: Principal): Promise<Appended[]>;
}

/**
 * Appends the events of an OTLP logs request as `principal` (policy-checked like POST /v1/events:
 * actors other than the principal need vouching), answering once every entry is durable. Errors
 * from the append (size, permission) name the record instead of "event N".
 */
export async function appendOtlpLogs(stele: Appender, principal: Principal, req: OtlpLogsRequest): Promise<Appended[]> {
  const { events, paths } = mapLogs(req);
  if (events.length === 0) return [];
  try {
    return await stele.appendAs(events, principal);
  } catch (err) {
    if (err instanceof SteleError && err.status < 500) {
      const i = batchIndexOf(err);
      const path = i !== undefined ? paths[i] : paths.length === 1 ? paths[0] : undefined;
      if (path) throw relabel(err, path, i !== undefined ? err.problem : err.message);
    }
    throw err;
  }
}
