import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SteleError } from '../core/errors.js';
import { canonicalBytes, canonicalize } from './canonical.js';

/** A deliberately naive JCS, written from RFC 8785's text, to compare the fast one against. */
function reference(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return JSON.stringify(v); // RFC 8785 3.2.2.3: ECMAScript Number serialization
  if (typeof v === 'string') return referenceString(v);
  if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort(compareCodeUnits);
  return `{${keys.map((k) => `${referenceString(k)}:${reference(o[k])}`).join(',')}}`;
}

function compareCodeUnits(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function referenceString(s: string): string {
  // RFC 8785 3.2.2.2: the two-character escapes, keyed by the character they stand for.
  const short: Record<string, string> = {
    '\b': '\\b',
    '\t': '\\t',
    '\n': '\\n',
    '\f': '\\f',
    '\r': '\\r',
    '"': '\\"',
    '\\': '\\\\',
  };
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const esc = short[s[i] as string];
    if (esc !== undefined) out += esc;
    else if (c < 0x20) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

function fromHex(hex: string): number {
  const b = Buffer.from(hex, 'hex');
  return b.readDoubleBE(0);
}

describe('canonicalize: RFC 8785 vectors', () => {
  test('section 3.2.2 example: literals, numbers and string escaping', () => {
    const input =
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
      ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}';
    assert.equal(
      canonicalize(JSON.parse(input)),
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  test('cyberphone sample: UTF-8 bytes match the published hex', () => {
    const input =
      '{"numbers": [1E30,4.50,6,2e-3,0.000000000000000000000000001],' +
      ' "escaping": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "other": [null, true, false]}';
    const hex =
      '7b 22 65 73 63 61 70 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30 30 66 5c 6e 41 27 42 5c 22 5c 5c ' +
      '5c 5c 5c 22 2f 22 2c 22 6e 75 6d 62 65 72 73 22 3a 5b 31 65 2b 33 30 2c 34 2e 35 2c 36 2c 30 2e ' +
      '30 30 32 2c 31 65 2d 32 37 5d 2c 22 6f 74 68 65 72 22 3a 5b 6e 75 6c 6c 2c 74 72 75 65 2c 66 61 ' +
      '6c 73 65 5d 7d';
    assert.equal(canonicalBytes(JSON.parse(input)).toString('hex'), hex.replace(/ /g, ''));
  });

  test('section 3.2.3 sorting: keys ordered by UTF-16 code units, not code points or locale', () => {
    const input = JSON.parse(
      '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh",' +
        ' "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",' +
        ' "\\u00f6": "Latin Small Letter O With Diaeresis"}',
    );
    assert.equal(
      canonicalize(input),
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  test('arrays keep their order while objects inside them are sorted; integer-like keys sort as strings', () => {
    assert.equal(canonicalize(JSON.parse('[56, {"d": true, "10": null, "1": [ ]}]')), '[56,{"1":[],"10":null,"d":true}]');
    assert.equal(canonicalize({ 9: 'a', 10: 'b', '!': 'c' }), '{"!":"c","10":"b","9":"a"}');
  });

  test('sorting ignores locale (french.json)', () => {
    const input = {
      peach: 'This sorting order',
      péché: 'is wrong according to French',
      pêche: 'but canonicalization MUST',
      sin: 'ignore locale',
    };
    assert.equal(
      canonicalize(input),
      '{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ignore locale"}',
    );
  });

  test('Appendix B: IEEE 754 doubles serialize as ECMAScript Number::toString', () => {
    const table: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [hex, want] of table) assert.equal(canonicalize(fromHex(hex)), want, hex);
  });

  test('Appendix B: NaN and Infinity are refused', () => {
    for (const hex of ['7fffffffffffffff', '7ff0000000000000', 'fff0000000000000']) {
      assert.throws(() => canonicalize([fromHex(hex)]), { name: 'SteleError', code: 'invalid_json' });
    }
  });
});

describe('canonicalize: what JSON cannot carry is refused with the JSON pointer', () => {
  const refused: [unknown, string][] = [
    [{ a: { b: undefined } }, '/a/b is undefined'],
    [{ f: () => 1 }, '/f is function'],
    [[1, 2n], '/1 is bigint'],
    [{ s: Symbol('x') }, '/s is symbol'],
    [{ d: new Date(0) }, '/d is not a plain object'],
    [{ m: new Map() }, '/m is not a plain object'],
    [{ 'a/b': { '~': Number.NaN } }, '/a~1b/~0 is NaN'],
    [['\ud800'], '/0 contains a lone UTF-16 surrogate'],
    [{ x: 'ok\udc00' }, '/x contains a lone UTF-16 surrogate'],
    [{ x: { '\ud83d': 1 } }, '/x has a key that contains a lone UTF-16 surrogate'],
    [{ x: 'a\ude00\ud83d' }, '/x contains a lone UTF-16 surrogate'], // pair in the wrong order
  ];
  for (const [value, message] of refused) {
    test(`refuses: ${message}`, () => {
      assert.throws(
        () => canonicalize(value),
        (e: unknown) => e instanceof SteleError && e.status === 400 && e.message.startsWith(message),
      );
    });
  }

  test('a cyclic or 1,000,000-deep value is refused (too_deep), not a stack overflow', () => {
    let deep: unknown[] = [];
    for (let i = 0; i < 1_000_000; i++) deep = [deep];
    assert.throws(() => canonicalize(deep), { name: 'SteleError', code: 'too_deep' });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => canonicalize(cyclic), { name: 'SteleError', code: 'too_deep' });
  });

  test('a __proto__ key from JSON.parse is an ordinary key', () => {
    assert.equal(canonicalize(JSON.parse('{"b":1,"__proto__":{"a":1}}')), '{"__proto__":{"a":1},"b":1}');
  });

  test('objects without a prototype are plain objects', () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.b = 1;
    o.a = 2;
    assert.equal(canonicalize(o), '{"a":2,"b":1}');
  });

  test('a getter that canonicalizes during serialization does not corrupt the outer result', () => {
    const inner = { z: 'inner', a: [1, 2, 3] };
    const outer = {
      get a() {
        return canonicalize(inner);
      },
      b: 'x'.repeat(100),
    };
    assert.equal(canonicalize(outer), reference({ a: reference(inner), b: 'x'.repeat(100) }));
  });

  test('values larger than the scratch buffer serialize correctly', () => {
    const big = { s: 'é'.repeat(200_000), t: '\u0001'.repeat(50_000) };
    assert.equal(canonicalize(big), reference(big));
  });
});

describe('canonicalize: properties', () => {
  const json = fc.oneof(fc.jsonValue(), fc.jsonValue({ stringUnit: 'binary' }), fc.jsonValue({ stringUnit: 'binary-ascii' }));

  test('equals a straightforward reference implementation', () => {
    fc.assert(
      fc.property(json, (x) => canonicalize(x) === reference(x)),
      { numRuns: 2000 },
    );
  });

  test('is a fixed point: canonicalize(JSON.parse(canonicalize(x))) === canonicalize(x)', () => {
    fc.assert(
      fc.property(json, (x) => {
        const c = canonicalize(x);
        return canonicalize(JSON.parse(c)) === c;
      }),
      { numRuns: 2000 },
    );
  });

  test('canonicalBytes is the UTF-8 of canonicalize', () => {
    fc.assert(
      fc.property(json, (x) => canonicalBytes(x).equals(Buffer.from(canonicalize(x), 'utf8'))),
      { numRuns: 1000 },
    );
  });

  test('does not depend on the insertion order of keys', () => {
    const reversed = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(reversed);
      if (v === null || typeof v !== 'object') return v;
      // fromEntries, not assignment: `out["__proto__"] = x` would set the prototype, not a key.
      return Object.fromEntries(
        Object.keys(v)
          .reverse()
          .map((k) => [k, reversed((v as Record<string, unknown>)[k])]),
      );
    };
    fc.assert(
      fc.property(json, (x) => canonicalize(reversed(x)) === canonicalize(x)),
      { numRuns: 1000 },
    );
  });

  test('any string with a lone surrogate is refused', () => {
    const lone = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
    fc.assert(
      fc.property(fc.string(), lone, fc.string({ unit: 'binary-ascii' }), (a, s, b) => {
        assert.throws(() => canonicalize({ k: a.replace(/[\ud800-\udfff]/g, '') + s + b }), { code: 'invalid_json' });
      }),
    );
  });
});
