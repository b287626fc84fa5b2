import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SteleError } from '../core/errors.js';
import type { IdIndex } from './id-index.js';
import { Sequencer } from './sequencer.js';
import type { LogStorage, SequencedEntry } from './storage.js';

/** Storage whose writes finish only when the test says, so a write can be held in flight. */
function heldStorage() {
  const written: SequencedEntry[] = [];
  const gates: (() => void)[] = [];
  const storage = {
    appendSequenced: (_first: number, entries: readonly SequencedEntry[]) =>
      new Promise<void>((resolve) => {
        gates.push(() => {
          written.push(...entries);
          resolve();
        });
      }),
  } as unknown as LogStorage;
  return { storage, written, gates };
}

function memoryIds(): IdIndex {
  const m = new Map<string, number>();
  return {
    lookup: (ids: readonly string[]) => new Map(ids.filter((id) => m.has(id)).map((id) => [id, m.get(id) as number])),
    add: (first: number, ids: readonly string[]) => {
      for (let i = 0; i < ids.length; i++) m.set(ids[i] as string, first + i);
    },
  } as unknown as IdIndex;
}

const entries = (prefix: string, n: number): SequencedEntry[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, leaf: Buffer.from(`${prefix}${i}`) }));

const tick = () => new Promise((r) => setImmediate(r));

test('a bounded append finding the queue full is refused with 503 and leaves no trace; others still queue', async () => {
  const { storage, written, gates } = heldStorage();
  const seq = new Sequencer(storage, memoryIds(), 0, () => {}, { maxQueuedEntries: 3 });
  // Nothing waiting: a bounded append larger than the bound still goes.
  const a = seq.append(entries('a', 5), { bounded: true });
  await tick();
  // 5 entries in flight: a bounded append is refused at once, with a retry hint.
  await assert.rejects(seq.append(entries('b', 1), { bounded: true }), (err: SteleError) => {
    assert.equal(err.status, 503);
    assert.equal(err.code, 'overloaded');
    assert.equal(err.detail?.retryAfter, 1);
    return true;
  });
  // The server's own appends are not bounded.
  const c = seq.append(entries('c', 2));
  gates.shift()?.();
  assert.deepEqual(await a, [0, 1, 2, 3, 4]);
  await tick();
  gates.shift()?.();
  assert.deepEqual(await c, [5, 6]);
  // The refused ids were never registered: they append now, as new entries.
  const b = seq.append(entries('b', 1), { bounded: true });
  await tick();
  gates.shift()?.();
  assert.deepEqual(await b, [7]);
  assert.deepEqual(
    written.map((e) => e.id),
    ['a0', 'a1', 'a2', 'a3', 'a4', 'c0', 'c1', 'b0'],
  );
});
