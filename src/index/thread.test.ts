import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { SteleError } from '../core/errors.js';
import type { ThreadHandle } from '../core/thread.js';
import { IndexThread, LEAF_WINDOW, MAX_BACKLOG, MAX_SUMMARIES } from './thread.js';

/** A stand-in for the index thread: answers `upto` with 0 and sends whatever the test posts. */
function fakeThread() {
  const port = new EventEmitter();
  const posted: { type: string; first?: number; size?: number }[] = [];
  const handle = {
    postMessage(m: { type: string; seq?: number }) {
      posted.push(m);
      if (m.type === 'upto') setImmediate(() => port.emit('message', { type: 'reply', seq: m.seq, ok: true, value: 0 }));
    },
    on: (e: string, l: (x: unknown) => void) => port.on(e, l),
    off: (e: string, l: (x: unknown) => void) => port.off(e, l),
    terminate: async () => 0,
  };
  return { handle, posted, indexed: (upto: number) => port.emit('message', { type: 'indexed', upto }) };
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

test('add never waits; far behind, leaves stay in the log (tail), and past MAX_BACKLOG client appends get 503 with Retry-After', async () => {
  const fake = fakeThread();
  const index = await IndexThread.start(fake.handle as unknown as ThreadHandle);
  const leaf = Buffer.from('leaf');
  index.add(0, [leaf, leaf], 0);
  assert.equal(fake.posted.at(-1)?.type, 'add', 'a small backlog: the leaves go with the append');
  index.admit(); // far below the bound: nothing refused
  index.add(2, Array(LEAF_WINDOW).fill(leaf), 0);
  assert.deepEqual(
    fake.posted.at(-1),
    { type: 'tail', size: LEAF_WINDOW + 2, published: 0 },
    'past the window: only where the log is',
  );
  assert.equal(index.backlog, LEAF_WINDOW + 2);
  index.add(LEAF_WINDOW + 2, Array(MAX_BACKLOG).fill(leaf), 0); // one add of MAX_BACKLOG leaves: the same array, cheap
  assert.throws(
    () => index.admit(),
    (err: SteleError) => {
      assert.equal(err.status, 503);
      assert.equal(err.code, 'overloaded');
      assert.ok(Number(err.detail?.retryAfter) >= 1 && Number(err.detail?.retryAfter) <= 60);
      return true;
    },
  );
  fake.indexed(LEAF_WINDOW + 2 + MAX_BACKLOG);
  index.admit(); // caught up: admitted again
  assert.equal(index.backlog, 0);
});

test('summaries are counted a few at a time: past MAX_SUMMARIES one is refused with 503 and Retry-After', async () => {
  const fake = fakeThread();
  const index = await IndexThread.start(fake.handle as unknown as ThreadHandle);
  const req = { q: '', nowMs: Date.now(), buckets: 10, top: 5 };
  for (let k = 0; k < MAX_SUMMARIES; k++) void index.summarize(req, 0);
  assert.throws(
    () => index.summarize(req, 0),
    (err: SteleError) => {
      assert.equal(err.status, 503);
      assert.equal(err.code, 'overloaded');
      assert.equal(err.detail?.retryAfter, 1);
      return true;
    },
  );
  assert.equal(fake.posted.filter((m) => m.type === 'summarize').length, MAX_SUMMARIES);
});
