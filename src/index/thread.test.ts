import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { SteleError } from '../core/errors.js';
import type { ThreadHandle } from '../core/thread.js';
import { IndexThread, Room } from './thread.js';

test('Room: no wait under the limit; waiters released once under it; a bounded wait is refused with 503', async () => {
  const room = new Room(10);
  assert.equal(room.wait(9), undefined);
  const unbounded = room.wait(10) as Promise<void>;
  const bounded = room.wait(12, 60_000) as Promise<void>;
  room.update(10); // still at the limit: nobody goes
  let released = 0;
  void unbounded.then(() => released++);
  void bounded.then(() => released++);
  await new Promise((r) => setImmediate(r));
  assert.equal(released, 0);
  room.update(9);
  await Promise.all([unbounded, bounded]);
  const refused = room.wait(10, 20) as Promise<void>;
  await assert.rejects(refused, (err: SteleError) => {
    assert.equal(err.status, 503);
    assert.equal(err.code, 'overloaded');
    assert.equal(err.detail?.retryAfter, 1);
    return true;
  });
  room.update(0); // a late release does not touch the refused waiter
});

/** A stand-in for the index thread: answers `upto` with 0 and sends whatever the test posts. */
function fakeThread() {
  const port = new EventEmitter();
  const handle = {
    postMessage(m: { type: string; seq?: number }) {
      if (m.type === 'upto') setImmediate(() => port.emit('message', { type: 'reply', seq: m.seq, ok: true, value: 0 }));
    },
    on: (e: string, l: (x: unknown) => void) => port.on(e, l),
    off: (e: string, l: (x: unknown) => void) => port.off(e, l),
    terminate: async () => 0,
  };
  return { handle, indexed: (upto: number) => port.emit('message', { type: 'indexed', upto }) };
}

test('whenIndexed: resolves once the index reaches the entry; past its bound, 503 index_behind with Retry-After', async () => {
  const fake = fakeThread();
  const index = await IndexThread.start(fake.handle as unknown as ThreadHandle);
  assert.equal(index.indexedThrough, 0);
  await assert.rejects(index.whenIndexed(5, 20), (err: SteleError) => {
    assert.equal(err.code, 'index_behind');
    assert.equal(err.status, 503);
    assert.equal(err.detail?.retryAfter, 1);
    assert.equal(err.detail?.indexedThrough, 0);
    return true;
  });
  const waiting = index.whenIndexed(3, 60_000);
  fake.indexed(2);
  let done = false;
  void waiting.then(() => {
    done = true;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'not before entry 2 is indexed');
  fake.indexed(3);
  await waiting;
  assert.equal(index.indexedThrough, 3);
  await index.whenIndexed(1, 0); // already there: no wait
});
