/** What every driver's HoldRecords must guarantee (src/keys/hold-records.ts). */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Hold, HoldRecords } from '../../keys/hold-records.js';
import { type Driver, kept } from './driver.js';

let n = 0;
function hold(fields: Partial<Hold> = {}): Hold {
  return {
    id: randomUUID(),
    reason: 'case 1',
    tier: null,
    actor: null,
    subject: null,
    subject_hash: null,
    since: null,
    until: null,
    created: new Date(Date.UTC(2026, 0, 1, 0, 0, ++n)).toISOString(),
    created_by: 'admin',
    released: null,
    released_by: null,
    release_reason: null,
    ...fields,
  };
}

export function holdRecordsConformance(name: string, d: Driver<HoldRecords>): void {
  describe(`HoldRecords conformance: ${name}`, () => {
    test('holds come back as stored, oldest first; released ones only when asked', async () => {
      const r = await d.open();
      const a = hold({ tier: 'compliance', since: 1_000_000, until: 2_000_000 });
      const b = hold({ actor: 'erin', subject: 'erin@example.com', subject_hash: 'h-erin' });
      await r.insert(b.created < a.created ? b : a);
      await r.insert(b.created < a.created ? a : b);
      assert.deepEqual(await r.get(a.id), a);
      assert.equal(await r.get('nope'), undefined);
      assert.deepEqual(await r.list(false), [a, b]);
      assert.equal(await r.release(a.id, '2026-02-01T00:00:00.000Z', 'admin', 'closed'), true);
      const released = { ...a, released: '2026-02-01T00:00:00.000Z', released_by: 'admin', release_reason: 'closed' };
      assert.deepEqual(await r.get(a.id), released);
      assert.deepEqual(await r.list(false), [b]);
      assert.deepEqual(await r.list(true), [released, b]);
      await r.close();
    });

    test('a hold is released once; an unknown one not at all', async () => {
      const r = await d.open();
      const a = hold({ tier: 'operational' });
      await r.insert(a);
      assert.equal(await r.release(a.id, '2026-02-01T00:00:00.000Z', 'admin', 'closed'), true);
      assert.equal(await r.release(a.id, '2026-03-01T00:00:00.000Z', 'other', 'again'), false);
      assert.equal((await r.get(a.id))?.released_by, 'admin');
      assert.equal(await r.release('nope', '2026-02-01T00:00:00.000Z', 'admin', 'x'), false);
      await r.close();
    });

    test('forgetReleased changes released holds only, and leaves nothing of the name in storage', async () => {
      const r = await d.open();
      const subject = `zoe-${randomUUID()}@example.com`;
      const active = hold({ subject, subject_hash: 'h-zoe' });
      const done = hold({ subject, subject_hash: 'h-zoe', actor: subject });
      await r.insert(active);
      await r.insert(done);
      await r.release(done.id, '2026-02-01T00:00:00.000Z', 'admin', 'closed');
      if (d.stored) assert.ok(kept(d, subject), 'the search below can find the name (not vacuous)');
      assert.ok((await r.forgetReleased(subject, '#h:zoe')) > 0);
      const after = await r.get(done.id);
      assert.equal(after?.subject, null);
      assert.equal(after?.actor, '#h:zoe');
      assert.equal(after?.subject_hash, 'h-zoe');
      assert.deepEqual(await r.get(active.id), active, 'an active hold keeps the name (it is still needed)');
      assert.equal(await r.forgetReleased('nobody', '#h:x'), 0);
      await r.release(active.id, '2026-02-02T00:00:00.000Z', 'admin', 'closed');
      await r.forgetReleased(subject, '#h:zoe');
      assert.equal(kept(d, subject), false, 'the name is gone from storage');
      await r.close();
    });

    const reopen = d.reopen;
    if (reopen) {
      test('holds persist across a reopen', async () => {
        let r = await d.open();
        const a = hold({ tier: 'compliance' });
        const b = hold({ actor: 'erin' });
        await r.insert(a);
        await r.insert(b);
        await r.release(b.id, '2026-02-01T00:00:00.000Z', 'admin', 'closed');
        const before = await r.list(true);
        r = await reopen(r);
        assert.deepEqual(await r.list(true), before);
        await r.close();
      });
    }
  });
}
