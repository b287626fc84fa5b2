import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { masterKeyPath } from '../keys/master.js';
import { initDataDir } from './datadir.js';
import { openStele } from './stele.js';

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
