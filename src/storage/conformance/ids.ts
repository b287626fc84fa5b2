import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { DriverUnderTest } from './driver.js';

/** What every driver's IdIndex must do: find ids, keep digests, and keep what `flush` covered. */
export function idsConformance(d: DriverUnderTest): void {
  describe(`${d.name}: id index`, () => {
    test('ids and digests are found at their first index, across a reopen, up to the last flush', async () => {
      const b = await d.create();
      const ids = Array.from({ length: 6 }, () => randomUUID());
      const digest = Buffer.alloc(16, 7);
      const index = b.ids();
      assert.equal(index.upto(), 0);
      index.add(0, [{ id: ids[0] as string }, { id: ids[1] as string, digest }, { id: ids[2] as string }]);
      index.add(2, [{ id: ids[2] as string }, { id: ids[3] as string }]);
      assert.equal(index.upto(), 4, 'entries already covered are skipped');
      assert.throws(() => index.add(6, [{ id: ids[5] as string }]), /cannot add from 6/);
      assert.deepEqual(
        index.lookup([ids[3] as string, ids[1] as string, ids[5] as string]),
        new Map([
          [ids[3], 3],
          [ids[1], 1],
        ]),
      );
      assert.deepEqual(index.digestAt(1), digest);
      assert.equal(index.digestAt(0), null, 'an entry given no digest has none');
      await index.flush();
      index.add(4, [{ id: ids[4] as string }]);
      index.close();

      const again = d.reopen(b).ids();
      assert.equal(again.upto(), 4, 'what no flush covered is forgotten (the log replays it)');
      assert.deepEqual(again.lookup(ids), new Map(ids.slice(0, 4).map((id, i) => [id, i])));
      assert.deepEqual(again.digestAt(1), digest);
      again.add(4, [{ id: ids[4] as string }]);
      assert.equal(again.lookup([ids[4] as string]).get(ids[4] as string), 4);
      again.close();
    });
  });
}
