/**
 * OpenTelemetry logs (OTLP/HTTP) → events: decoding both encodings, the attribute conventions,
 * precise refusals, and the HTTP endpoint end to end against a real `stele serve`.
 *
 * Fixtures: test/fixtures/otlp/sdk-logs.{pb,json} were captured from the official OpenTelemetry JS
 * exporters (see test/fixtures/otlp/README.md); the other protobuf bodies are encoded here, by an
 * encoder independent of the server's decoder.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { SteleError } from '../src/core/errors.js';
import { derivedId } from '../src/sources/ids.js';
import { decodeLogsJson, decodeLogsProto, mapLogs, nanosToTime } from '../src/sources/otlp.js';
import { CLI, cleanup, type DataDir, getJson, initDir, runStele, SteleServer, tempDir } from './helpers/stele.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/otlp/', import.meta.url));
const fixture = (name: string) => readFileSync(`${FIXTURES}${name}`);

// ---------------------------------------------------------------------------------------------
// A protobuf encoder for OTLP JSON (the test's own, written from the .proto files, so the
// server's decoder is checked against something it does not share code with).

type J = Record<string, unknown>;

function varint(n: bigint): number[] {
  let v = BigInt.asUintN(64, n);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const tag = (no: number, wt: number) => varint(BigInt((no << 3) | wt));
const lenField = (no: number, bytes: Uint8Array | number[]) => [...tag(no, 2), ...varint(BigInt(bytes.length)), ...bytes];
const strField = (no: number, s: string) => lenField(no, [...Buffer.from(s, 'utf8')]);
function fixed64(no: number, v: bigint): number[] {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return [...tag(no, 1), ...b];
}
function doubleField(no: number, v: number): number[] {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return [...tag(no, 1), ...b];
}

function encAnyValue(v: J): number[] {
  const out: number[] = [];
  if ('stringValue' in v) out.push(...strField(1, v.stringValue as string));
  if ('boolValue' in v) out.push(...tag(2, 0), ...varint(v.boolValue ? 1n : 0n));
  if ('intValue' in v) out.push(...tag(3, 0), ...varint(BigInt(v.intValue as string)));
  if ('doubleValue' in v) out.push(...doubleField(4, Number(v.doubleValue)));
  if ('arrayValue' in v) {
    const items = ((v.arrayValue as J).values as J[]).flatMap((x) => lenField(1, encAnyValue(x)));
    out.push(...lenField(5, items));
  }
  if ('kvlistValue' in v) {
    const items = ((v.kvlistValue as J).values as J[]).flatMap((x) => lenField(1, encKeyValue(x)));
    out.push(...lenField(6, items));
  }
  if ('bytesValue' in v) out.push(...lenField(7, [...Buffer.from(v.bytesValue as string, 'base64')]));
  return out;
}
const encKeyValue = (kv: J) => [...strField(1, kv.key as string), ...lenField(2, encAnyValue(kv.value as J))];
const encAttrs = (no: number, attrs: J[] = []) => attrs.flatMap((kv) => lenField(no, encKeyValue(kv)));

function encLogRecord(r: J): number[] {
  const out: number[] = [];
  if (r.timeUnixNano) out.push(...fixed64(1, BigInt(r.timeUnixNano as string)));
  if (r.severityNumber) out.push(...tag(2, 0), ...varint(BigInt(r.severityNumber as number)));
  if (r.severityText) out.push(...strField(3, r.severityText as string));
  if (r.body) out.push(...lenField(5, encAnyValue(r.body as J)));
  out.push(...encAttrs(6, r.attributes as J[]));
  if (r.droppedAttributesCount) out.push(...tag(7, 0), ...varint(BigInt(r.droppedAttributesCount as number)));
  if (r.flags) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(r.flags as number);
    out.push(...tag(8, 5), ...b);
  }
  if (r.traceId) out.push(...lenField(9, [...Buffer.from(r.traceId as string, 'hex')]));
  if (r.spanId) out.push(...lenField(10, [...Buffer.from(r.spanId as string, 'hex')]));
  if (r.observedTimeUnixNano) out.push(...fixed64(11, BigInt(r.observedTimeUnixNano as string)));
  if (r.eventName) out.push(...strField(12, r.eventName as string));
  return out;
}

function encodeRequest(req: J): Buffer {
  const out: number[] = [];
  for (const rl of req.resourceLogs as J[]) {
    const body: number[] = [];
    if (rl.resource) body.push(...lenField(1, encAttrs(1, (rl.resource as J).attributes as J[])));
    for (const sl of rl.scopeLogs as J[]) {
      const s: number[] = [];
      if (sl.scope) {
        const sc = sl.scope as J;
        s.push(
          ...lenField(1, [
            ...(sc.name ? strField(1, sc.name as string) : []),
            ...(sc.version ? strField(2, sc.version as string) : []),
            ...encAttrs(3, sc.attributes as J[]),
          ]),
        );
      }
      for (const r of sl.logRecords as J[]) s.push(...lenField(2, encLogRecord(r)));
      s.push(...strField(3, 'https://opentelemetry.io/schemas/1.30.0'));
      body.push(...lenField(2, s));
    }
    body.push(...strField(3, 'https://opentelemetry.io/schemas/1.30.0'));
    // An unknown field (number 99, varint) the decoder must skip.
    body.push(...tag(99, 0), ...varint(12345n));
    out.push(...lenField(1, body));
  }
  return Buffer.from(out);
}

/** google.rpc.Status from protobuf: {code, message}. */
function decodeStatus(b: Buffer): { code: number; message: string } {
  let pos = 0;
  let code = 0;
  let message = '';
  const rv = () => {
    let r = 0;
    let s = 0;
    for (;;) {
      const x = b[pos++] as number;
      r += (x & 0x7f) * 2 ** s;
      if (!(x & 0x80)) return r;
      s += 7;
    }
  };
  while (pos < b.length) {
    const t = rv();
    if (t === 0x08) code = rv();
    else if (t === 0x12) {
      const n = rv();
      message = b.subarray(pos, pos + n).toString('utf8');
      pos += n;
    } else throw new Error(`unexpected tag ${t}`);
  }
  return { code, message };
}

// ---------------------------------------------------------------------------------------------
// Requests used below

const s = (v: string) => ({ stringValue: v });
const kv = (key: string, value: J) => ({ key, value });

/** One resource with one scope holding `records`. */
function request(records: J[], resourceAttrs: J[] = [kv('service.name', s('payments')), kv('host.name', s('pay-1'))]): J {
  return {
    resourceLogs: [
      { resource: { attributes: resourceAttrs }, scopeLogs: [{ scope: { name: 'audit', version: '1' }, logRecords: records }] },
    ],
  };
}

const richRecord: J = {
  timeUnixNano: '1764662400123456789',
  observedTimeUnixNano: '1764662400200000000',
  severityNumber: 9,
  severityText: 'INFO',
  eventName: 'payments.refund.issue',
  traceId: '5b8efff798038103d269b633813fc60c',
  spanId: 'eee19b7ec3c1b174',
  flags: 1,
  body: {
    kvlistValue: {
      values: [
        kv('message', s('refund issued')),
        kv('nested', {
          arrayValue: {
            values: [
              s('a'),
              { intValue: '-7' },
              { boolValue: false },
              { kvlistValue: { values: [kv('deep', { doubleValue: 1.5 })] } },
            ],
          },
        }),
      ],
    },
  },
  attributes: [
    kv('enduser.id', s('alice@example.com')),
    kv('amount', { intValue: '9007199254740993' }), // 2^53 + 1: kept exactly, as a string
    kv('ratio', { doubleValue: 0.5 }),
    kv('nan', { doubleValue: 'NaN' }),
    kv('blob', { bytesValue: Buffer.from([0, 1, 2, 255]).toString('base64') }),
    kv('stele.resource.type', s('refund')),
    kv('stele.resource.id', s('R-1')),
    kv('log.record.uid', s('01JDQ5T3M7H9ZQ1W3F0ZQ6X2YB')),
  ],
};

describe('OTLP decoding', () => {
  test('the OpenTelemetry SDK exporters\u2019 protobuf and JSON bodies decode to the same events', () => {
    const fromProto = mapLogs(decodeLogsProto(fixture('sdk-logs.pb')));
    const fromJson = mapLogs(decodeLogsJson(fixture('sdk-logs.json')));
    assert.deepEqual(fromProto, fromJson);
    const [refund, login, agent] = fromProto.events as J[];
    assert.deepEqual(refund, {
      id: (refund as J).id,
      time: '2025-12-02T08:00:00.123456789Z',
      actor: { id: 'alice@example.com', type: 'human' },
      action: 'billing.invoice.refund',
      source: { kind: 'otlp', host: 'billing-7f9c', agent: 'billing-api', version: '2.4.1' },
      resource: { type: 'invoice', id: 'INV-2291' },
      outcome: 'success',
      data: {
        body: 'refunded invoice INV-2291',
        severity_number: 9,
        severity_text: 'INFO',
        attributes: {
          'invoice.id': 'INV-2291',
          'amount.cents': 129900,
          'refund.approved': true,
          ratio: 0.25,
          tags: ['vip', 'manual'],
        },
        resource: { 'deployment.environment.name': 'prod' },
        scope: { name: 'audit', version: '1.0.0' },
      },
    });
    assert.match((refund as J).id as string, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // event.name attribute as the action, user.id as the actor, ERROR severity: failure.
    assert.equal((login as J).action, 'auth.login');
    assert.deepEqual((login as J).actor, { id: 'bob', type: 'human' });
    assert.equal((login as J).outcome, 'failure');
    assert.deepEqual(((login as J).data as J).body, { message: 'login failed', attempts: 3 });
    assert.deepEqual(((login as J).data as J).attributes, { 'error.type': 'bad_password' });
    // stele.* attributes name the fields directly and do not reappear in data.
    assert.deepEqual((agent as J).actor, { id: 'claude', type: 'ai_agent', on_behalf_of: 'alice@example.com' });
    assert.equal((agent as J).action, 'deploy.config.edit');
    assert.equal((agent as J).outcome, 'denied');
    assert.equal((agent as J).reason, 'change freeze');
    assert.equal(((agent as J).data as J).attributes, undefined);
    assert.deepEqual(fromProto.paths, [
      'resourceLogs[0].scopeLogs[0].logRecords[0]',
      'resourceLogs[0].scopeLogs[0].logRecords[1]',
      'resourceLogs[0].scopeLogs[0].logRecords[2]',
    ]);
  });

  test('every AnyValue kind, ids, flags and unknown fields: protobuf and JSON agree', () => {
    const req = request([richRecord]);
    const fromJson = mapLogs(decodeLogsJson(Buffer.from(JSON.stringify(req))));
    const fromProto = mapLogs(decodeLogsProto(encodeRequest(req)));
    assert.deepEqual(fromProto, fromJson);
    const e = fromJson.events[0] as J;
    assert.equal(e.id, derivedId('otlp.log', '01JDQ5T3M7H9ZQ1W3F0ZQ6X2YB'));
    assert.equal(e.action, 'payments.refund.issue');
    assert.deepEqual(e.resource, { type: 'refund', id: 'R-1' });
    assert.deepEqual(e.data, {
      body: { message: 'refund issued', nested: ['a', -7, false, { deep: 1.5 }] },
      severity_number: 9,
      severity_text: 'INFO',
      trace_id: '5b8efff798038103d269b633813fc60c',
      span_id: 'eee19b7ec3c1b174',
      attributes: {
        amount: '9007199254740993',
        ratio: 0.5,
        nan: 'NaN',
        blob: 'AAEC/w==',
        'log.record.uid': '01JDQ5T3M7H9ZQ1W3F0ZQ6X2YB',
      },
      scope: { name: 'audit', version: '1' },
    });
  });

  test('snake_case keys, numeric int64s and enum names are read too', () => {
    const req = {
      resource_logs: [
        {
          resource: { attributes: [kv('service.name', s('svc'))] },
          scope_logs: [
            {
              log_records: [
                {
                  time_unix_nano: 1700000000000,
                  severity_number: 'SEVERITY_NUMBER_FATAL',
                  event_name: 'svc.thing.happen',
                  attributes: [{ key: 'user.id', value: { int_value: 42 } }],
                },
              ],
            },
          ],
        },
      ],
    };
    const e = mapLogs(decodeLogsJson(Buffer.from(JSON.stringify(req)))).events[0] as J;
    assert.equal(e.time, '1970-01-01T00:28:20Z');
    assert.deepEqual(e.actor, { id: '42', type: 'human' });
    assert.equal(e.outcome, 'failure');
    assert.equal((e.data as J).severity_number, 21);
  });

  test('nanosecond times keep their precision', () => {
    assert.equal(nanosToTime(1764662400123456789n), '2025-12-02T08:00:00.123456789Z');
    assert.equal(nanosToTime(1764662400120000000n), '2025-12-02T08:00:00.12Z');
    assert.equal(nanosToTime(1764662400000000000n), '2025-12-02T08:00:00Z');
  });
});

describe('OTLP mapping conventions', () => {
  const one = (record: J, resourceAttrs?: J[]) =>
    mapLogs(decodeLogsJson(Buffer.from(JSON.stringify(request([record], resourceAttrs))))).events[0] as J;

  test('stele.action wins over the event name, which wins over the event.name attribute', () => {
    const base = { timeUnixNano: '1', attributes: [kv('event.name', s('c.c')), kv('user.id', s('u'))] };
    assert.equal(one(base).action, 'c.c');
    assert.equal(one({ ...base, eventName: 'b.b' }).action, 'b.b');
    const e = one({ ...base, eventName: 'b.b', attributes: [...(base.attributes as J[]), kv('stele.action', s('a.a'))] });
    assert.equal(e.action, 'a.a');
    assert.equal((e.data as J).event_name, 'b.b', 'an event name not used as the action stays in data');
    assert.deepEqual((e.data as J).attributes, { 'event.name': 'c.c' });
  });

  test('without a user attribute the service is the actor; stele.* on the resource applies to its records', () => {
    const e = one({ eventName: 'job.run' }, [
      kv('service.name', s('nightly')),
      kv('stele.source.kind', s('batch')),
      kv('team', s('data')),
    ]);
    assert.deepEqual(e.actor, { id: 'nightly', type: 'service' });
    assert.deepEqual(e.source, { kind: 'batch', agent: 'nightly' });
    assert.deepEqual(e.data, { resource: { team: 'data' }, scope: { name: 'audit', version: '1' } });
    assert.equal(e.id, undefined, 'no time: the server assigns an id');
    assert.equal(e.time, undefined);
    // The record's own stele.* attribute wins over the resource's.
    const r = one({ eventName: 'job.run', attributes: [kv('stele.source.kind', s('cron'))] }, [
      kv('service.name', s('nightly')),
      kv('stele.source.kind', s('batch')),
    ]);
    assert.equal((r.source as J).kind, 'cron');
  });

  test('outcome: stele.outcome, else failure at ERROR severity or with error.type, else success', () => {
    const base = { eventName: 'x.y', attributes: [kv('user.id', s('u'))] };
    assert.equal(one(base).outcome, 'success');
    assert.equal(one({ ...base, severityNumber: 16 }).outcome, 'success');
    assert.equal(one({ ...base, severityNumber: 17 }).outcome, 'failure');
    assert.equal(one({ ...base, attributes: [...base.attributes, kv('error.type', s('timeout'))] }).outcome, 'failure');
    assert.equal(
      one({ ...base, severityNumber: 21, attributes: [...base.attributes, kv('stele.outcome', s('denied'))] }).outcome,
      'denied',
    );
  });

  test('ids: stele.id as given; a content-derived id is stable for the same record and differs otherwise', () => {
    const id = '0193a5f0-7c1e-7d2a-9b3c-4d5e6f708192';
    const base = { timeUnixNano: '1764662400000000000', eventName: 'x.y', attributes: [kv('user.id', s('u'))] };
    assert.equal(one({ ...base, attributes: [...base.attributes, kv('stele.id', s(id.toUpperCase()))] }).id, id);
    const a = one(base).id;
    assert.equal(one(base).id, a);
    assert.notEqual(one({ ...base, body: s('other') }).id, a);
    assert.notEqual(one({ ...base, timeUnixNano: '1764662400000000001' }).id, a);
  });

  test('approval, subject and reason', () => {
    const e = one({
      eventName: 'db.schema.migrate',
      attributes: [
        kv('user.id', s('carol')),
        kv('stele.approval.by', s('dave')),
        kv('stele.approval.ticket', s('CHG-7')),
        kv('stele.subject', s('customer-17')),
        kv('stele.reason', s('release 4.2')),
      ],
    });
    assert.deepEqual(e.approval, { by: 'dave', ticket: 'CHG-7' });
    assert.equal(e.subject, 'customer-17');
    assert.equal(e.reason, 'release 4.2');
  });
});

describe('OTLP refusals name the record and the field', () => {
  const refuse = (body: J | Buffer, pattern: RegExp, proto = false, status = 400) => {
    const bytes = Buffer.isBuffer(body) ? body : proto ? encodeRequest(body) : Buffer.from(JSON.stringify(body));
    assert.throws(
      () => mapLogs(proto ? decodeLogsProto(bytes) : decodeLogsJson(bytes)),
      (err: unknown) => {
        assert.ok(err instanceof SteleError, String(err));
        assert.equal(err.status, status);
        assert.match(err.message, pattern);
        return true;
      },
    );
  };
  const ok = { eventName: 'a.b', attributes: [kv('user.id', s('u'))] };
  const R1 = 'resourceLogs\\[0\\]\\.scopeLogs\\[0\\]\\.logRecords\\[1\\]';

  test('mapping problems', () => {
    refuse(
      request([ok, { ...ok, attributes: [kv('user.id', s('u')), kv('stele.outcome', s('ok'))] }]),
      new RegExp(`^${R1}: /outcome must be one of success, failure, denied \\(from attribute stele.outcome\\)$`),
    );
    refuse(
      request([ok, { ...ok, eventName: 'Login' }]),
      new RegExp(`^${R1}: /action must be a dotted lower-case name.*\\(from the event name \\(eventName\\)\\)$`),
    );
    refuse(
      request([ok, { attributes: [kv('user.id', s('u'))] }]),
      new RegExp(`^${R1}: no action: set the attribute stele.action`),
    );
    refuse(request([ok, { eventName: 'a.b' }], []), new RegExp(`^${R1}: no actor: set the attribute stele.actor.id`));
    refuse(
      request([ok, { ...ok, attributes: [kv('user.id', s('u')), kv('stele.acton', s('a.b'))] }]),
      new RegExp(`^${R1}: unknown attribute stele.acton; the stele.\\* attributes are`),
    );
    refuse(
      request([ok, { ...ok, attributes: [kv('user.id', s('u')), kv('stele.outcome', { intValue: '1' })] }]),
      /attribute stele.outcome must be a string \(stringValue\), got a int value/,
    );
    refuse(
      request([ok, { ...ok, attributes: [kv('user.id', s('u')), kv('stele.resource.type', s('x'))] }]),
      /stele.resource.type and stele.resource.id go together/,
    );
    refuse(
      request([ok, { ...ok, attributes: [kv('stele.actor.id', s('bot')), kv('stele.actor.type', s('ai_agent'))] }]),
      new RegExp(`^${R1}: /actor/on_behalf_of is required when /actor/type is ai_agent`),
    );
    refuse(
      request([ok, { ...ok, attributes: [kv('user.id', s('u')), kv('stele.id', s('not-a-uuid'))] }]),
      /\/id must be a UUID .*\(from attribute stele.id\)/,
    );
  });

  test('JSON shape problems', () => {
    refuse(Buffer.from('{"resourceLogs": [1]}'), /^resourceLogs\[0\]: must be an object, got number 1$/);
    refuse(Buffer.from('{"resourceLogs": {}}'), /^resourceLogs: must be an array, got an object$/);
    refuse(
      request([{ ...ok, traceId: 'W7j/95gDgQPSabYzgT/GDA==' }]),
      /logRecords\[0\]\.traceId: must be 32 hex digits \(16 bytes; OTLP JSON does not use base64 here\)/,
    );
    refuse(request([{ ...ok, timeUnixNano: '17e9' }]), /logRecords\[0\]\.timeUnixNano: must be an unsigned 64-bit integer/);
    refuse(request([{ ...ok, severityNumber: 25 }]), /logRecords\[0\]\.severityNumber: must be a SeverityNumber/);
    refuse(
      request([{ ...ok, attributes: [kv('n', { intValue: '99999999999999999999' })] }]),
      /attributes\[0\]\.value\.intValue: must be a signed 64-bit integer/,
    );
    refuse(Buffer.from('{"resourceLogs": ['), /^the request body is not valid JSON/);
    refuse(Buffer.from([0x7b, 0xff, 0x7d]), /^the request body is not valid UTF-8$/);
    let deep: J = s('x');
    for (let i = 0; i < 40; i++) deep = { arrayValue: { values: [deep] } };
    refuse(request([{ ...ok, body: deep }]), /values are nested deeper than 32 levels/);
  });

  test('protobuf problems', () => {
    const good = encodeRequest(request([ok, ok]));
    refuse(good.subarray(0, good.length - 20), /runs past the end|truncated/, true);
    // Field 1 of ExportLogsServiceRequest with a varint wire type.
    refuse(Buffer.from([0x08, 0x01]), /^resourceLogs\[0\]: has wire type varint, expected len$/, true);
    // A string attribute key that is not UTF-8.
    const bad = Buffer.from(lenField(1, lenField(2, lenField(2, lenField(6, lenField(1, [0xc3, 0x28]))))));
    refuse(bad, /logRecords\[0\]\.attributes\[0\]\.key: string is not valid UTF-8$/, true);
    refuse(request([ok, { ...ok, eventName: 'Bad Action' }]), new RegExp(`^${R1}: /action must be`), true);
  });

  test('more than 10,000 records: 413', () => {
    const many = Array.from({ length: 10_001 }, () => ok);
    refuse(request(many), /^10001 log records in one request; the limit is 10000$/, false, 413);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end over HTTP, against a real server

describe('POST /v1/sources/otlp/v1/logs', () => {
  let data: DataDir;
  let server: SteleServer;
  const URL_PATH = '/v1/sources/otlp/v1/logs';

  before(async () => {
    data = await initDir('otlp.test/log');
    server = await SteleServer.start(data.dir);
  });
  after(async () => {
    await server?.stop();
    await cleanup();
  });

  const post = (body: Buffer | string, type: string, headers: Record<string, string> = {}, token = data.token) =>
    fetch(`${server.url}${URL_PATH}`, {
      method: 'POST',
      headers: { 'content-type': type, ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      body,
    });
  const size = async () => (await getJson<{ size: number }>(`${server.url}/healthz`)).size;
  const search = async (q: string, token = data.token) =>
    (
      await getJson<{ hits: { event: J; ingest: J }[] }>(
        `${server.url}/v1/events?q=${encodeURIComponent(q)}&limit=100`,
        30_000,
        token,
      )
    ).hits;

  test('protobuf, gzip-compressed protobuf and JSON are stored once each, answered as OTLP expects', async () => {
    const before = await size();
    const pb = await post(fixture('sdk-logs.pb'), 'application/x-protobuf');
    assert.equal(pb.status, 200, await pb.clone().text());
    assert.equal(pb.headers.get('content-type'), 'application/x-protobuf');
    assert.equal((await pb.arrayBuffer()).byteLength, 0, 'an empty ExportLogsServiceResponse');
    assert.equal(await size(), before + 3);

    // The same records again (a collector retrying), compressed, and as JSON: deduplicated.
    const gz = await post(gzipSync(fixture('sdk-logs.pb')), 'application/x-protobuf', { 'content-encoding': 'gzip' });
    assert.equal(gz.status, 200);
    const js = await post(fixture('sdk-logs.json'), 'application/json');
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.deepEqual(await js.json(), {});
    assert.equal(await size(), before + 3, 'the same records are stored once');

    const hits = await search('source:otlp action:billing.invoice.refund');
    assert.equal(hits.length, 1);
    const e = hits[0]?.event as J;
    assert.deepEqual(e.actor, { id: 'alice@example.com', type: 'human', verified: false });
    assert.equal(e.time, '2025-12-02T08:00:00.123456789Z');
    assert.deepEqual(hits[0]?.ingest, { principal: 'admin', method: 'apikey' });
    assert.equal((await search('actor:claude outcome:denied')).length, 1);
  });

  test('a bad record refuses the whole request with a Status naming it; nothing is stored', async () => {
    const before = await size();
    const req = request([
      { timeUnixNano: '1764662500000000000', eventName: 'a.b', attributes: [kv('user.id', s('u'))] },
      {
        timeUnixNano: '1764662500000000001',
        eventName: 'a.b',
        attributes: [kv('user.id', s('u')), kv('stele.outcome', s('fine'))],
      },
    ]);
    const pb = await post(encodeRequest(req), 'application/x-protobuf');
    assert.equal(pb.status, 400);
    assert.equal(pb.headers.get('content-type'), 'application/x-protobuf');
    const status = decodeStatus(Buffer.from(await pb.arrayBuffer()));
    assert.equal(status.code, 3);
    assert.match(
      status.message,
      /^resourceLogs\[0\]\.scopeLogs\[0\]\.logRecords\[1\]: \/outcome must be one of success, failure, denied/,
    );

    const js = await post(JSON.stringify(req), 'application/json');
    assert.equal(js.status, 400);
    const j = (await js.json()) as { code: number; message: string };
    assert.equal(j.code, 3);
    assert.match(j.message, /logRecords\[1\]: \/outcome must be one of/);

    const trunc = await post(encodeRequest(req).subarray(0, 30), 'application/x-protobuf');
    assert.equal(trunc.status, 400);
    assert.match(decodeStatus(Buffer.from(await trunc.arrayBuffer())).message, /truncated|runs past the end/);
    assert.equal(await size(), before, 'nothing stored');
  });

  test('authentication, media types and encodings', async () => {
    const noAuth = await post(fixture('sdk-logs.pb'), 'application/x-protobuf', {}, '');
    assert.equal(noAuth.status, 401);
    const st = decodeStatus(Buffer.from(await noAuth.arrayBuffer()));
    assert.equal(st.code, 16);
    assert.match(st.message, /needs a bearer token/);

    const text = await post('hello', 'text/plain');
    assert.equal(text.status, 415);
    const nd = await post('{}', 'application/x-ndjson');
    assert.equal(nd.status, 415);
    assert.match(((await nd.json()) as { message: string }).message, /application\/x-protobuf or application\/json/);

    const zstd = await post(fixture('sdk-logs.pb'), 'application/x-protobuf', { 'content-encoding': 'zstd' });
    assert.equal(zstd.status, 415);
    assert.match(decodeStatus(Buffer.from(await zstd.arrayBuffer())).message, /Content-Encoding "zstd" is not supported/);
    const notGzip = await post(fixture('sdk-logs.pb'), 'application/x-protobuf', { 'content-encoding': 'gzip' });
    assert.equal(notGzip.status, 400);
    assert.match(decodeStatus(Buffer.from(await notGzip.arrayBuffer())).message, /not valid gzip/);

    const empty = await post(JSON.stringify({ resourceLogs: [] }), 'application/json');
    assert.equal(empty.status, 200);
    assert.deepEqual(await empty.json(), {});
  });

  test('an API key restricted to the otlp source and some actions; refusals name the record', async () => {
    const created = await runStele([
      'keys',
      'create',
      '--url',
      server.url,
      '--token',
      data.token,
      '--name',
      'otel-collector',
      '--role',
      'writer',
      '--source',
      'otlp',
      '--action',
      'billing.*',
      '--json',
    ]);
    assert.equal(created.code, 0, created.output);
    const key = (JSON.parse(created.stdout) as { key: string }).key;
    const good = request([
      { timeUnixNano: '1764662600000000000', eventName: 'billing.card.update', attributes: [kv('user.id', s('erin'))] },
    ]);
    const res = await post(JSON.stringify(good), 'application/json', {}, key);
    assert.equal(res.status, 200, await res.clone().text());
    const hit = (await search('action:billing.card.update'))[0];
    assert.deepEqual(hit?.ingest, { principal: 'otel-collector', method: 'apikey' });
    assert.deepEqual((hit as { event: J }).event.actor, { id: 'erin', type: 'human', verified: false });

    const before = await size();
    const bad = request([
      { timeUnixNano: '1764662600000000001', eventName: 'billing.card.update', attributes: [kv('user.id', s('erin'))] },
      { timeUnixNano: '1764662600000000002', eventName: 'auth.login', attributes: [kv('user.id', s('erin'))] },
    ]);
    const refused = await post(JSON.stringify(bad), 'application/json', {}, key);
    assert.equal(refused.status, 403);
    const j = (await refused.json()) as { code: number; message: string };
    assert.equal(j.code, 7);
    assert.match(
      j.message,
      /^resourceLogs\[0\]\.scopeLogs\[0\]\.logRecords\[1\]: API key "otel-collector" may only append actions billing\.\*, not "auth.login"$/,
    );
    assert.equal(await size(), before);
  });
});

// ---------------------------------------------------------------------------------------------
// Generic sources: the jq recipes of contrib/jq/ (documented in docs/sources/generic.md), run on sample input of each
// format and appended with `stele append`. The filters are read from the files users copy, so what is shipped is what is
// tested.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const hasJq = spawnSync('jq', ['--version'], { encoding: 'utf8' }).status === 0;
if (!hasJq && process.env.CI === 'true')
  throw new Error('CI must run the recipe tests: jq is not installed (apt-get install -y jq)');

function jq(program: string, input: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env): J[] {
  const dir = tempDir('stele-jq-');
  writeFileSync(join(dir, 'recipe.jq'), program);
  const r = spawnSync('jq', ['-c', ...args, '-f', join(dir, 'recipe.jq')], { input, encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as J);
}

const SUDO_JOURNAL = [
  {
    __CURSOR:
      's=7c5f0f6d3e2a4f5c9a1b2c3d4e5f6a7b;i=1a2b;b=3f1c2d4e5f60718293a4b5c6d7e8f901;m=1d2e3f4a5b;t=61d8f0a1b2c3d;x=0123456789abcdef',
    __REALTIME_TIMESTAMP: '1764662400123456',
    __MONOTONIC_TIMESTAMP: '125094521435',
    _BOOT_ID: '3f1c2d4e5f60718293a4b5c6d7e8f901',
    _TRANSPORT: 'syslog',
    PRIORITY: '5',
    SYSLOG_IDENTIFIER: 'sudo',
    _UID: '1000',
    _COMM: 'sudo',
    _EXE: '/usr/bin/sudo',
    _PID: '48211',
    _HOSTNAME: 'web-1',
    MESSAGE: '   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx',
  },
  {
    __REALTIME_TIMESTAMP: '1764662400125001',
    __MONOTONIC_TIMESTAMP: '125094523000',
    _BOOT_ID: '3f1c2d4e5f60718293a4b5c6d7e8f901',
    _COMM: 'sudo',
    _PID: '48211',
    _HOSTNAME: 'web-1',
    MESSAGE: 'pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)',
  },
  {
    __REALTIME_TIMESTAMP: '1764662460000000',
    __MONOTONIC_TIMESTAMP: '125154400000',
    _BOOT_ID: '3f1c2d4e5f60718293a4b5c6d7e8f901',
    _COMM: 'sudo',
    _PID: '48302',
    _HOSTNAME: 'web-1',
    MESSAGE:
      'bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/sh -c cat /etc/shadow ; id',
  },
  {
    __REALTIME_TIMESTAMP: '1764662470500000',
    __MONOTONIC_TIMESTAMP: '125164900000',
    _BOOT_ID: '3f1c2d4e5f60718293a4b5c6d7e8f901',
    _COMM: 'sudo',
    _PID: '48350',
    _HOSTNAME: 'web-1',
    MESSAGE: 'carol : user NOT in sudoers ; TTY=pts/2 ; PWD=/tmp ; USER=root ; ENV=DEBUG=1 ; COMMAND=/usr/bin/apt install nmap',
  },
  // A message that is not UTF-8 comes as an array of bytes: skipped.
  {
    __REALTIME_TIMESTAMP: '1764662480000000',
    __MONOTONIC_TIMESTAMP: '1',
    _BOOT_ID: '3f1c',
    _COMM: 'sudo',
    MESSAGE: [98, 97, 255],
  },
]
  .map((e) => JSON.stringify(e))
  .join('\n');

const AUDIT_LOG = `type=USER_CMD msg=audit(1764662400.123:4567): pid=2211 uid=1000 auid=1000 ses=3 subj=unconfined msg='cwd="/home/alice" cmd=73797374656D63746C20726573746172742061706163686532 exe="/usr/bin/sudo" terminal=pts/0 res=success'UID="alice" AUID="alice"
type=SYSCALL msg=audit(1764662400.125:4568): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 items=2 ppid=2211 pid=2212 auid=1000 uid=0 comm="systemctl" exe="/usr/bin/systemctl" key="exec"
type=USER_AUTH msg=audit(1764662410.500:4570): pid=2300 uid=1000 auid=1000 ses=3 subj=unconfined msg='op=PAM:authentication grantors=? acct="bob" exe="/usr/bin/sudo" hostname=? addr=? terminal=/dev/pts/1 res=failed'UID="bob" AUID="bob"
node=db-2 type=ADD_USER msg=audit(1764662420.001:4601): pid=3100 uid=0 auid=1000 ses=3 subj=unconfined msg='op=add-user id=1001 exe="/usr/sbin/useradd" hostname=db-2 addr=? terminal=pts/0 res=success'UID="root" AUID="alice" ID="dave"
type=USER_LOGIN msg=audit(1764662430.777:4700): pid=3500 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=login acct=6576696C2075736572 exe="/usr/sbin/sshd" hostname=203.0.113.9 addr=203.0.113.9 terminal=sshd res=failed'UID="root" AUID="unset"
`;

const GITHUB_AUDIT = JSON.stringify([
  {
    '@timestamp': 1764662400512,
    _document_id: 'xJJFlFOhQ6b-5vaAFy9Rjw',
    action: 'repo.create',
    actor: 'octocat',
    actor_id: 583231,
    actor_location: { country_code: 'DE' },
    created_at: 1764662400512,
    operation_type: 'create',
    org: 'octo-corp',
    repo: 'octo-corp/new-service',
    visibility: 'private',
  },
  {
    '@timestamp': 1764662460000,
    _document_id: 'OfPU5-IlFpjBQCYhLQPz1g',
    action: 'protected_branch.rejected_ref_update',
    actor: 'mallory',
    created_at: 1764662460000,
    org: 'octo-corp',
    repo: 'octo-corp/payments',
    branch: 'main',
  },
  {
    '@timestamp': 1764662470001,
    _document_id: 'ZzZ_Aa0-Bb1/Cc2+Dd3Eeg',
    action: 'team.add_member',
    actor: 'dependabot[bot]',
    created_at: 1764662470001,
    org: 'octo-corp',
    team: 'octo-corp/sre',
    user: 'monalisa',
  },
]);

const TERRAFORM_PLAN = JSON.stringify({
  format_version: '1.2',
  terraform_version: '1.9.8',
  resource_changes: [
    { address: 'aws_s3_bucket.logs', mode: 'managed', type: 'aws_s3_bucket', change: { actions: ['create'] } },
    { address: 'aws_iam_role.deploy', mode: 'managed', type: 'aws_iam_role', change: { actions: ['update'] } },
    { address: 'aws_instance.web[0]', mode: 'managed', type: 'aws_instance', change: { actions: ['delete', 'create'] } },
    { address: 'aws_security_group.old', mode: 'managed', type: 'aws_security_group', change: { actions: ['delete'] } },
    { address: 'aws_vpc.main', mode: 'managed', type: 'aws_vpc', change: { actions: ['no-op'] } },
    { address: 'data.aws_caller_identity.me', mode: 'data', type: 'aws_caller_identity', change: { actions: ['read'] } },
  ],
});

describe('generic recipes (contrib/jq): jq → stele append', { skip: hasJq ? false : 'jq is not installed' }, () => {
  let data: DataDir;
  let server: SteleServer;

  before(async () => {
    data = await initDir('generic.test/log');
    server = await SteleServer.start(data.dir);
  });
  after(async () => {
    await server?.stop();
    await cleanup();
  });

  /** `stele append` of jq's output (NDJSON on standard input), as the documented pipelines do. */
  const append = (events: J[]) => {
    const r = spawnSync(process.execPath, [CLI, 'append', '--url', server.url, '--token', data.token], {
      input: events.map((e) => JSON.stringify(e)).join('\n'),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { index: number }).index);
  };
  /** A filter as users copy it: contrib/jq/<name>.jq. */
  const recipe = (name: string) => readFileSync(`${ROOT}contrib/jq/${name}.jq`, 'utf8');
  const uuidV8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  test('sudo from journalctl -o json: commands and refusals; running it twice stores nothing twice', async () => {
    const events = jq(recipe('sudo'), SUDO_JOURNAL);
    assert.equal(events.length, 3, 'the PAM session line and the byte-array message are skipped');
    assert.deepEqual(events[0], {
      id: '3f1c2d4e-5f60-8182-93a4-001d2036ea5b',
      time: '2025-12-02T08:00:00.123456Z',
      actor: { id: 'alice', type: 'human' },
      action: 'sudo.command',
      source: { kind: 'journald', host: 'web-1', agent: 'sudo' },
      resource: { type: 'command', id: '/usr/bin/systemctl restart nginx' },
      outcome: 'success',
      data: { run_as: 'root', tty: 'pts/0', cwd: '/home/alice', pid: 48211, boot_id: '3f1c2d4e5f60718293a4b5c6d7e8f901' },
    });
    assert.deepEqual(
      events.map((e) => [(e.actor as J).id, e.outcome, e.reason, (e.resource as J).id]),
      [
        ['alice', 'success', undefined, '/usr/bin/systemctl restart nginx'],
        ['bob', 'denied', '3 incorrect password attempts', '/bin/sh -c cat /etc/shadow ; id'],
        ['carol', 'denied', 'user NOT in sudoers', '/usr/bin/apt install nmap'],
      ],
    );
    assert.deepEqual(((events[2] as J).data as J).sudo, { ENV: 'DEBUG=1' });
    const first = append(events);
    assert.deepEqual(append(jq(recipe('sudo'), SUDO_JOURNAL)), first);
    const hits = (await getJson<{ hits: unknown[] }>(`${server.url}/v1/events?q=action:sudo.command`, 30_000, data.token)).hits;
    assert.equal(hits.length, 3);
  });

  test('auditd raw records: user commands, authentications, account changes; ids from machine id, time and serial', () => {
    const args = ['-R', '--arg', 'machine', 'b7e3a1c2d4f5061728394a5b6c7d8e9f', '--arg', 'host', 'web-1'];
    const events = jq(recipe('auditd'), AUDIT_LOG, args);
    assert.deepEqual(
      events.map((e) => [e.action, (e.actor as J).id, e.outcome, e.time, (e.source as J).host, e.resource]),
      [
        [
          'auditd.user_cmd',
          'alice',
          'success',
          '2025-12-02T08:00:00.123Z',
          'web-1',
          { type: 'command', id: 'systemctl restart apache2' },
        ],
        ['auditd.user_auth', 'bob', 'denied', '2025-12-02T08:00:10.500Z', 'web-1', undefined],
        ['auditd.add_user', 'alice', 'success', '2025-12-02T08:00:20.001Z', 'db-2', { type: 'account', id: 'dave' }],
        ['auditd.user_login', 'evil user', 'denied', '2025-12-02T08:00:30.777Z', 'web-1', undefined],
      ],
    );
    for (const e of events) assert.match(e.id as string, uuidV8);
    assert.equal(new Set(events.map((e) => e.id)).size, 4);
    assert.equal(((events[0] as J).data as J).exe, '/usr/bin/sudo');
    const first = append(events);
    assert.deepEqual(append(jq(recipe('auditd'), AUDIT_LOG, args)), first);
  });

  test('GitHub audit log events: the id is the _document_id, refusals are denied, bots are services', () => {
    const events = jq(recipe('github'), GITHUB_AUDIT);
    const hex = (d: string) => Buffer.from(d, 'base64url').toString('hex');
    const asUuid = (h: string) => {
      const v = '89ab89ab89ab89ab'['0123456789abcdef'.indexOf(h[16] as string)];
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${v}${h.slice(17, 20)}-${h.slice(20, 32)}`;
    };
    assert.deepEqual(
      events.map((e) => e.id),
      ['xJJFlFOhQ6b-5vaAFy9Rjw', 'OfPU5-IlFpjBQCYhLQPz1g', 'ZzZ_Aa0-Bb1_Cc2-Dd3Eeg'].map((d) => asUuid(hex(d))),
    );
    assert.deepEqual(
      events.map((e) => [e.action, e.actor, e.outcome, e.resource, e.time]),
      [
        [
          'github.repo.create',
          { id: 'octocat', type: 'human' },
          'success',
          { type: 'repository', id: 'octo-corp/new-service' },
          '2025-12-02T08:00:00.512Z',
        ],
        [
          'github.protected_branch.rejected_ref_update',
          { id: 'mallory', type: 'human' },
          'denied',
          { type: 'repository', id: 'octo-corp/payments' },
          '2025-12-02T08:01:00.000Z',
        ],
        [
          'github.team.add_member',
          { id: 'dependabot[bot]', type: 'service' },
          'success',
          { type: 'team', id: 'octo-corp/sre' },
          '2025-12-02T08:01:10.001Z',
        ],
      ],
    );
    assert.equal(((events[0] as J).data as J).actor_id, 583231, 'the GitHub event is kept in data');
    const first = append(events);
    assert.deepEqual(append(events), first);
  });

  test('Terraform applies under Atlantis and GitHub Actions', () => {
    const base = { PATH: process.env.PATH ?? '' };
    const atlantis = jq(recipe('terraform'), TERRAFORM_PLAN, ['--argjson', 'rc', '0', '--arg', 'host', 'atlantis-0'], {
      ...base,
      ATLANTIS_TERRAFORM_VERSION: '1.9.8',
      USER_NAME: 'alice',
      BASE_REPO_OWNER: 'acme',
      BASE_REPO_NAME: 'infra',
      REPO_REL_DIR: 'prod/network',
      WORKSPACE: 'default',
      PULL_NUM: '412',
      PULL_AUTHOR: 'bob',
      HEAD_COMMIT: '9f2c1e0',
      PROJECT_NAME: 'prod-network',
    });
    assert.deepEqual(atlantis, [
      {
        actor: { id: 'alice', type: 'human' },
        action: 'terraform.apply',
        source: { kind: 'atlantis', host: 'atlantis-0', agent: 'terraform', version: '1.9.8' },
        resource: { type: 'terraform.workspace', id: 'acme/infra/prod/network#default' },
        outcome: 'success',
        data: {
          changes: { create: 1, delete: 1, replace: 1, update: 1 },
          resources: [
            'create aws_s3_bucket.logs',
            'update aws_iam_role.deploy',
            'replace aws_instance.web[0]',
            'delete aws_security_group.old',
          ],
          resources_total: 4,
          exit_code: 0,
          commit: '9f2c1e0',
          pull: { number: 412, author: 'bob' },
          project: 'prod-network',
        },
      },
    ]);
    const actions = jq(recipe('terraform'), TERRAFORM_PLAN, ['--argjson', 'rc', '1', '--arg', 'host', 'runner-7'], {
      ...base,
      GITHUB_ACTIONS: 'true',
      GITHUB_ACTOR: 'carol',
      GITHUB_REPOSITORY: 'acme/infra',
      GITHUB_SHA: 'abc123',
    });
    assert.deepEqual(
      [
        (actions[0] as J).outcome,
        (actions[0] as J).reason,
        ((actions[0] as J).source as J).kind,
        ((actions[0] as J).resource as J).id,
      ],
      ['failure', 'terraform apply exited with 1', 'github-actions', 'acme/infra/.#default'],
    );
    assert.equal(append([...atlantis, ...actions]).length, 2);
  });
});
