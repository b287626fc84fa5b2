/** A whole Stele on the in-memory driver: the seam carries every store, not just the log. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { initDataDir } from '../../app/datadir.js';
import { eraseSubject } from '../../app/forget.js';
import { SERVER } from '../../app/self-event.js';
import { openSteleOn } from '../../app/stele.js';
import { verifyLog } from '../../tlog/verify.js';
import { MemoryBackend } from './backend.js';

// The data directory holds only the signing key, the master key, the policy and what init wrote: every store is in memory.
const dir = mkdtempSync(join(tmpdir(), 'stele-memory-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const event = (actor: string, n: number) => ({
  actor: { id: actor, type: 'human' },
  subject: actor,
  action: 'memory.test',
  source: { kind: 'test' },
  outcome: 'success',
  data: { n, note: `entry number ${n}` },
});

test('a whole Stele runs on the memory backend: appends, search, erasure, verification, and a reopen that keeps it all', async () => {
  await initDataDir(dir, 'memory.test/stele');
  const backend = MemoryBackend.named('stele-e2e');
  let s = await openSteleOn(backend, dir, { checkpointIntervalMs: 5 });
  const acked = [];
  for (let n = 0; n < 20; n++)
    acked.push(...(await s.append([event(n % 2 ? 'bob@example.com' : 'alice@example.com', n)], SERVER)));
  await s.log.waitForCheckpoint(s.log.size, 30_000);
  const published = s.log.checkpoint.size;

  const search = (q: string) => s.index.search({ q, limit: 100, order: 'asc', nowMs: Date.now(), count: true }, published);
  const bob = await search('actor:bob@example.com');
  assert.equal(bob.total, 10);
  assert.deepEqual(
    bob.hits.map((h) => h.index),
    acked.filter((_, n) => n % 2).map((a) => a.index),
  );
  assert.equal((await search('"entry number 7"')).total, 1);

  const erased = await s.exclusive(() => eraseSubject(s.forget, 'bob@example.com', 'test erasure', SERVER));
  assert.equal(erased.events, 10);
  const after = await search('actor:bob@example.com');
  assert.equal(after.total, 0, 'an erased subject is not found');
  assert.equal((await search('memory')).total, 10, "alice's entries stay readable");
  await s.close();

  // Nothing of the stores went to the data directory (initDataDir wrote its admin key there before).
  for (const store of ['log', 'wal', 'state', 'index', 'keys/keystore.db']) {
    assert.ok(!existsSync(join(dir, store)), `${store} is not in the data directory`);
  }

  // Reopened on the same backend (a restart of this process's stores): the log verifies and the index is whole.
  s = await openSteleOn(backend, dir, { checkpointIntervalMs: 5 });
  try {
    const v = await verifyLog(backend.tiles(), s.verifier);
    assert.ok(v.checkpoint.size >= 21, `verified ${v.checkpoint.size} entries`);
    assert.equal(
      (await s.index.search({ q: 'memory', limit: 100, order: 'asc', nowMs: Date.now(), count: true }, s.log.checkpoint.size))
        .total,
      10,
    );
    assert.equal(
      (
        await s.index.search(
          { q: 'actor:bob@example.com', limit: 1, order: 'asc', nowMs: Date.now(), count: true },
          s.log.checkpoint.size,
        )
      ).total,
      0,
    );
  } finally {
    await s.close();
    MemoryBackend.drop('stele-e2e');
  }
});
