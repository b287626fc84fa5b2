import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { IdTable, JournalIdIndex, uuidBytes } from './id-index.js';

const dir = mkdtempSync(join(tmpdir(), 'stele-ids-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('finds every inserted id at its index, across growth, and nothing else', () => {
  const t = new IdTable(16);
  const keys = Array.from({ length: 5000 }, () => uuidBytes(randomUUID()));
  for (const [i, k] of keys.entries()) t.insert(k, i);
  const confirm = (i: number, k: Uint8Array) => Buffer.compare(keys[i] as Buffer, k) === 0;
  for (const [i, k] of keys.entries()) assert.equal(t.find(k, confirm), i);
  for (let i = 0; i < 5000; i++) assert.equal(t.find(uuidBytes(randomUUID()), confirm), undefined);
});

test('indices up to 2^40 come back whole', () => {
  const t = new IdTable();
  const big = [2 ** 32 - 1, 2 ** 32, 2 ** 32 + 7, 2 ** 40 - 1];
  const keys = big.map(() => uuidBytes(randomUUID()));
  for (const [i, k] of keys.entries()) t.insert(k, big[i] as number);
  for (const [i, k] of keys.entries())
    assert.equal(
      t.find(k, (x) => x === big[i]),
      big[i],
    );
  assert.throws(() => t.insert(uuidBytes(randomUUID()), 2 ** 40), /below 2\^40/);
});

test('memory grows with the ids in small steps, never by doubling, at under 20 bytes an id', () => {
  const t = new IdTable();
  const key = Buffer.alloc(16);
  let before = t.bytes;
  let largest = 0;
  for (let i = 0; i < 300_000; i++) {
    key.writeUInt32BE(i, 0);
    key.writeUInt32BE(Math.imul(i, 2654435761) >>> 0, 12);
    t.insert(key, i);
    if (i % 1000 === 999) {
      largest = Math.max(largest, t.bytes - before);
      before = t.bytes;
    }
  }
  assert.ok(largest < t.bytes * 0.02, `a step of ${largest} bytes in ${t.bytes}`);
  assert.ok(t.bytes / t.size < 20, `${t.bytes / t.size} bytes an id`);
  // Sized for what it will hold (a reopened journal), it hardly grows.
  const sized = new IdTable(300_000);
  const start = sized.bytes;
  for (let i = 0; i < 300_000; i++) {
    key.writeUInt32BE(i, 0);
    sized.insert(key, i);
  }
  assert.ok(sized.bytes < start * 1.05, `${start} → ${sized.bytes}`);
});

test('a tag collision is resolved by the confirmation, not by trusting the tag', () => {
  const t = new IdTable(16);
  const a = uuidBytes(randomUUID());
  const b = uuidBytes(randomUUID());
  t.insert(a, 0);
  // A confirm that rejects everything stands for "same tag, different id".
  assert.equal(
    t.find(a, () => false),
    undefined,
  );
  assert.equal(
    t.find(a, (i) => i === 0),
    0,
  );
  assert.equal(t.find(b, () => true) === 0, t.tag(a) === t.tag(b));
});

test('the journal index survives reopening up to its durable mark and replays the rest', async () => {
  const path = join(dir, 'ids.journal');
  const ids = Array.from({ length: 10 }, () => randomUUID());
  const ents = ids.map((id) => ({ id }));
  let ix = new JournalIdIndex(path);
  ix.add(0, ents.slice(0, 6));
  await ix.flush();
  ix.add(6, ents.slice(6));
  ix.close();
  ix = new JournalIdIndex(path);
  assert.equal(ix.upto(), 6, 'only the flushed part counts after a restart');
  ix.add(4, ents.slice(4)); // replay from the write-ahead log overlaps what is there
  assert.equal(ix.upto(), 10);
  const found = ix.lookup([...ids, randomUUID(), ids[3]!.toUpperCase()]);
  assert.deepEqual(
    [...found.entries()].slice(0, 10),
    ids.map((id, i) => [id, i]),
  );
  assert.equal(found.size, 11);
  assert.throws(() => ix.add(12, [{ id: randomUUID() }]), /cannot add from 12/);
  assert.throws(() => ix.lookup(['not-a-uuid']), /not a UUID/);
  ix.close();
});

test('digests are kept beside ids, survive reopening, and an old journal without them reads as unknown', async () => {
  const path = join(dir, 'digests.journal');
  const d = (n: number) => Buffer.alloc(16, n);
  const ents = [{ id: randomUUID(), digest: d(1) }, { id: randomUUID() }, { id: randomUUID(), digest: d(3) }];
  let ix = new JournalIdIndex(path);
  ix.add(0, ents);
  assert.deepEqual(ix.digestAt(0), d(1));
  assert.equal(ix.digestAt(1), null, 'no digest given: unknown');
  await ix.flush();
  ix.close();
  ix = new JournalIdIndex(path);
  assert.deepEqual(ix.digestAt(2), d(3));
  assert.equal(ix.digestAt(3), null);
  ix.close();
  // A journal written before digests existed: no digest file at all.
  rmSync(`${path}.digests`);
  ix = new JournalIdIndex(path);
  assert.equal(ix.upto(), 3);
  assert.equal(ix.digestAt(0), null);
  assert.equal(ix.lookup([ents[2]!.id]).get(ents[2]!.id), 2);
  ix.add(3, [{ id: randomUUID(), digest: d(4) }]);
  assert.deepEqual(ix.digestAt(3), d(4));
  ix.close();
});
