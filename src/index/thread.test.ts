import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SteleError } from '../core/errors.js';
import { Room } from './thread.js';

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
