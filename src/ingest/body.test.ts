import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SteleError } from '../core/errors.js';
import { parseEventsBody } from './body.js';

const refusal = (text: string, kind: 'json' | 'ndjson'): SteleError => {
  try {
    parseEventsBody(Buffer.from(text), kind);
  } catch (e) {
    assert.ok(e instanceof SteleError);
    return e;
  }
  assert.fail('not refused');
};

test('where a body is wrong is detail: the event, the NDJSON line, the pointer within the event', () => {
  const inArray = refusal('[{"a":1},{"data":{"n":9007199254740993}}]', 'json');
  assert.equal(inArray.code, 'unsafe_integer');
  assert.match(inArray.message, /^event 1: \/data\/n is the integer 9007199254740993/);
  assert.deepEqual(inArray.detail, { pointer: '/data/n', batchIndex: 1 });

  const lone = refusal('{"data":{"n":9007199254740993}}', 'json');
  assert.deepEqual(lone.detail, { pointer: '/data/n' });

  const line = refusal('{"a":1}\n\n{"n":-9007199254740993}\n', 'ndjson');
  assert.match(line.message, /^line 3: \/n is the integer/);
  assert.deepEqual(line.detail, { line: 3, pointer: '/n' });

  const notJson = refusal('{"a":1}\n{oops\n', 'ndjson');
  assert.equal(notJson.code, 'invalid_json');
  assert.deepEqual(notJson.detail, { line: 2 });
});
