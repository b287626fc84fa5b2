import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SteleError } from '../core/errors.js';
import { seal, unseal } from '../keys/seal.js';
import { canonicalize } from './canonical.js';
import { normalizeEvent, validateEvent } from './normalize.js';
import {
  buildLeaf,
  buildSealedLeaf,
  decodeLeaf,
  encodeLeaf,
  formatMicros,
  leafAad,
  MAX_LEAF_BYTES,
  nowMicros,
  parseMicros,
  sealedAad,
  sealedContent,
  sealedHeader,
  sealedPlaintext,
  sealedPlaintextOf,
} from './record.js';
import type { Event, Ingest, LeafRecord } from './types.js';

const ingest: Ingest = { principal: 'apikey:ci', method: 'apikey' };

function event(data?: Record<string, unknown>): Event {
  const input: Record<string, unknown> = {
    actor: { id: 'alice', type: 'human' },
    action: 'git.commit',
    source: { kind: 'git', host: 'laptop' },
    outcome: 'success',
  };
  if (data) input.data = data;
  validateEvent(input);
  return normalizeEvent(input, 1795342503140211n);
}

function record(e: Event = event()): LeafRecord {
  return { v: 2, received: '2026-11-22T10:15:03.140211Z', ingest, event: e };
}

describe('formatMicros / parseMicros', () => {
  test('formats with exactly 6 fractional digits and Z', () => {
    assert.equal(formatMicros(0n), '1970-01-01T00:00:00.000000Z');
    assert.equal(formatMicros(1795342503140211n), '2026-11-22T10:15:03.140211Z');
    assert.equal(formatMicros(1795342503000000n), '2026-11-22T10:15:03.000000Z');
    assert.equal(formatMicros(1795342503000001n), '2026-11-22T10:15:03.000001Z');
    assert.equal(formatMicros(-1n), '1969-12-31T23:59:59.999999Z');
    assert.equal(formatMicros(-62167219200000000n), '0000-01-01T00:00:00.000000Z');
    assert.equal(formatMicros(253402300799999999n), '9999-12-31T23:59:59.999999Z');
    assert.equal(formatMicros(10413792000000001n), '2300-01-01T00:00:00.000001Z'); // beyond 2^53 µs
  });
  test('refuses times outside years 0000-9999', () => {
    assert.throws(() => formatMicros(-62167219200000001n), RangeError);
    assert.throws(() => formatMicros(253402300800000000n), RangeError);
  });
  test('round-trips every microsecond of years 0000-9999', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -62167219200000000n, max: 253402300799999999n }),
        (us) => parseMicros(formatMicros(us)) === us,
      ),
      { numRuns: 5000 },
    );
  });
  test('agrees with Date for millisecond times', () => {
    fc.assert(
      fc.property(fc.integer({ min: -62167219200000, max: 253402300799999 }), (ms) => {
        const s = formatMicros(BigInt(ms) * 1000n);
        return s === `${new Date(ms).toISOString().slice(0, 23)}000Z`;
      }),
    );
  });
  test('parses offsets, short and long fractions, and years below 100', () => {
    assert.equal(parseMicros('2026-11-22T11:15:03.140211+01:00'), 1795342503140211n);
    assert.equal(parseMicros('2026-11-22T04:45:03.140211-05:30'), 1795342503140211n);
    assert.equal(parseMicros('2026-11-22T10:15:03.1402119Z'), 1795342503140211n);
    assert.equal(parseMicros('2026-11-22T10:15:03.14Z'), 1795342503140000n);
    assert.equal(parseMicros('2026-11-22T10:15:03Z'), 1795342503000000n);
    assert.equal(formatMicros(parseMicros('0050-03-01T00:00:00Z')), '0050-03-01T00:00:00.000000Z');
    assert.equal(parseMicros('2024-02-29T00:00:00Z'), 1709164800000000n);
    assert.equal(parseMicros('2016-12-31T23:59:60Z'), parseMicros('2017-01-01T00:00:00Z'));
  });
  test('refuses malformed times with SteleError invalid_time', () => {
    for (const s of [
      '2026-11-22',
      '2026-11-22t10:15:03Z',
      '2026-11-22 10:15:03Z',
      '2026-13-01T00:00:00Z',
      '2025-02-29T00:00:00Z',
      '2026-11-22T24:00:00Z',
      '2026-11-22T10:15:03+24:00',
      '2026-11-22T10:15:03',
      'x',
    ]) {
      assert.throws(
        () => parseMicros(s),
        (e: unknown) => e instanceof SteleError && e.code === 'invalid_time' && e.status === 400,
        s,
      );
    }
  });
});

describe('nowMicros', () => {
  test('tracks the wall clock with microsecond resolution and never goes backwards', () => {
    const before = BigInt(Date.now()) * 1000n;
    let prev = nowMicros();
    let distinct = 0;
    for (let i = 0; i < 100_000; i++) {
      const t = nowMicros();
      assert.ok(t >= prev, 'went backwards');
      if (t !== prev) distinct++;
      prev = t;
    }
    const after = BigInt(Date.now() + 1) * 1000n;
    assert.ok(prev >= before - 2000n && prev <= after + 2000n, `${prev} not within [${before}, ${after}]`);
    assert.ok(distinct > 100, 'no sub-millisecond resolution');
  });
});

describe('encodeLeaf', () => {
  test('is the UTF-8 of the canonical JSON of the record', () => {
    const r = record();
    assert.equal(encodeLeaf(r).toString('utf8'), canonicalize(r));
    assert.ok(
      encodeLeaf(r)
        .toString('utf8')
        .startsWith('{"event":{"action":"git.commit","actor":{"id":"alice","type":"human","verified":false}'),
    );
  });

  /** A record whose leaf is exactly `size` bytes, padded inside data with `unit` (1 or 2 UTF-8 bytes). */
  function sized(size: number, unit = 'x'): LeafRecord {
    const base = encodeLeaf(record(event({ pad: '' }))).length;
    const bytes = Buffer.byteLength(unit);
    const n = Math.floor((size - base) / bytes);
    const pad = unit.repeat(n) + 'x'.repeat(size - base - n * bytes);
    return record(event({ pad }));
  }

  test('a leaf of exactly 65535 bytes is accepted', () => {
    assert.equal(MAX_LEAF_BYTES, 65535);
    assert.equal(encodeLeaf(sized(65535)).length, 65535);
    assert.equal(encodeLeaf(sized(65535, 'é')).length, 65535);
  });
  test('a leaf of 65536 bytes is refused with 413 and a message naming the limit', () => {
    for (const unit of ['x', 'é']) {
      assert.throws(
        () => encodeLeaf(sized(65536, unit)),
        (e: unknown) =>
          e instanceof SteleError &&
          e.code === 'too_large' &&
          e.status === 413 &&
          e.message === 'event is 65536 bytes as a leaf; the limit is 65535 bytes',
      );
    }
  });
  test('the limit counts UTF-8 bytes, not characters', () => {
    assert.throws(() => encodeLeaf(record(event({ pad: '€'.repeat(30000) }))), { code: 'too_large' }); // 90,000 bytes
  });
  test('values JSON cannot carry are refused with a 400 naming the field', () => {
    const e = event();
    (e as unknown as Record<string, unknown>).reason = undefined;
    assert.throws(() => encodeLeaf(record(e)), {
      code: 'invalid_json',
      message: '/event/reason is undefined, which JSON cannot represent',
    });
  });
});

describe('buildLeaf', () => {
  test('is encodeLeaf of {v: 2, received, ingest, event}', () => {
    const e = event();
    const leaf = buildLeaf(e, { method: 'oidc', principal: 'alice@example.com' }, 1795342503140211n);
    assert.deepEqual(
      leaf,
      encodeLeaf({
        v: 2,
        received: '2026-11-22T10:15:03.140211Z',
        ingest: { principal: 'alice@example.com', method: 'oidc' },
        event: e,
      }),
    );
  });
  test('ignores extra properties on the ingest object', () => {
    const extra = { ...ingest, token: 'secret' } as Ingest;
    assert.ok(!buildLeaf(event(), extra, 0n).toString().includes('secret'));
  });
});

describe('buildSealedLeaf (v3)', () => {
  const dataKey = Buffer.alloc(32, 7);
  const alice: Ingest = { method: 'oidc', principal: 'alice@example.com' };
  const RECEIVED = 1795342503140211n; // 2026-11-22T10:15:03.140211Z
  const leafOf = (e: Event, who: Ingest, key = 'k1') =>
    buildSealedLeaf(e, who, RECEIVED, key, (pt, aad) => seal(dataKey, pt, aad));
  const open = (r: LeafRecord) => unseal(dataKey, Buffer.from(r.sealed as string, 'base64'), leafAad(r));

  test('is binary and names nobody in the clear: 0x03, received, key id, compression, sealed', () => {
    const leaf = leafOf(event(), alice);
    assert.equal(leaf[0], 3);
    assert.equal(leaf.readBigUInt64BE(1), RECEIVED);
    assert.equal(leaf[9], 2);
    assert.equal(leaf.toString('latin1', 10, 12), 'k1');
    assert.equal(leaf[12], 1, 'zstd with dictionary 1');
    assert.ok(!leaf.toString('latin1').includes('alice'), 'no principal in the leaf bytes');
    const r = decodeLeaf(leaf);
    assert.deepEqual(r, {
      v: 3,
      received: '2026-11-22T10:15:03.140211Z',
      key: 'k1',
      sealed: leaf.subarray(13).toString('base64'),
      compression: 'zstd-leaf-1',
    });
  });
  test('seals the canonical {"event","ingest"}, compressed, bound to every byte before it', () => {
    const e = event();
    const leaf = leafOf(e, alice);
    const r = decodeLeaf(leaf);
    assert.ok(leafAad(r).equals(leaf.subarray(0, 13)));
    const plain = sealedPlaintextOf(r, open(r));
    assert.equal(plain.toString(), canonicalize({ event: e, ingest: alice }));
    assert.deepEqual(sealedContent(r, open(r)), { event: e, ingest: alice });
  });
  test('is smaller than the v2 JSON leaf of the same event by more than half', () => {
    const e = event({ message: 'Merge pull request #6412 from acme/handler-condition', branch: 'main', files: ['a/b/c.ts'] });
    const v3 = leafOf(e, alice);
    const v2 = encodeLeaf({
      v: 2,
      received: '2026-11-22T10:15:03.140211Z',
      key: 'k1',
      sealed: seal(dataKey, sealedPlaintext(e, alice), sealedAad('k1', '2026-11-22T10:15:03.140211Z')).toString('base64'),
    });
    assert.ok(v3.length * 2 < v2.length, `${v3.length} vs ${v2.length}`);
  });
  test('opens a leaf whose plaintext is stored as it is (compression 0, for what does not compress)', () => {
    const e = event();
    const header = sealedHeader(RECEIVED, 'k1', 0);
    const leaf = Buffer.concat([header, seal(dataKey, sealedPlaintext(e, alice), header)]);
    const r = decodeLeaf(leaf);
    assert.equal(r.compression, undefined);
    assert.deepEqual(sealedContent(r, open(r)), { event: e, ingest: alice });
  });
  test('the caches do not mix principals, keys or times', () => {
    const e = event();
    const bob: Ingest = { method: 'oidc', principal: 'bob@example.com' };
    for (const [who, key] of [
      [alice, 'k1'],
      [bob, 'k1'],
      [alice, 'k2'],
      [bob, 'k2'],
    ] as const) {
      const r = decodeLeaf(leafOf(e, who, key));
      assert.equal(r.key, key);
      assert.deepEqual(sealedContent(r, open(r)).ingest, who);
    }
  });
  test('a ciphertext moved to another key id, time or compression no longer opens', () => {
    const r = decodeLeaf(leafOf(event(), alice));
    assert.throws(() => open({ ...r, key: 'k2' }));
    assert.throws(() => open({ ...r, received: '2026-11-22T10:15:03.140212Z' }));
    const { compression: _, ...uncompressed } = r;
    assert.throws(() => open(uncompressed));
  });
  test('refuses (413) a plaintext over the limit, even when it would compress under it', () => {
    const e = event({ pad: 'x'.repeat(MAX_LEAF_BYTES) });
    assert.throws(
      () => leafOf(e, alice),
      (err: unknown) => err instanceof SteleError && err.status === 413 && /what a sealed leaf encrypts/.test(err.message),
    );
  });
  test('decodeLeaf refuses malformed v3 leaves, naming the problem', () => {
    const leaf = leafOf(event(), alice);
    const with_ = (i: number, v: number) => {
      const b = Buffer.from(leaf);
      b[i] = v;
      return b;
    };
    assert.throws(() => decodeLeaf(leaf.subarray(0, 8)), /too short/);
    assert.throws(() => decodeLeaf(leaf.subarray(0, 13)), /no sealed event/);
    assert.throws(() => decodeLeaf(with_(9, 0)), /key id/);
    assert.throws(() => decodeLeaf(with_(10, 0x2f)), /key id/); // "/" is not base64url
    assert.throws(() => decodeLeaf(with_(12, 9)), /unknown compression 9/);
    assert.throws(() => decodeLeaf(with_(1, 0xff)), /past the year 9999/);
  });
  test('v2 sealed leaves (existing data directories) still open as before', () => {
    const e = event();
    const received = '2026-11-22T10:15:03.140211Z';
    const aad = sealedAad('k1', received);
    assert.equal(aad.toString(), '{"key":"k1","received":"2026-11-22T10:15:03.140211Z","v":2}');
    const v2: LeafRecord = {
      v: 2,
      received,
      key: 'k1',
      sealed: seal(dataKey, sealedPlaintext(e, alice), aad).toString('base64'),
    };
    const r = decodeLeaf(encodeLeaf(v2));
    assert.deepEqual(r, v2);
    assert.deepEqual(sealedContent(r, open(r)), { event: e, ingest: alice });
  });
  test('v1 sealed leaves (existing data directories) still open as before', () => {
    const e = event();
    const v1: LeafRecord = { v: 1, received: '2026-11-22T10:15:03.140211Z', ingest: alice, key: 'k1', sealed: '' };
    const aad = leafAad(v1);
    assert.equal(
      aad.toString(),
      '{"ingest":{"method":"oidc","principal":"alice@example.com"},"key":"k1","received":"2026-11-22T10:15:03.140211Z","v":1}',
    );
    v1.sealed = seal(dataKey, Buffer.from(canonicalize(e)), aad).toString('base64');
    const r = decodeLeaf(encodeLeaf(v1));
    assert.deepEqual(r, v1);
    assert.deepEqual(sealedContent(r, unseal(dataKey, Buffer.from(r.sealed as string, 'base64'), leafAad(r))), {
      event: e,
      ingest: alice,
    });
  });
  test('sealedContent refuses a v2 plaintext that is not exactly {event, ingest}', () => {
    const r: LeafRecord = { v: 2, received: '2026-11-22T10:15:03.140211Z', key: 'k1', sealed: 'AAAA' };
    const e = event();
    assert.throws(() => sealedContent(r, Buffer.from(canonicalize(e))), /unknown field|lacks/);
    assert.throws(() => sealedContent(r, Buffer.from(canonicalize({ event: e }))), /ingest/);
    assert.throws(() => sealedContent(r, Buffer.from(canonicalize({ event: e, ingest: alice, x: 1 }))), /unknown field "x"/);
  });
});

describe('decodeLeaf', () => {
  test('round-trips encodeLeaf', () => {
    const r = record(event({ nested: { list: [1, 'two', null, true, { é: 1.5 }] } }));
    assert.deepEqual(decodeLeaf(encodeLeaf(r)), r);
  });
  test('round-trips random data', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue({ maxDepth: 5, stringUnit: 'binary' })), (data) => {
        const r = record(event(data));
        assert.deepEqual(decodeLeaf(encodeLeaf(r)), JSON.parse(canonicalize(r)));
      }),
      { numRuns: 300 },
    );
  });
  test('accepts the encrypted form (key + sealed instead of event), v2 without ingest', () => {
    const r: LeafRecord = { v: 2, received: '2026-11-22T10:15:03.140211Z', key: 'k1', sealed: 'AAAA' };
    assert.deepEqual(decodeLeaf(encodeLeaf(r)), r);
  });
  test('accepts version 1 leaves, plain and sealed, each with ingest in the clear', () => {
    const plain: LeafRecord = { ...record(), v: 1 };
    assert.deepEqual(decodeLeaf(encodeLeaf(plain)), plain);
    const sealed: LeafRecord = { v: 1, received: '2026-11-22T10:15:03.140211Z', ingest, key: 'k1', sealed: 'AAAA' };
    assert.deepEqual(decodeLeaf(encodeLeaf(sealed)), sealed);
  });

  const good = encodeLeaf(record()).toString('utf8');
  /** Canonical bytes of the good record after `change`: only the checked rule is broken. */
  const altered = (change: (r: Record<string, unknown>) => void): Buffer => {
    const r = JSON.parse(good) as Record<string, unknown>;
    change(r);
    return Buffer.from(canonicalize(r));
  };
  const bad: [string, Uint8Array, RegExp][] = [
    ['invalid UTF-8', Buffer.concat([Buffer.from(good.slice(0, -2)), Buffer.from([0xff]), Buffer.from('}}')]), /not valid UTF-8/],
    ['a byte-order mark', Buffer.from(`\ufeff${good}`), /not JSON/],
    ['truncated JSON', Buffer.from(good.slice(0, -1)), /not JSON/],
    ['an array', Buffer.from('[1]'), /not a JSON object/],
    ['whitespace (not canonical)', Buffer.from(good.replace(',"v":2', ', "v":2')), /canonical/],
    ['keys out of order (not canonical)', Buffer.from(JSON.stringify({ v: 1, ...JSON.parse(good) })), /canonical/],
    ['a duplicate key (not canonical)', Buffer.from(good.replace(',"v":2}', ',"v":2,"v":2}')), /canonical/],
    ['an escaped character that needs none (not canonical)', Buffer.from(good.replace('"alice"', '"\\u0061lice"')), /canonical/],
    ['version 3', altered((r) => (r.v = 3)), /version 3/],
    [
      'a version 2 sealed leaf with ingest in the clear',
      altered((r) => {
        delete r.event;
        r.key = 'k1';
        r.sealed = 'AAAA';
      }),
      /version 2 sealed leaf with ingest in the clear/,
    ],
    [
      'a version 1 sealed leaf without ingest',
      altered((r) => {
        delete r.event;
        delete r.ingest;
        r.v = 1;
        r.key = 'k1';
        r.sealed = 'AAAA';
      }),
      /no ingest object/,
    ],
    ['a version 2 plain leaf without ingest', altered((r) => delete r.ingest), /no ingest object/],
    ['an unknown field', altered((r) => (r.extra = 1)), /unknown field "extra"/],
    ['no received', altered((r) => delete r.received), /no received time/],
    [
      'received with milliseconds',
      altered((r) => (r.received = '2026-11-22T10:15:03.140Z')),
      /not a UTC time with 6 fractional digits/,
    ],
    ['received with an offset', altered((r) => (r.received = '2026-11-22T11:15:03.140211+01:00')), /not a UTC time/],
    ['an unknown ingest method', altered((r) => (r.ingest = { principal: 'p', method: 'password' })), /ingest must be/],
    ['an extra ingest field', altered((r) => (r.ingest = { ...ingest, a: 1 })), /ingest must be/],
    ['an empty principal', altered((r) => (r.ingest = { ...ingest, principal: '' })), /ingest must be/],
    ['neither event nor sealed', altered((r) => delete r.event), /neither event nor key \+ sealed/],
    [
      'sealed without key',
      altered((r) => {
        delete r.event;
        r.sealed = 'AAAA';
      }),
      /neither event nor key \+ sealed/,
    ],
    ['event and sealed', altered((r) => (r.sealed = 'x')), /both event and key\/sealed/],
    ['an event without id', altered((r) => delete (r.event as Record<string, unknown>).id), /event lacks id/],
    [
      'an event whose actor has no verified',
      altered((r) => delete ((r.event as Record<string, unknown>).actor as Record<string, unknown>).verified),
      /verified/,
    ],
    ['more than 65535 bytes', Buffer.alloc(65536, 0x20), /65536 bytes; the limit is 65535/],
  ];
  for (const [what, bytes, message] of bad) {
    test(`refuses ${what}`, () => {
      assert.throws(
        () => decodeLeaf(bytes),
        (e: unknown) => e instanceof Error && !(e instanceof SteleError) && message.test(e.message),
      );
    });
  }
});
