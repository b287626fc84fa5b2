import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import {
  asSteleError,
  batchIndexOf,
  ERROR_STATUS,
  eventAt,
  fromWire,
  inEvent,
  isErrorCode,
  relabel,
  SteleError,
  toWire,
} from './errors.js';

test("the status of an error is its code's, from the one table", () => {
  assert.equal(new SteleError('not_found', 'x').status, 404);
  assert.equal(new SteleError('overloaded', 'x').status, 503);
  for (const [code, status] of Object.entries(ERROR_STATUS)) {
    assert.ok(isErrorCode(code));
    assert.ok(status >= 400 && status < 600, code);
  }
  assert.equal(isErrorCode('toString'), false, 'not an inherited property');
  assert.equal(isErrorCode('nope'), false);
});

test('a cause is kept; a non-SteleError becomes internal with the cause', () => {
  const io = new Error('EIO: disk on fire');
  const e = asSteleError(io);
  assert.equal(e.code, 'internal');
  assert.equal(e.status, 500);
  assert.equal(e.cause, io);
  const same = new SteleError('bad_request', 'x');
  assert.equal(asSteleError(same), same);
});

test('a position is detail: eventAt, inEvent and relabel name the place for people and keep it as data', () => {
  const lone = new SteleError('invalid_event', '/actor/type must be one of …', eventAt(undefined, { pointer: '/actor/type' }));
  assert.equal(lone.message, '/actor/type must be one of …');
  assert.equal(batchIndexOf(lone), undefined);

  const third = new SteleError('invalid_event', '/actor/type must be one of …', eventAt(3, { pointer: '/actor/type' }));
  assert.equal(third.message, 'event 3: /actor/type must be one of …');
  assert.equal(third.problem, '/actor/type must be one of …');
  assert.deepEqual(third.detail, { pointer: '/actor/type', batchIndex: 3 });

  const item = relabel(third, 'items[3]');
  assert.equal(item.message, 'items[3]: /actor/type must be one of …');
  assert.deepEqual(item.detail, third.detail);
  assert.equal(item.code, 'invalid_event');

  const sealed = inEvent(new SteleError('too_large', 'event is 70000 bytes'), 2);
  assert.equal(sealed.message, 'event 2: event is 70000 bytes');
  assert.equal(batchIndexOf(sealed), 2);
  assert.equal(sealed.status, 413);
});

test('the wire form crosses a thread boundary and comes back the same error', () => {
  const { port1, port2 } = new MessageChannel();
  try {
    const e = new SteleError('forbidden', 'may not append', { ...eventAt(1, { action: 'append' }), cause: new Error('why') });
    port1.postMessage(toWire(e));
    const back = fromWire(receiveMessageOnPort(port2)?.message);
    assert.ok(back instanceof SteleError);
    assert.equal(back.code, 'forbidden');
    assert.equal(back.status, 403);
    assert.equal(back.message, 'event 1: may not append');
    assert.equal(back.problem, 'may not append');
    assert.deepEqual(back.detail, { action: 'append', batchIndex: 1 });
    assert.equal((back.cause as Error).message, 'why');

    port1.postMessage(toWire(new TypeError('x is undefined')));
    const bug = fromWire(receiveMessageOnPort(port2)?.message);
    assert.equal(bug.code, 'internal');
    assert.equal(bug.message, 'x is undefined');
  } finally {
    port1.close();
  }
});
