/**
 * The query store off the acknowledgement path (issue 12): appends never wait for it below its
 * bound, the bound answers 503, and a search while it catches up shows exactly what a brute-force
 * scan of the acknowledged events shows below the answer's indexed_through. The index thread is
 * the real one on the memory backend; only the store's inserts are held back by a gate.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { parseQuery } from '../index/query.js';
import type { QueryStore } from '../index/query-store.js';
import { LEAF_WINDOW } from '../index/thread.js';
import { NOTE_MEMORY } from '../index/worker.js';
import { subjectHashes } from '../keys/subject.js';
import type { Backend, ThreadData, ThreadKind } from '../storage/backend.js';
import { FsBackend } from '../storage/fs/backend.js';
import { MemoryBackend } from '../storage/memory/backend.js';
import { spawnInProcess } from '../storage/threads/in-process.js';
import { initDataDir } from './datadir.js';
import { searchEvents } from './reading.js';
import { SERVER } from './self-event.js';
import { openSteleOn } from './stele.js';

const dir = mkdtempSync(join(tmpdir(), 'stele-index-lag-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Holds the query store's inserts until opened; once open, each insert takes `delayMs` (a slow disk). */
class Gate {
  private open = false;
  private waiters: (() => void)[] = [];
  delayMs = 0;
  async pass(): Promise<void> {
    if (!this.open) await new Promise<void>((r) => this.waiters.push(r));
    if (this.delayMs) await sleep(this.delayMs);
  }
  release(delayMs: number): void {
    this.delayMs = delayMs;
    this.open = true;
    for (const w of this.waiters.splice(0)) w();
  }
}

/**
 * A backend (the memory one by default) with a gate before every query-store insert, its threads
 * run in process; `opened` collects its query stores.
 */
function gatedBackend(name: string | Backend, gate: Gate, opened: QueryStore[] = []): Backend {
  const inner = typeof name === 'string' ? MemoryBackend.named(name) : name;
  const backend: Backend = Object.create(inner);
  backend.queryStore = (): QueryStore => {
    const store = inner.queryStore();
    opened.push(store);
    return new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== 'insert') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: Parameters<QueryStore['insert']>) => {
          await gate.pass();
          return target.insert(...args);
        };
      },
    });
  };
  backend.spawn = <K extends ThreadKind>(kind: K, data: ThreadData[K]) => spawnInProcess(backend, kind, data);
  return backend;
}

const client: Principal = { kind: 'apikey', id: 'ci', method: 'apikey', groups: [], roles: ['admin'] };
const ACTORS = ['alice@example.com', 'bob@example.com', 'carol@example.com'];
const event = (n: number) => ({
  actor: { id: ACTORS[n % 3] as string, type: 'human' },
  action: n % 50 === 0 ? 'deploy.start' : 'config.change',
  source: { kind: 'test' },
  outcome: 'success',
  data: { n },
});

test('appends never wait for a stalled index below its bound; past it client appends get 503; a search while it catches up equals a brute-force scan below indexed_through', async () => {
  await initDataDir(dir, 'lag.test/stele');
  const gate = new Gate();
  const BOUND = LEAF_WINDOW + 20_000;
  const s = await openSteleOn(gatedBackend('index-lag', gate), dir, { checkpointIntervalMs: 20, indexBacklog: BOUND });
  try {
    // The index stores nothing while the gate is shut: every append still returns, durable.
    const acked: { index: number; n: number }[] = [];
    let n = 0;
    while (s.index.backlog < BOUND) {
      const batch = Array.from({ length: Math.min(1000, BOUND - s.index.backlog) }, (_, k) => event(n + k));
      const out = await s.appendAs(batch, client);
      for (const [k, a] of out.entries()) acked.push({ index: a.index, n: n + k });
      n += batch.length;
    }
    assert.equal(s.index.indexedThrough, 0, 'nothing was indexed: the appends did not wait for it');
    assert.equal(s.index.backlog, s.log.size);

    // At the bound: a client append is refused with nothing appended; the server's own events still go.
    const size = s.log.size;
    await assert.rejects(s.appendAs([event(n)], client), (err: SteleError) => {
      assert.equal(err.status, 503);
      assert.equal(err.code, 'overloaded');
      assert.ok(Number(err.detail?.retryAfter) >= 1);
      return true;
    });
    assert.equal(s.log.size, size, 'the refused append left nothing');
    await s.append([{ ...event(0), actor: { id: 'stele-test', type: 'service' }, action: 'test.note' }], SERVER);
    const last = s.log.size;

    // Read your writes, bounded: the last acknowledged entry is not searchable yet.
    await assert.rejects(s.index.whenIndexed(last, 50), (err: SteleError) => err.code === 'index_behind' && err.status === 503);

    // Catching up (slowly: each 5,000-entry transaction waits 40 ms), every answer is exact below indexed_through.
    gate.release(40);
    const reference = (actor: string, below: number) =>
      acked.filter((a) => a.index < below && a.n % 50 === 0 && a.n % 3 === ACTORS.indexOf(actor));
    let checked = 0;
    let partial = 0;
    while (s.index.indexedThrough < last) {
      const actor = ACTORS[checked % 3] as string;
      const page = await searchEvents(s, client, {
        q: `actor:${actor} action:deploy.start`,
        order: 'asc',
        limit: 1000,
        count: true,
      });
      const want = reference(actor, page.indexedThrough);
      assert.deepEqual(
        page.hits.map((h) => h.index),
        want.map((a) => a.index),
        `actor:${actor} action:deploy.start at indexed_through ${page.indexedThrough}`,
      );
      assert.equal(page.total, want.length);
      if (page.indexedThrough < last) partial++;
      checked++;
      await sleep(10);
    }
    assert.ok(partial > 0, 'some searches ran while the index was catching up');
    await s.index.whenIndexed(last, 120_000);
    const all = await searchEvents(s, client, { q: 'action:deploy.start', order: 'asc', limit: 1000, count: true });
    const deploys = acked.filter((a) => a.n % 50 === 0).map((a) => a.index);
    assert.equal(all.total, deploys.length);
    assert.deepEqual(
      all.hits.map((h) => h.index),
      deploys.slice(0, 1000),
    );
  } finally {
    gate.release(0);
    await s.close();
    MemoryBackend.drop('index-lag');
  }
});

test('an entry handed to the index with its note, whose data key is destroyed before it is indexed, becomes a gap: nothing it said reaches the store', async () => {
  const gate = new Gate();
  const ldir = mkdtempSync(join(tmpdir(), 'stele-index-note-'));
  await initDataDir(ldir, 'note.test/stele');
  const stores: QueryStore[] = [];
  const s = await openSteleOn(gatedBackend('index-note', gate, stores), ldir, { checkpointIntervalMs: 20 });
  try {
    // A first batch holds the index thread at the gate; the subject's events come after it, so
    // the thread builds their rows only after the key is gone.
    for (let n = 0; n < 11_000; n += 1000)
      await s.appendAs(
        Array.from({ length: 1000 }, (_, k) => event(n + k)),
        client,
      );
    const about = Array.from({ length: 5 }, (_, k) => ({
      ...event(k),
      subject: 'erin@example.com',
      data: { note: 'Zanzibar42' },
    }));
    const acked = await s.appendAs(about, client);
    const [hash] = subjectHashes(s.keys.subjectPepper, 'erin@example.com') as [string];
    const ids = (await s.keys.activeForSubject(hash)).map((k) => k.id);
    assert.equal(ids.length, 1);
    await s.keys.destroy(ids, 'erased', 'test');
    const deleting = s.index.deleteKeys(ids);
    // Its message is queued behind the held batch, ahead of the batch holding the subject's events.
    await sleep(300);
    gate.release(0);
    await deleting;
    await s.index.whenIndexed(s.log.size, 120_000);
    // In the store itself, not only through the API (which also reopens each hit's leaf).
    for (const q of ['Zanzibar42', 'subject:erin@example.com']) {
      const counts = await Promise.all(stores.map((st) => st.count({ root: parseQuery(q), nowMs: Date.now() })));
      assert.deepEqual(
        counts.map((c) => c.entries),
        stores.map(() => 0),
        `${q}: no row of the erased events is in the query store`,
      );
    }
    const newest = await searchEvents(s, client, { q: '', order: 'desc', limit: 50 });
    const theirs = new Set(acked.map((a) => a.index));
    assert.deepEqual(
      newest.hits
        .filter((h) => theirs.has(h.index))
        .map((h) => [h.index, 'state' in h ? h.state : 'entry'])
        .sort(),
      acked.map((a) => [a.index, 'erased']).sort(),
    );
  } finally {
    gate.release(0);
    await s.close();
    MemoryBackend.drop('index-note');
    rmSync(ldir, { recursive: true, force: true });
  }
});

test('on the data directory, a backlog past what the index thread keeps in memory is indexed from notes queued on disk, and searches stay exact', async () => {
  const fdir = mkdtempSync(join(tmpdir(), 'stele-index-spill-'));
  await initDataDir(fdir, 'spill.test/stele');
  const gate = new Gate();
  const s = await openSteleOn(gatedBackend(new FsBackend(fdir), gate), fdir, { checkpointIntervalMs: 20 });
  try {
    const acked: { index: number; n: number }[] = [];
    const total = NOTE_MEMORY + LEAF_WINDOW + 20_000;
    for (let n = 0; n < total; n += 1000) {
      const out = await s.appendAs(
        Array.from({ length: 1000 }, (_, k) => event(n + k)),
        client,
      );
      for (const [k, a] of out.entries()) acked.push({ index: a.index, n: n + k });
    }
    await sleep(300); // the last notes reach the thread
    assert.ok(statSync(join(fdir, 'index', 'notes.spill')).size > 0, 'notes past the memory bound went to the spill file');
    gate.release(0);
    await s.index.whenIndexed(s.log.size, 300_000);
    assert.equal(statSync(join(fdir, 'index', 'notes.spill')).size, 0, 'read back and emptied');
    const page = await searchEvents(s, client, {
      q: 'action:deploy.start actor:bob@example.com',
      order: 'asc',
      limit: 10_000,
      count: true,
    });
    const want = acked.filter((a) => a.n % 50 === 0 && a.n % 3 === 1).map((a) => a.index);
    assert.equal(page.total, want.length);
    assert.deepEqual(
      page.hits.map((h) => h.index),
      want,
    );
  } finally {
    gate.release(0);
    await s.close();
    rmSync(fdir, { recursive: true, force: true });
  }
});
