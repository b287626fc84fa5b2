import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Principal } from '../core/principal.js';
import { masterKeyPath } from '../keys/master.js';
import { MemoryBackend } from '../storage/memory/backend.js';
import { initDataDir } from './datadir.js';
import { openStele, openSteleOn } from './stele.js';

test('a directory made before data keys existed gets its master key on first open; the key store opens under it after', async (t) => {
  if (process.env.STELE_MASTER_KEY) return t.skip('the master key comes from the environment here');
  const dir = mkdtempSync(join(tmpdir(), 'stele-old-'));
  try {
    await initDataDir(dir, 'test.example/old');
    rmSync(masterKeyPath(dir)); // as before data keys: no master key, no key store
    let stele = await openStele(dir);
    const pepper = Buffer.from(stele.keys.subjectPepper);
    await stele.close();
    assert.ok(existsSync(masterKeyPath(dir)));
    stele = await openStele(dir);
    assert.deepEqual(stele.keys.subjectPepper, pepper);
    await stele.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('alert rules are told of each matching entry once: a retried batch passes on only what it appended anew', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stele-observe-'));
  try {
    await initDataDir(dir, 'test.example/observe');
    appendFileSync(
      join(dir, 'stele.policy.yaml'),
      "alerts:\n  notifiers: { n: { url: 'http://127.0.0.1:9/' } }\n  rules:\n    r: { query: 'action:test.observe', notify: [n] }\n",
    );
    const stele = await openSteleOn(MemoryBackend.named('observe'), dir);
    try {
      const seen: number[][] = [];
      stele.observe({ active: true, observe: (hits) => void seen.push(hits.map((h) => h.index)) });
      const by: Principal = { kind: 'apikey', id: 'ci', method: 'apikey', groups: [], roles: ['admin'] };
      const ev = (n: number) => ({
        id: `0190a1b2-c3d4-7e5f-8a9b-${String(n).padStart(12, '0')}`,
        actor: { id: 'ci', type: 'service' },
        action: 'test.observe',
        source: { kind: 'test' },
        outcome: 'success',
        data: { n },
      });
      const first = await stele.appendAs([ev(1), ev(2)], by);
      const again = await stele.appendAs([ev(1), ev(2), ev(3), ev(3)], by);
      assert.deepEqual(
        again.slice(0, 2).map((a) => a.index),
        first.map((a) => a.index),
      );
      assert.deepEqual(seen, [first.map((a) => a.index), [again[2]?.index]], 'each index once');
    } finally {
      await stele.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
