import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { MemoryKeyRecords } from '../storage/memory/keys.js';
import type { KeyRecords } from './key-records.js';
import { KeyStore } from './keystore.js';
import { type MasterKey, masterKeyId } from './master.js';

const master = (): MasterKey => {
  const key = randomBytes(32);
  return { id: masterKeyId(key), key };
};

/** Records that count what is asked of them. */
function counted(r: KeyRecords): KeyRecords & { calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  return new Proxy(r, {
    get(t, p, recv) {
      if (p === 'calls') return calls;
      const v = Reflect.get(t, p, recv);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls[String(p)] = (calls[String(p)] ?? 0) + 1;
        return v.apply(t, args);
      };
    },
  }) as KeyRecords & { calls: Record<string, number> };
}

const slot = { tier: 'compliance', day: '2026-01-01', subject: null };

test('a slot key is made once, then served from the cache without a record; concurrent misses make one key', async () => {
  const records = counted(new MemoryKeyRecords());
  const keys = await KeyStore.open(records, [master()]);
  const [a, b] = await Promise.all([keys.slots([slot]), keys.slots([slot, slot])]);
  assert.equal(a[0]?.id, b[0]?.id);
  assert.equal(b[0]?.id, b[1]?.id);
  assert.equal((await keys.list()).length, 1);
  const before = { ...records.calls };
  await keys.slots([slot]);
  assert.deepEqual(records.calls, before, 'a cached slot reads no record');
});

test('lookups: the key, then from the cache; a destroyed key is forgotten and reads as its tombstone', async () => {
  const m = master();
  const records = new MemoryKeyRecords();
  const writer = await KeyStore.open(records, [m]);
  const [k] = await writer.slots([slot]);
  const reader = await KeyStore.open(records.reader(), [m], { readonly: true });
  assert.equal(reader.cached(k?.id as string), undefined);
  const l = await reader.lookup(k?.id as string);
  assert.equal(l?.state, 'active');
  assert.deepEqual(l?.state === 'active' && l.key, k?.key);
  assert.equal(reader.cached(k?.id as string), l);
  const told: string[][] = [];
  writer.onDestroyed((ids) => told.push(ids));
  assert.equal(await writer.destroy([k?.id as string], 'erased', 'ticket 9'), 1);
  assert.deepEqual(told, [[k?.id]]);
  assert.ok(writer.isDestroyed(k?.id as string));
  reader.forget([k?.id as string]);
  const gone = await reader.lookup(k?.id as string);
  assert.equal(gone?.state, 'erased');
  assert.equal(gone?.info.reason, 'ticket 9');
  const [next] = await writer.slots([slot]);
  assert.notEqual(next?.id, k?.id, 'the slot gets a new key');
  await assert.rejects(reader.slots([{ ...slot, day: '2026-01-02' }]), /read-only/);
  await assert.rejects(reader.destroy([next?.id as string], 'erased', 'x'), /read-only/);
});

test('rewrap: the keys and the pepper open under the new master key alone', async () => {
  const [m1, m2] = [master(), master()];
  const records = new MemoryKeyRecords();
  const keys = await KeyStore.open(records, [m1]);
  const [k] = await keys.slots([slot]);
  assert.equal(await keys.rewrap(m2), 1);
  assert.deepEqual(await keys.mastersInUse(), [m2.id]);
  const again = await KeyStore.open(records.reader(), [m2]);
  assert.deepEqual(again.subjectPepper, keys.subjectPepper);
  const l = await again.lookup(k?.id as string);
  assert.deepEqual(l?.state === 'active' && l.key, k?.key);
});

test('a read-only key store needs a pepper made before it', async () => {
  await assert.rejects(KeyStore.open(new MemoryKeyRecords().reader(), [master()]), /no subject pepper/);
});
