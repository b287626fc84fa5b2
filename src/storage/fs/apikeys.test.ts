import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FsBackend } from './backend.js';

test('a directory from before roles: tokens.json is read as keys of one role, and apikeys.json written on the first change', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stele-tokens-'));
  try {
    mkdirSync(join(dir, 'auth'));
    const sha256 = 'ab'.repeat(32);
    writeFileSync(
      join(dir, 'auth', 'tokens.json'),
      JSON.stringify([{ name: 'admin', role: 'admin', sha256, created: '2025-01-01T00:00:00.000Z' }]),
    );
    const records = new FsBackend(dir).apiKeys();
    const legacy = {
      id: sha256.slice(0, 12),
      name: 'admin',
      roles: ['admin'],
      sha256,
      created: '2025-01-01T00:00:00.000Z',
      created_by: 'stele init',
    };
    assert.deepEqual(await records.all(), [legacy]);
    const added = { ...legacy, id: 'c1', name: 'ci', sha256: 'cd'.repeat(32) };
    await records.add(added);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'auth', 'apikeys.json'), 'utf8')), [legacy, added]);
    assert.deepEqual(await new FsBackend(dir).apiKeys().all(), [legacy, added]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
