import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { normalizeEvent } from '../event/normalize.js';
import { buildLeaf, parseMicros } from '../event/record.js';
import { KeyStore } from '../keys/keystore.js';
import { masterKeyId } from '../keys/master.js';
import { pack } from '../log/packed.js';
import { DEFAULT_POLICY } from '../policy/policy.js';
import { MemoryKeyRecords } from '../storage/memory/keys.js';
import { MemoryQueryStore } from '../storage/memory/query-store.js';
import { encodeBundle } from '../tlog/tile.js';
import { emptyTally } from './aggregate.js';
import type { QueryStore } from './query-store.js';
import { type FromIndex, type SearchResult, type SummaryResult, serveIndex, type ToIndex } from './worker.js';

const RECEIVED = parseMicros('2026-12-06T12:00:00.000001Z');

/** The clear (unsealed) leaf of a small event numbered `n`. */
const leaf = (n: number) =>
  buildLeaf(
    normalizeEvent(
      { actor: { id: 'a', type: 'human' }, action: 'x.y', source: { kind: 't' }, outcome: 'success', data: { n } },
      RECEIVED,
    ),
    { principal: 't', method: 'local' },
    RECEIVED,
  );

type Tiles = Parameters<typeof serveIndex>[1]['tiles'];
const NO_TILES: Tiles = { readTile: async () => null, readCheckpoint: async () => null };

/** An index thread on a port of its own, over `store`, with a fresh key store; `close` ends both. */
async function startIndex(store: QueryStore, tiles: Tiles = NO_TILES, coalesceMs?: number) {
  const master = Buffer.alloc(32, 9);
  const keys = await KeyStore.open(new MemoryKeyRecords(), [{ id: masterKeyId(master), key: master }]);
  const { port1, port2 } = new MessageChannel();
  serveIndex(port2, { store, keys, tiles }, DEFAULT_POLICY, false, coalesceMs);
  return {
    port: port1,
    close: async () => {
      port1.close();
      await keys.close();
    },
  };
}

/** A memory store that counts its insert calls (one a store transaction). */
function countingStore(): { store: QueryStore; inserts: () => number } {
  const inner = new MemoryQueryStore();
  let n = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== 'insert') return typeof value === 'function' ? value.bind(target) : value;
      return (...args: Parameters<QueryStore['insert']>) => {
        n++;
        return target.insert(...args);
      };
    },
  });
  return { store, inserts: () => n };
}

test("a search queued behind the log's messages is answered before the backlog they bring is indexed batch by batch", async () => {
  const { store, inserts } = countingStore();
  const { port: port1, close } = await startIndex(store);
  const replied = new Promise<number>((resolve) =>
    port1.on('message', (m: FromIndex) => {
      if (m.type === 'reply' && m.seq === 1) resolve(inserts());
    }),
  );
  // What the log sends during a burst of group commits: one message each; then a search.
  const MESSAGES = 20;
  for (let k = 0; k < MESSAGES; k++) {
    const msg: ToIndex = {
      type: 'add',
      first: k * 100,
      leaves: pack(Array.from({ length: 100 }, (_, j) => leaf(k * 100 + j))),
      published: 0,
    };
    port1.postMessage(msg);
  }
  port1.postMessage({
    type: 'search',
    seq: 1,
    published: 0,
    req: { q: '', limit: 1, order: 'desc', nowMs: Date.now() },
  } satisfies ToIndex);
  const before = await replied;
  // Batches started inside the delivery of each message would have run one per message first.
  assert.ok(before <= 2, `the search waited for ${before} batches`);
  await close();
});

test('a search catches up only with what the log had when it arrived, not with what arrives while it reads the tiles', async () => {
  const leaves = Array.from({ length: 5120 }, (_, n) => leaf(n));
  let thread: Awaited<ReturnType<typeof startIndex>> | undefined;
  let size = 2048;
  const tiles = {
    // Every bundle read yields, and meanwhile the log grows by a bundle (as under a steady stream).
    async readTile(level: number | 'entries', index: number, width: number) {
      await new Promise((r) => setImmediate(r));
      if (size < leaves.length) {
        size += 256;
        thread?.port.postMessage({ type: 'tail', size, published: size } satisfies ToIndex);
      }
      return level === 'entries' ? encodeBundle(leaves.slice(index * 256, index * 256 + width)) : null;
    },
    readCheckpoint: async () => null,
  };
  thread = await startIndex(new MemoryQueryStore(), tiles);
  const port1 = thread.port;
  const replied = new Promise<SearchResult>((resolve) =>
    port1.on('message', (m: FromIndex) => {
      if (m.type === 'reply' && m.seq === 1 && m.ok) resolve(m.value as SearchResult);
    }),
  );
  port1.postMessage({ type: 'tail', size, published: size } satisfies ToIndex);
  port1.postMessage({
    type: 'search',
    seq: 1,
    published: size,
    req: { q: '', limit: 1, order: 'desc', nowMs: Date.now() },
  } satisfies ToIndex);
  const r = await replied;
  assert.equal(r.indexed, 2048, 'it indexed the 2,048 entries the log had, then answered');
  await thread.close();
});

test('a summary runs in steps: a search sent after it is answered between its parts, and a cancelled one stops', async () => {
  const inner = new MemoryQueryStore();
  const order: string[] = [];
  const PARTS = 4;
  // The memory store's tally, handed over as PARTS parts (as a partitioned store's, a partition each).
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'search')
        return (...args: Parameters<QueryStore['search']>) => {
          order.push('search');
          return target.search(...args);
        };
      if (prop !== 'tally') return typeof value === 'function' ? value.bind(target) : value;
      return async function* (...args: Parameters<QueryStore['tally']>) {
        for await (const whole of target.tally(...args))
          for (let k = 0; k < PARTS; k++) {
            order.push('part');
            yield k === 0 ? whole : { ...whole, entries: 0, histogram: [], facets: emptyTally().facets };
          }
      };
    },
  });
  const { port: port1, close } = await startIndex(store);
  const replies = new Map<number, FromIndex>();
  const reply = (seq: number) =>
    new Promise<FromIndex>((resolve) => {
      const check = () => (replies.has(seq) ? resolve(replies.get(seq) as FromIndex) : setTimeout(check, 5));
      check();
    });
  port1.on('message', (m: FromIndex) => {
    if (m.type === 'reply') replies.set(m.seq, m);
  });
  port1.postMessage({ type: 'add', first: 0, leaves: pack([leaf(0), leaf(1), leaf(2)]), published: 0 } satisfies ToIndex);
  const req = { q: '', nowMs: Date.now(), buckets: 10, top: 5 };
  port1.postMessage({ type: 'summarize', seq: 1, published: 0, req } satisfies ToIndex);
  port1.postMessage({
    type: 'search',
    seq: 2,
    published: 0,
    req: { q: '', limit: 10, order: 'desc', nowMs: Date.now() },
  } satisfies ToIndex);
  const summary = await reply(1);
  assert.ok(summary.type === 'reply' && summary.ok, JSON.stringify(summary));
  assert.equal((summary.value as SummaryResult).entries, 3);
  assert.ok((await reply(2)).type === 'reply');
  assert.ok(order.indexOf('search') < order.lastIndexOf('part'), `the search waited for the whole summary: ${order.join(' ')}`);

  order.length = 0;
  port1.postMessage({ type: 'summarize', seq: 3, published: 0, req } satisfies ToIndex);
  port1.postMessage({ type: 'cancel', of: 3 } satisfies ToIndex);
  const cancelled = await reply(3);
  assert.ok(cancelled.type === 'reply' && !cancelled.ok);
  assert.equal(cancelled.error.code, 'abandoned');
  assert.ok(order.filter((o) => o === 'part').length < PARTS, order.join(' '));
  await close();
});

test('a trickle of small appends is indexed in one transaction, not one each; a read-your-writes wait does not wait for more', async () => {
  const { store, inserts } = countingStore();
  // A long coalescing window, so a slow machine's timers cannot split the trickle.
  const { port: port1, close } = await startIndex(store, NO_TILES, 3_000);
  const indexed = (upto: number) =>
    new Promise<number>((resolve) => {
      const on = (m: FromIndex) => {
        if (m.type === 'indexed' && m.upto >= upto) {
          port1.off('message', on);
          resolve(performance.now());
        }
      };
      port1.on('message', on);
    });
  const add = (first: number) =>
    port1.postMessage({ type: 'add', first, leaves: pack([leaf(first)]), published: 0 } satisfies ToIndex);
  // Five group commits of one entry, a few ms apart: one transaction once the window ends.
  const trickle = indexed(5);
  for (let k = 0; k < 5; k++) {
    add(k);
    await new Promise((r) => setTimeout(r, 5));
  }
  await trickle;
  assert.equal(inserts(), 1);
  // An entry someone waits for (IndexThread.whenIndexed sends hurry) is indexed at once.
  const asked = performance.now();
  const waited = indexed(6);
  add(5);
  port1.postMessage({ type: 'hurry', upto: 6 } satisfies ToIndex);
  assert.ok((await waited) - asked < 2_000, 'the wait did not sit out the coalescing window');
  assert.equal(inserts(), 2);
  await close();
});
