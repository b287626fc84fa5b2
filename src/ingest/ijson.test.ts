import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SteleError } from '../core/errors.js';
import { parseEventsBody } from './body.js';
import { checkIntegers, findUnsafeInteger, mayHoldUnsafeInteger } from './ijson.js';

const find = (text: string) => findUnsafeInteger(text);

test('integers beyond ±(2^53−1) are found with their JSON pointer', () => {
  assert.deepEqual(find('{"data":{"n":9007199254740993}}'), { pointer: '/data/n', literal: '9007199254740993' });
  assert.deepEqual(find('[{"a":1},{"b":[0,1,-9007199254740992]}]'), { pointer: '/1/b/2', literal: '-9007199254740992' });
  assert.deepEqual(find('{"a/b":{"t~":[123456789012345678901234]}}'), {
    pointer: '/a~1b/t~0/0',
    literal: '123456789012345678901234',
  });
  assert.deepEqual(find('9007199254740992'), { pointer: '', literal: '9007199254740992' });
  // Keys after strings with escaped quotes and backslashes, empty containers, whitespace.
  assert.deepEqual(find('{ "x\\"y\\\\" : "9007199254740993", "e": {}, "f": [ ], "k\\\\": [ 1 , 18446744073709551615 ] }'), {
    pointer: '/k\\/1',
    literal: '18446744073709551615',
  });
});

test('safe integers, doubles, and digits inside strings pass', () => {
  for (const ok of [
    '{"n":9007199254740991,"m":-9007199254740991}',
    '{"f":12345678901234567890.5,"e":1e300,"g":9007199254740993e0,"h":0.30000000000000004}',
    '{"s":"9007199254740993","t":"1700000000000000000"}',
    '{"9007199254740993":1}',
    '[]',
    'true',
  ]) {
    assert.equal(find(ok), undefined, ok);
  }
  assert.equal(mayHoldUnsafeInteger('{"account":"123456789012","n":42}'), false);
});

test('a body with an unsafe integer is refused, naming the event and field; nothing is rounded', () => {
  const refuse = (body: string, kind: 'json' | 'ndjson', message: RegExp) =>
    assert.throws(
      () => parseEventsBody(Buffer.from(body), kind),
      (err: SteleError) =>
        err instanceof SteleError && err.status === 400 && err.code === 'unsafe_integer' && message.test(err.message),
    );
  refuse('{"data":{"n":9007199254740993}}', 'json', /^\/data\/n is the integer 9007199254740993, beyond/);
  refuse('[{"a":1},{"data":{"n":[9007199254740993]}}]', 'json', /^event 1: \/data\/n\/0 is the integer 9007199254740993/);
  refuse('{"a":1}\n\n{"data":{"big":-90071992547409930}}\n', 'ndjson', /^line 3: \/data\/big is the integer -90071992547409930/);
  assert.deepEqual(parseEventsBody(Buffer.from('{"data":{"n":9007199254740991,"s":"9007199254740993"}}'), 'json'), [
    { data: { n: 9007199254740991, s: '9007199254740993' } },
  ]);
  assert.throws(() => checkIntegers('{"items":[{"x":99999999999999999}]}', 'the request body: '), {
    message: /^the request body: \/items\/0\/x is the integer 99999999999999999/,
  });
});

test('the CLI refuses them in files before sending (a re-serialised event would arrive rounded)', async () => {
  const { parseEventsText } = await import('../cli/input.js');
  assert.throws(() => parseEventsText('{"data":{"n":9007199254740993}}', 'events.json'), {
    message: /^events\.json: \/data\/n is the integer 9007199254740993/,
  });
  assert.throws(() => parseEventsText('{"a":1}\n{"n":-9007199254740993}\n', 'events.ndjson'), {
    message: /^events\.ndjson, line 2: \/n is the integer/,
  });
});

test('the pre-scan finds every run of 16 digits wherever it starts, and nothing shorter', () => {
  for (let pad = 0; pad < 40; pad++) {
    for (const len of [15, 16, 17, 31]) {
      const text = `${'x'.repeat(pad)}${'7'.repeat(len)}${'y'.repeat(pad % 5)}`;
      assert.equal(mayHoldUnsafeInteger(text), len >= 16, `pad ${pad} len ${len}`);
      assert.equal(mayHoldUnsafeInteger(`1234 ${text} 99`), len >= 16, `pad ${pad} len ${len}, digits around`);
    }
  }
  assert.equal(mayHoldUnsafeInteger('1'.repeat(15) + 'a' + '2'.repeat(15)), false);
});
