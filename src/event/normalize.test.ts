import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SteleError } from '../core/errors.js';
import { nfc } from './nfc.js';
import { checkDepth, MAX_DEPTH, normalizeEvent, uuidv7, validateEvent } from './normalize.js';
import { formatMicros } from './record.js';
import { eventSchema } from './schema.js';

type Json = Record<string, unknown>;

function minimal(): Json {
  return { actor: { id: 'alice', type: 'human' }, action: 'git.commit', source: { kind: 'git' }, outcome: 'success' };
}

function full(): Json {
  return {
    id: '0193A5F0-7C1E-7D2A-9B3C-4D5E6F708192',
    time: '2026-11-22T11:15:03.140211+01:00',
    actor: { id: 'claude', type: 'ai_agent', on_behalf_of: 'alice', verified: false },
    action: 'k8s.configmaps.update',
    source: { kind: 'kubernetes', host: 'api.prod', agent: 'stele-webhook', version: '1.2.3' },
    resource: { type: 'configmap', id: 'prod/payments/settings' },
    outcome: 'denied',
    reason: 'outside change window',
    approval: { by: 'bob', ticket: 'CHG-1234' },
    subject: 'customer-42',
    data: { diff: { replicas: [2, 3] }, dry_run: false, note: null },
    attachments: [{ sha256: 'a'.repeat(64), name: 'diff.patch', size: 0, media_type: 'text/x-diff' }],
  };
}

/** Applies `change` to a fresh minimal event and returns the SteleError validateEvent throws. */
function refusal(change: (e: Json) => void, position?: number): SteleError {
  const e = minimal();
  change(e);
  try {
    validateEvent(e, position);
  } catch (err) {
    assert.ok(err instanceof SteleError, `not a SteleError: ${String(err)}`);
    assert.equal(err.status, 400);
    return err;
  }
  assert.fail(`accepted ${JSON.stringify(e)}`);
}

function refused(change: (e: Json) => void, message: string | RegExp, code = 'invalid_event'): void {
  const err = refusal(change, 3);
  assert.equal(err.code, code);
  if (typeof message === 'string') assert.equal(err.message, `event 3: ${message}`);
  else assert.match(err.message, message);
}

const actor = (e: Json) => e.actor as Json;

describe('validateEvent: accepted events', () => {
  test('a minimal event (actor, action, source, outcome) is valid', () => {
    validateEvent(minimal(), 0);
  });
  test('an event using every field is valid', () => {
    validateEvent(full(), 0);
  });
  test('actor.verified false is accepted', () => {
    const e = minimal();
    actor(e).verified = false;
    validateEvent(e);
  });
  test('any UUID version in either case is accepted as id', () => {
    for (const id of [
      '123e4567-e89b-12d3-a456-426614174000',
      'F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6',
      '00000000-0000-0000-0000-000000000000',
    ]) {
      validateEvent({ ...minimal(), id });
    }
  });
  test('RFC 3339 times with Z, offsets, no or nine fractional digits are accepted', () => {
    for (const time of [
      '2026-11-22T10:15:03Z',
      '2026-11-22T10:15:03.1-05:30',
      '2024-02-29T23:59:59.123456789+00:00',
      '2016-12-31T23:59:60Z',
    ]) {
      validateEvent({ ...minimal(), time });
    }
  });
  test('actions of two or more dotted segments with digits, _ and - are accepted', () => {
    for (const action of ['git.commit', 'emacs.package.install', 'k8s.configmaps.update', 'a.b', 'ci.job-run.step_2']) {
      validateEvent({ ...minimal(), action });
    }
  });
});

describe('validateEvent: each schema rule refuses with the event position and JSON pointer', () => {
  test('missing actor', () => refused((e) => delete e.actor, '/actor is required'));
  test('missing action', () => refused((e) => delete e.action, '/action is required'));
  test('missing source', () => refused((e) => delete e.source, '/source is required'));
  test('missing outcome', () => refused((e) => delete e.outcome, '/outcome is required'));
  test('missing actor.id', () => refused((e) => delete actor(e).id, '/actor/id is required'));
  test('missing actor.type', () => refused((e) => delete actor(e).type, '/actor/type is required'));
  test('missing source.kind', () => refused((e) => (e.source = {}), '/source/kind is required'));
  test('bad actor.type enum', () =>
    refused((e) => (actor(e).type = 'robot'), '/actor/type must be one of human, service, ai_agent'));
  test('bad outcome enum', () => refused((e) => (e.outcome = 'ok'), '/outcome must be one of success, failure, denied'));
  test('event that is not an object', () => {
    for (const v of [[], 'x', 1, null, true]) {
      assert.throws(() => validateEvent(v, 7), { code: 'invalid_event', message: 'event 7: the event must be an object' });
    }
  });
  test('wrong types', () => {
    refused((e) => (e.source = 'git'), '/source must be an object');
    refused((e) => (e.action = 42), '/action must be a string');
    refused((e) => (e.data = [1]), '/data must be an object');
    refused((e) => (e.attachments = {}), '/attachments must be an array');
    refused((e) => (e.attachments = [{ sha256: 'a'.repeat(64), size: 1.5 }]), '/attachments/0/size must be an integer');
    refused((e) => (actor(e).id = 7), '/actor/id must be a string');
  });
  test('extra property at every level except data', () => {
    refused((e) => (e.extra = 1), '/extra is not an allowed property');
    refused((e) => (actor(e).email = 'a@b'), '/actor/email is not an allowed property');
    refused((e) => ((e.source as Json).os = 'linux'), '/source/os is not an allowed property');
    refused((e) => (e.resource = { type: 't', id: 'i', x: 1 }), '/resource/x is not an allowed property');
    refused((e) => (e.approval = { by: 'b', when: 'now' }), '/approval/when is not an allowed property');
    refused((e) => (e.attachments = [{ sha256: 'a'.repeat(64), url: 'x' }]), '/attachments/0/url is not an allowed property');
    validateEvent({ ...minimal(), data: { anything: { goes: [1, { here: true }] } } });
  });
  test('bad action pattern', () => {
    const msg =
      '/action must be a dotted lower-case name with at least two segments, such as git.commit or emacs.package.install';
    for (const action of [
      'git',
      'Git.Commit',
      'git..commit',
      '.git.commit',
      'git.commit.',
      'git commit',
      'git.-x',
      'git.comm!t',
      'a'.repeat(127) + '.b',
    ]) {
      refused((e) => (e.action = action), action.length > 128 ? '/action must be at most 128 characters' : msg);
    }
  });
  test('bad uuid', () => {
    const msg = '/id must be a UUID such as 0193a5f0-7c1e-7d2a-9b3c-4d5e6f708192';
    for (const id of [
      'nope',
      'urn:uuid:123e4567-e89b-12d3-a456-426614174000',
      '{123e4567-e89b-12d3-a456-426614174000}',
      '123e4567e89b12d3a456426614174000',
      '123e4567-e89b-12d3-a456-42661417400g',
    ]) {
      refused((e) => (e.id = id), msg);
    }
  });
  test('bad time', () => {
    const msg = '/time must be an RFC 3339 date-time with upper-case T and an offset, such as 2026-11-22T10:15:03.140211Z';
    for (const time of [
      '2026-11-22',
      '2026-11-22T10:15:03',
      '2026-11-22 10:15:03Z',
      '2026-11-22t10:15:03z',
      '2026-13-01T00:00:00Z',
      '2025-02-29T00:00:00Z',
      '2026-11-22T24:00:00Z',
      '2026-11-22T10:15:03+0100',
      '2026-11-22T10:15:03.1234567890Z',
      'yesterday',
    ]) {
      refused((e) => (e.time = time), msg);
    }
  });
  test('actor.verified true is refused: the server sets it', () =>
    refused(
      (e) => (actor(e).verified = true),
      '/actor/verified must be false or absent: actor.verified is set by the server; a client cannot claim it',
    ));
  test('actor.issuer cannot be sent by a client', () =>
    refused((e) => (actor(e).issuer = 'https://idp'), '/actor/issuer is set by the server; a client cannot send it'));
  test('ai_agent without on_behalf_of is refused', () =>
    refused((e) => (actor(e).type = 'ai_agent'), '/actor/on_behalf_of is required when /actor/type is ai_agent'));
  test('empty strings are refused', () => {
    refused((e) => (e.subject = ''), '/subject must not be empty');
    refused((e) => (actor(e).id = ''), '/actor/id must not be empty');
  });
  test('over-long strings are refused', () => {
    refused((e) => (actor(e).id = 'x'.repeat(257)), '/actor/id must be at most 256 characters');
    refused((e) => (e.reason = 'x'.repeat(4097)), '/reason must be at most 4096 characters');
  });
  test('attachment rules', () => {
    refused((e) => (e.attachments = [{ name: 'x' }]), '/attachments/0/sha256 is required');
    refused((e) => (e.attachments = [{ sha256: 'A'.repeat(64) }]), '/attachments/0/sha256 must be 64 lower-case hex digits');
    refused((e) => (e.attachments = [{ sha256: 'a'.repeat(63) }]), '/attachments/0/sha256 must be 64 lower-case hex digits');
    refused((e) => (e.attachments = [{ sha256: 'a'.repeat(64), size: -1 }]), '/attachments/0/size must be at least 0');
  });
  test('approval needs by', () => refused((e) => (e.approval = { ticket: 'T-1' }), '/approval/by is required'));
  test('without a position the message has no prefix', () => {
    const e = minimal();
    actor(e).type = 'robot';
    assert.throws(() => validateEvent(e), { message: '/actor/type must be one of human, service, ai_agent' });
  });
  test('keys with / and ~ are escaped in the pointer', () =>
    refused((e) => (e['a/b~c'] = 1), '/a~1b~0c is not an allowed property'));
});

describe('validateEvent: nesting and canonical representability', () => {
  const nested = (levels: number): Json => {
    // `data` is level 2 (the event is level 1); each further object adds one.
    const data: Json = {};
    let d = data;
    for (let i = 3; i <= levels; i++) {
      d.n = {};
      d = d.n as Json;
    }
    return { ...minimal(), data };
  };
  test(`an event nested exactly ${MAX_DEPTH} levels deep is accepted`, () => validateEvent(nested(MAX_DEPTH)));
  test(`an event nested ${MAX_DEPTH + 1} levels deep is refused with too_deep`, () => {
    assert.throws(() => validateEvent(nested(MAX_DEPTH + 1), 5), {
      code: 'too_deep',
      message: `event 5: /data${'/n'.repeat(MAX_DEPTH - 1)} is nested deeper than the limit of ${MAX_DEPTH} levels`,
    });
  });
  test('1,000,000-deep nesting inside data is refused without a stack overflow', () => {
    let deep: unknown = [];
    for (let i = 0; i < 1_000_000; i++) deep = [deep];
    assert.throws(() => validateEvent({ ...minimal(), data: { deep } }, 0), { code: 'too_deep' });
  });
  test('lone surrogates are refused, naming the event and the pointer', () => {
    refused(
      (e) => (e.data = { a: ['ok', 'x\ud800'] }),
      '/data/a/1 contains a lone UTF-16 surrogate, which canonical JSON cannot represent',
    );
    refused(
      (e) => (e.data = { a: { '\udc00': 1 } }),
      '/data/a has a key that contains a lone UTF-16 surrogate, which canonical JSON cannot represent',
    );
    refused((e) => (e.reason = '\ud83d'), '/reason contains a lone UTF-16 surrogate, which canonical JSON cannot represent');
    validateEvent({ ...minimal(), reason: 'emoji \ud83d\ude00 is fine', data: { '\ud83d\ude00': '\ud83d\ude00' } });
  });
  test('every free-text field of the schema is checked for lone surrogates', () => {
    // Walks the schema so that a field added later cannot skip the check.
    const props = eventSchema.properties as unknown as Record<string, Json>;
    const cases: [string, (e: Json) => void][] = [];
    const free = (s: Json) => s.type === 'string' && s.pattern === undefined && s.format === undefined;
    for (const [name, s] of Object.entries(props)) {
      if (free(s)) cases.push([`/${name}`, (e) => (e[name] = 'x\ud800')]);
      const sub = (s.properties ?? (s.items as Json | undefined)?.properties) as Record<string, Json> | undefined;
      for (const [inner, t] of Object.entries(sub ?? {})) {
        if (!free(t)) continue;
        if (s.type === 'array') {
          cases.push([`/${name}/0/${inner}`, (e) => (e[name] = [{ sha256: 'a'.repeat(64), [inner]: 'x\ud800' }])]);
        } else {
          const base: Json =
            name === 'resource' ? { type: 't', id: 'i' } : name === 'approval' ? { by: 'b' } : ((minimal()[name] as Json) ?? {});
          cases.push([
            `/${name}/${inner}`,
            (e) =>
              (e[name] = { ...base, ...(name === 'actor' ? { type: 'ai_agent', on_behalf_of: 'o' } : {}), [inner]: 'x\ud800' }),
          ]);
        }
      }
    }
    assert.ok(cases.length >= 14, `only ${cases.length} free-text fields found`);
    for (const [path, change] of cases) {
      refused(change, `${path} contains a lone UTF-16 surrogate, which canonical JSON cannot represent`);
    }
  });
});

describe('checkDepth', () => {
  test('counts an object or array as one level and a scalar as none', () => {
    checkDepth(1, 0);
    checkDepth({}, 1);
    checkDepth([[1]], 2);
    assert.throws(() => checkDepth([[1]], 1), { code: 'too_deep', message: '/0 is nested deeper than the limit of 1 levels' });
    assert.throws(() => checkDepth({}, 0), { code: 'too_deep' });
  });
  test('a 1,000,000-deep array is refused without a stack overflow', () => {
    let deep: unknown[] = [];
    for (let i = 0; i < 1_000_000; i++) deep = [deep];
    assert.throws(
      () => checkDepth(deep),
      (e: unknown) => e instanceof SteleError && e.code === 'too_deep' && e.status === 400,
    );
  });
  test('a 1,000,000-deep object is refused without a stack overflow', () => {
    let deep: Json = {};
    for (let i = 0; i < 1_000_000; i++) deep = { a: deep };
    assert.throws(() => checkDepth(deep), { code: 'too_deep' });
  });
  test('agrees with a recursive depth on random JSON', () => {
    const depth = (v: unknown): number =>
      v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v as Json).map(depth)) : 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (v, max) => {
        let ok = true;
        try {
          checkDepth(v, max);
        } catch {
          ok = false;
        }
        return ok === depth(v) <= max;
      }),
    );
  });
  test('wide values are walked completely', () => {
    const wide = Array.from({ length: 1000 }, (_, i) => (i === 999 ? [[[1]]] : { a: [1, 2] }));
    checkDepth(wide, 4);
    assert.throws(() => checkDepth(wide, 3), { message: '/999/0/0 is nested deeper than the limit of 3 levels' });
  });
});

describe('normalizeEvent', () => {
  const received = 1795342503140211n; // 2026-11-22T10:15:03.140211Z

  test('assigns a UUIDv7 from the receipt time when id is absent', () => {
    const e = normalizeEvent(minimal(), received);
    assert.match(e.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(Number.parseInt(e.id.slice(0, 8) + e.id.slice(9, 13), 16), Number(received / 1000n));
    assert.notEqual(normalizeEvent(minimal(), received).id, e.id, 'random part differs');
  });
  test('keeps a client id, lower-cased', () => {
    assert.equal(normalizeEvent(full(), received).id, '0193a5f0-7c1e-7d2a-9b3c-4d5e6f708192');
  });
  test('sets time to the receipt time (microseconds, Z) when absent and keeps a client time', () => {
    assert.equal(normalizeEvent(minimal(), received).time, '2026-11-22T10:15:03.140211Z');
    assert.equal(normalizeEvent(minimal(), received).time, formatMicros(received));
    assert.equal(normalizeEvent(full(), received).time, '2026-11-22T11:15:03.140211+01:00');
  });
  test('puts subject, actor.id and actor.on_behalf_of in Unicode NFC, and nothing else', () => {
    const nfd = 'Jose\u0301 Mu\u0308ller'; // "José Müller" with combining marks
    const composed = 'Jos\u00e9 M\u00fcller';
    const e = full();
    e.subject = nfd;
    Object.assign(e.actor as object, { id: `agent-${nfd}`, on_behalf_of: nfd });
    e.reason = nfd;
    const n = normalizeEvent(e, received);
    assert.equal(n.subject, composed);
    assert.equal(n.actor.id, `agent-${composed}`);
    assert.equal(n.actor.on_behalf_of, composed);
    assert.equal(n.reason, nfd, 'free text is stored as sent');
    // Already NFC, or below U+0300: unchanged (and the same string).
    const m = minimal();
    (m.actor as Record<string, unknown>).id = composed;
    assert.equal(normalizeEvent(m, received).actor.id, composed);
    assert.equal(nfc('alice@example.com'), 'alice@example.com');
    assert.equal(nfc('\u212b'), '\u00c5', 'a singleton decomposition (Angstrom sign) too');
  });
  test('sets actor.verified to false', () => {
    assert.equal(normalizeEvent(minimal(), received).actor.verified, false);
    assert.deepEqual(normalizeEvent(full(), received).actor, {
      id: 'claude',
      on_behalf_of: 'alice',
      type: 'ai_agent',
      verified: false,
    });
  });
  test('returns a new object and leaves the input untouched', () => {
    const input = minimal();
    const before = structuredClone(input);
    const out = normalizeEvent(input, received);
    assert.notEqual(out, input);
    assert.notEqual(out.actor, input.actor);
    assert.deepEqual(input, before);
  });
  test('keeps every other field and adds no absent ones', () => {
    const input = full();
    const out = normalizeEvent(input, received) as unknown as Json;
    for (const k of Object.keys(input)) if (k !== 'id' && k !== 'actor') assert.deepEqual(out[k], input[k], k);
    const small = normalizeEvent(minimal(), received) as unknown as Json;
    assert.deepEqual(Object.keys(small), ['action', 'actor', 'id', 'outcome', 'source', 'time']);
  });
  test('top-level and actor keys come out sorted (canonicalize need not sort them)', () => {
    const out = normalizeEvent(full(), received) as unknown as Json;
    const keys = Object.keys(out);
    assert.deepEqual(keys, [...keys].sort());
    const ak = Object.keys(out.actor as Json);
    assert.deepEqual(ak, [...ak].sort());
  });
});

describe('uuidv7', () => {
  const fields = (u: string) => {
    const hex = u.replace(/-/g, '');
    return {
      ms: Number.parseInt(hex.slice(0, 12), 16),
      version: Number.parseInt(hex[12] as string, 16),
      sub: Number.parseInt(hex.slice(13, 16), 16),
      variant: Number.parseInt(hex[16] as string, 16) >> 2,
    };
  };
  test('layout: 48-bit ms, version 7, 12 bits of sub-millisecond time, variant 10', () => {
    const u = uuidv7(1795342503140.5);
    assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.deepEqual(fields(u), { ms: 1795342503140, version: 7, sub: 2048, variant: 0b10 });
    assert.deepEqual(fields(uuidv7(0)), { ms: 0, version: 7, sub: 0, variant: 0b10 });
    assert.equal(fields(uuidv7(2 ** 48 - 1)).ms, 2 ** 48 - 1);
  });
  test('ids are time-ordered at microsecond granularity', () => {
    let prev = '';
    for (let us = 1795342503140000; us < 1795342503143000; us += 1) {
      const u = uuidv7(us / 1000);
      assert.ok(u.slice(0, 18) >= prev.slice(0, 18), `${u} sorts before ${prev}`);
      prev = u;
    }
    assert.ok(uuidv7(1795342503140.001) < uuidv7(1795342503140.5));
    assert.ok(uuidv7(1795342503140.999) < uuidv7(1795342503141));
  });
  test('random parts do not repeat', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(uuidv7(1795342503140));
    assert.equal(seen.size, 100_000);
  });
  test('refuses times outside 48 bits', () => {
    for (const ms of [-1, 2 ** 48, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => uuidv7(ms), RangeError);
  });
});

test('a refused event carries its position and pointer as detail, not only in the message', () => {
  const err = (input: unknown, position?: number) => {
    try {
      validateEvent(input, position);
    } catch (e) {
      assert.ok(e instanceof SteleError);
      return e;
    }
    assert.fail('not refused');
  };
  const missing = err({ ...minimal(), actor: { id: 'alice' } }, 3);
  assert.equal(missing.message, 'event 3: /actor/type is required');
  assert.deepEqual(missing.detail, { pointer: '/actor/type', batchIndex: 3 });
  const extra = err({ ...minimal(), colour: 'red' });
  assert.deepEqual(extra.detail, { pointer: '/colour' });
  const wrong = err({ ...minimal(), outcome: 'maybe' }, 0);
  assert.deepEqual(wrong.detail, { pointer: '/outcome', batchIndex: 0 });
  const surrogate = err({ ...minimal(), data: { a: ['ok', 'x\ud800'] } }, 1);
  assert.deepEqual(surrogate.detail, { pointer: '/data/a/1', batchIndex: 1 });
});
