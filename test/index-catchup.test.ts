/**
 * The query store off the acknowledgement path (issue 12), end to end against `stele serve`:
 * appends are acknowledged at the disk's pace while the index follows, a SIGKILL with the index
 * behind loses nothing, and after the restart the index catches up in the background (the server
 * answers at once) until every acknowledged event is searchable.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, test } from 'node:test';
import { appendHttp, cleanup, getJson, initDir, requestJson, SteleServer, sleep } from './helpers/stele.js';

after(cleanup);

interface Page {
  hits: { index: number; event: { id: string } }[];
  total?: number;
  indexed_through: number;
}

/** A search with `after=`, retried on 503 index_behind after its Retry-After, for at most `ms`. */
async function searchAfter(url: string, token: string, q: string, after: number, ms: number): Promise<Page> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await requestJson(`${url}/v1/events?q=${encodeURIComponent(q)}&after=${after}&count=true&limit=1`, 'GET', token);
    if (r.status === 200) return r.body as unknown as Page;
    assert.equal(r.status, 503, r.text);
    assert.equal(r.body.code, 'index_behind');
    if (Date.now() > deadline) throw new Error(`the index did not reach ${after} in ${ms} ms: ${r.text}`);
    await sleep(1000 * Number(r.body.retryAfter ?? 1));
  }
}

test('killed under load with the index following, nothing is lost: after the restart the index catches up and finds every acknowledged event', async () => {
  const { dir, token } = await initDir('catchup.test/log');
  let server = await SteleServer.start(dir, { checkpointIntervalMs: 100 });
  const run = randomUUID().slice(0, 8);
  const acked = new Map<string, number>();
  // Two clients, 1000-event batches, as fast as the server takes them.
  const BATCHES = 30;
  const client = async (c: number) => {
    for (let b = c; b < BATCHES; b += 2) {
      const events = Array.from({ length: 1000 }, (_, k) => ({
        id: randomUUID(),
        actor: { id: `catchup-${run}@example.com`, type: 'human' },
        action: 'catchup.test',
        source: { kind: 'e2e' },
        outcome: 'success',
        data: { b, k, note: `batch ${b} event ${k}` },
      }));
      for (const a of await appendHttp(server.url, token, events)) acked.set(a.id, a.index);
    }
  };
  await Promise.all([client(0), client(1)]);
  const last = Math.max(...acked.values());
  // Killed the moment the last append is acknowledged (a search first would let the index catch up).
  await server.kill();

  server = await SteleServer.start(dir, { checkpointIntervalMs: 100 });
  try {
    const first = await getJson<Page>(
      `${server.url}/v1/events?q=${encodeURIComponent(`actor:catchup-${run}@example.com`)}&limit=1`,
      30_000,
      token,
    );
    assert.ok(first.indexed_through <= last + 1000, 'the restarted server answers at once, saying how far its index has got');
    const page = await searchAfter(server.url, token, `actor:catchup-${run}@example.com`, last, 180_000);
    assert.equal(page.total, acked.size, 'every acknowledged event is searchable');
    // And each is where it was acknowledged: a sample of ids, looked up by id.
    const sample = [...acked].filter((_, i) => i % 997 === 0);
    for (const [id, index] of sample) {
      const p = await getJson<Page>(`${server.url}/v1/events?q=${encodeURIComponent(`id:${id}`)}&limit=2`, 30_000, token);
      assert.deepEqual(
        p.hits.map((h) => [h.event.id, h.index]),
        [[id, index]],
      );
    }
  } finally {
    await server.stop();
  }
});

test('a search sent while the index works through a backlog under a steady stream of appends is answered while the stream goes on', async () => {
  const { dir, token } = await initDir('stream.test/log');
  const server = await SteleServer.start(dir, { checkpointIntervalMs: 100 });
  let streaming = true;
  const stop = Date.now() + 90_000;
  const client = async (c: number) => {
    for (let b = 0; streaming && Date.now() < stop; b++) {
      const events = Array.from({ length: 1000 }, (_, k) => ({
        actor: { id: 'stream@example.com', type: 'human' },
        action: 'stream.test',
        source: { kind: 'e2e' },
        outcome: 'success',
        data: { c, b, k },
      }));
      await appendHttp(server.url, token, events);
    }
  };
  // Four clients as fast as the server takes them: more than the index keeps up with here.
  const clients = [client(0), client(1), client(2), client(3)];
  try {
    await sleep(5000);
    // Liveness: the search is answered while the index thread works through a backlog and the log
    // keeps sending it a message per group commit. (Two starvations were found with a 60 s load and
    // fixed in src/index/worker.ts: a search's catch-up chasing a stream, and batches started inside
    // message delivery. This test does not reproduce them deterministically; src/index/worker.test.ts
    // pins each against the real index thread.)
    const page = await getJson<Page>(`${server.url}/v1/events?q=action:stream.test&limit=1`, 120_000, token);
    assert.ok(streaming && Date.now() < stop, 'answered while the appends were still streaming');
    assert.ok(page.indexed_through > 0);
  } finally {
    streaming = false;
    await Promise.all(clients);
    await server.stop();
  }
});
