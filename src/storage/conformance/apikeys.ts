/** What every driver's ApiKeyRecords must guarantee (src/auth/apikey-records.ts). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { ApiKeyRecord, ApiKeyRecords } from '../../auth/apikey-records.js';
import type { Driver } from './driver.js';

function apiKey(name: string, fields: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id: randomBytes(6).toString('hex'),
    name,
    roles: ['writer'],
    sha256: randomBytes(32).toString('hex'),
    created: new Date().toISOString(),
    created_by: 'stele init',
    ...fields,
  };
}

export function apiKeyRecordsConformance(name: string, d: Driver<ApiKeyRecords>): void {
  describe(`ApiKeyRecords conformance: ${name}`, () => {
    test('keys come back as added, in order; revoking one marks it and nothing else', async () => {
      const r = await d.open();
      assert.deepEqual(await r.all(), []);
      const a = apiKey('ci', { restrict: { sources: ['git'], actions: ['git.*'] } });
      const b = apiKey('collector', { roles: ['writer', 'reader'] });
      await r.add(a);
      await r.add(b);
      assert.deepEqual(await r.all(), [a, b]);
      const revoked = { at: '2026-02-01T00:00:00.000Z', by: 'apikey:admin', reason: 'leaked' };
      await r.revoke(a.id, revoked);
      assert.deepEqual(await r.all(), [{ ...a, revoked }, b]);
    });

    test('what it returns is a copy', async () => {
      const r = await d.open();
      const a = apiKey('ci');
      await r.add(a);
      const [got] = await r.all();
      got?.roles.push('admin');
      assert.deepEqual(await r.all(), [a]);
    });

    const reopen = d.reopen;
    if (reopen) {
      test('keys and revocations persist across a reopen', async () => {
        let r = await d.open();
        const a = apiKey('ci');
        const b = apiKey('collector');
        await r.add(a);
        await r.add(b);
        await r.revoke(b.id, { at: '2026-02-01T00:00:00.000Z', by: 'apikey:admin', reason: 'rotated' });
        const before = await r.all();
        r = await reopen(r);
        assert.deepEqual(await r.all(), before);
      });
    }
  });
}
