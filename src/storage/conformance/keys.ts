/**
 * What every driver's KeyRecords must guarantee (src/keys/key-records.ts). Registers node:test
 * tests; a driver's test file calls it with a way to open its records (state.conformance.test.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { KeyRecord, KeyRecords } from '../../keys/key-records.js';
import { type Driver, kept } from './driver.js';

export interface KeyDriver extends Driver<KeyRecords> {
  /** A read-only KeyRecords over the same store as `r` (what another thread opens). */
  reader?(r: KeyRecords): Promise<KeyRecords> | KeyRecords;
}

let n = 0;
/** A fresh active key record of a slot. */
export function keyRecord(tier: string, day: string, subject: string | null, master = 'm1'): KeyRecord {
  return {
    id: `k${++n}-${randomBytes(4).toString('hex')}`,
    tier,
    day,
    subject,
    wrapped: randomBytes(60),
    master,
    created: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    state: 'active',
    destroyed: null,
    reason: null,
  };
}

export function keyRecordsConformance(name: string, d: KeyDriver): void {
  describe(`KeyRecords conformance: ${name}`, () => {
    test('the pepper: none at first, then the one set last', async () => {
      const r = await d.open();
      assert.equal(await r.pepper(), undefined);
      const p = { wrapped: randomBytes(60), master: 'm1' };
      await r.setPepper(p);
      assert.deepEqual(await r.pepper(), p);
      const q = { wrapped: randomBytes(60), master: 'm2' };
      await r.setPepper(q);
      assert.deepEqual(await r.pepper(), q);
      await r.close();
    });

    test('inserted keys come back by id and by slot, in the order asked; unknown ones are undefined', async () => {
      const r = await d.open();
      const a = keyRecord('operational', '2026-01-01', null);
      const b = keyRecord('compliance', '2026-01-01', 'h-erin');
      await r.insert([a, b]);
      assert.deepEqual(await r.get([b.id, 'nope', a.id]), [b, undefined, a]);
      assert.deepEqual(
        await r.activeSlots([
          { tier: 'compliance', day: '2026-01-01', subject: 'h-erin' },
          { tier: 'compliance', day: '2026-01-01', subject: null },
          { tier: 'operational', day: '2026-01-01', subject: null },
        ]),
        [b, undefined, a],
      );
      await r.close();
    });

    test('one active key a slot; a batch that breaks it is refused whole', async () => {
      const r = await d.open();
      const a = keyRecord('operational', '2026-01-02', 's');
      await r.insert([a]);
      const fresh = keyRecord('operational', '2026-01-03', 's');
      await assert.rejects(r.insert([fresh, keyRecord('operational', '2026-01-02', 's')]));
      assert.deepEqual(await r.get([fresh.id]), [undefined], 'nothing of the refused batch is stored');
      await r.close();
    });

    test('destroy is final: the wrapped key goes, a tombstone stays, the slot is free again', async () => {
      const r = await d.open();
      const a = keyRecord('compliance', '2026-01-04', 'h-erin');
      const b = keyRecord('compliance', '2026-01-04', null);
      await r.insert([a, b]);
      if (d.stored) assert.ok(kept(d, a.wrapped as Buffer), 'the search below can find the key (not vacuous)');
      const at = '2026-02-01T00:00:00.000Z';
      assert.equal(await r.destroy([a.id, 'nope'], 'erased', 'ticket 7', at), 1);
      const [t] = await r.get([a.id]);
      assert.deepEqual(t, { ...a, wrapped: null, master: null, state: 'erased', destroyed: at, reason: 'ticket 7' });
      assert.equal(kept(d, a.wrapped as Buffer), false, 'the wrapped key is gone from storage');
      assert.equal(await r.destroy([a.id], 'expired', 'again', '2026-03-01T00:00:00.000Z'), 0);
      assert.deepEqual(await r.get([a.id]), [t], 'a tombstone never changes');
      assert.deepEqual(await r.get([b.id]), [b], 'other keys stay');
      assert.deepEqual(await r.activeSlots([{ tier: 'compliance', day: '2026-01-04', subject: 'h-erin' }]), [undefined]);
      const again = keyRecord('compliance', '2026-01-04', 'h-erin');
      await r.insert([again]);
      assert.deepEqual(await r.activeSlots([{ tier: 'compliance', day: '2026-01-04', subject: 'h-erin' }]), [again]);
      await r.close();
    });

    test('select filters by state, tier, day, days before, subject; ordered by day, tier, creation', async () => {
      const r = await d.open();
      const k = [
        keyRecord('operational', '2026-01-06', null),
        keyRecord('compliance', '2026-01-05', 'h'),
        keyRecord('operational', '2026-01-05', null),
        keyRecord('operational', '2026-01-05', 'h'),
      ];
      await r.insert(k);
      await r.destroy([k[2]?.id as string], 'expired', 'retention', '2026-02-01T00:00:00.000Z');
      const ids = async (f: Parameters<KeyRecords['select']>[0]) => (await r.select(f)).map((x) => x.id);
      const [k0, k1, k2, k3] = k.map((x) => x.id) as [string, string, string, string];
      assert.deepEqual(await ids({}), [k1, k2, k3, k0]);
      assert.deepEqual(await ids({ state: 'active', tier: 'operational', beforeDay: '2026-01-06' }), [k3]);
      assert.deepEqual(await ids({ state: 'expired', tier: 'operational', day: '2026-01-05' }), [k2]);
      assert.deepEqual(await ids({ state: 'active', subject: 'h' }), [k1, k3]);
      const [info] = await r.select({ state: 'expired' });
      assert.deepEqual(Object.keys(info ?? {}).sort(), [
        'created',
        'day',
        'destroyed',
        'id',
        'reason',
        'state',
        'subject',
        'tier',
      ]);
      await r.close();
    });

    test('rewrap replaces every active key and the pepper at once; mastersInUse follows', async () => {
      const r = await d.open();
      await r.setPepper({ wrapped: randomBytes(60), master: 'm1' });
      const a = keyRecord('operational', '2026-01-07', null, 'm1');
      const b = keyRecord('operational', '2026-01-08', null, 'm1');
      await r.insert([a, b]);
      await r.destroy([b.id], 'expired', 'retention', '2026-02-01T00:00:00.000Z');
      assert.deepEqual(await r.mastersInUse(), ['m1']);
      assert.deepEqual(
        (await r.active()).map((x) => x.id),
        [a.id],
      );
      const wrapped = randomBytes(60);
      const pepper = { wrapped: randomBytes(60), master: 'm2' };
      await r.rewrap([{ id: a.id, wrapped, master: 'm2' }], pepper);
      assert.deepEqual(await r.get([a.id]), [{ ...a, wrapped, master: 'm2' }]);
      assert.deepEqual(await r.pepper(), pepper);
      assert.deepEqual(await r.mastersInUse(), ['m2']);
      assert.equal(kept(d, a.wrapped as Buffer), false, 'the old wrapping is gone from storage');
      await r.close();
    });

    test('what it returns is a copy', async () => {
      const r = await d.open();
      const a = keyRecord('operational', '2026-01-09', null);
      await r.insert([a]);
      const [got] = await r.get([a.id]);
      got?.wrapped?.fill(0);
      assert.deepEqual(await r.get([a.id]), [a]);
      await r.close();
    });

    const reader = d.reader;
    if (reader) {
      test('a read-only view sees what is written and refuses to write', async () => {
        const r = await d.open();
        await r.setPepper({ wrapped: randomBytes(60), master: 'm1' });
        const ro = await reader(r);
        assert.equal(ro.readonly, true);
        assert.equal(r.readonly, false);
        const a = keyRecord('operational', '2026-01-10', null);
        await r.insert([a]);
        assert.deepEqual(await ro.get([a.id]), [a]);
        await assert.rejects(async () => ro.insert([keyRecord('operational', '2026-01-11', null)]));
        await assert.rejects(async () => ro.destroy([a.id], 'erased', 'x', '2026-02-01T00:00:00.000Z'));
        assert.deepEqual(await r.get([a.id]), [a]);
        await ro.close();
        await r.close();
      });
    }

    const reopen = d.reopen;
    if (reopen) {
      test('everything persists across a reopen', async () => {
        let r = await d.open();
        const p = { wrapped: randomBytes(60), master: 'm1' };
        await r.setPepper(p);
        const a = keyRecord('operational', '2026-01-12', null);
        const b = keyRecord('operational', '2026-01-13', 'h');
        await r.insert([a, b]);
        await r.destroy([b.id], 'erased', 'ticket 8', '2026-02-01T00:00:00.000Z');
        const before = await r.select({});
        r = await reopen(r);
        assert.deepEqual(await r.pepper(), p);
        assert.deepEqual(await r.get([a.id]), [a]);
        assert.deepEqual(await r.select({}), before);
        await r.close();
      });
    }
  });
}
