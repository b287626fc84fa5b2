import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { decodeRecords, encodeRecords, WriteAheadLog } from './wal.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'stele-wal-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const entries = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ id: `id-${from + i}`, leaf: Buffer.from(`{"leaf":${from + i}}`) }));

test('records round-trip and a torn or corrupted tail stops decoding there', () => {
  const buf = encodeRecords(entries(5));
  assert.deepEqual(decodeRecords(buf).entries, entries(5));
  const torn = buf.subarray(0, buf.length - 3);
  assert.equal(decodeRecords(torn).entries.length, 4);
  const flipped = Buffer.from(buf);
  flipped.writeUInt8(flipped.readUInt8(flipped.length - 2) ^ 1, flipped.length - 2);
  assert.equal(decodeRecords(flipped).entries.length, 4);
});

test('reopening returns entries from the requested index and truncates a torn tail', async () => {
  const dir = tmp();
  let { wal, entries: got } = await WriteAheadLog.open(dir, 0);
  assert.equal(got.length, 0);
  await wal.append(0, entries(10));
  await wal.append(10, entries(5, 10));
  await wal.close();
  const seg = join(dir, readdirSync(dir)[0] as string);
  const size = statSync(seg).size;
  appendFileSync(seg, Buffer.from([0, 0, 1, 0, 9, 9])); // half a record: a crash mid-write
  ({ wal, entries: got } = await WriteAheadLog.open(dir, 7));
  assert.deepEqual(got, entries(8, 7));
  assert.equal(statSync(seg).size, size, 'the torn tail is cut off');
  await assert.rejects(wal.append(14, entries(1)), /expected entry 15/);
  await wal.append(15, entries(1, 15));
  await wal.close();
  ({ wal, entries: got } = await WriteAheadLog.open(dir, 0));
  assert.equal(got.length, 16);
  await wal.close();
});

test('corruption before the tail of an older segment is refused, not truncated', async () => {
  const dir = tmp();
  const { wal } = await WriteAheadLog.open(dir, 0);
  await wal.append(0, entries(3));
  await wal.close();
  const seg = join(dir, readdirSync(dir)[0] as string);
  writeFileSync(join(dir, `${'3'.padStart(20, '0')}.wal`), encodeRecords(entries(2, 3)));
  const b = Buffer.from(encodeRecords(entries(3)));
  b.writeUInt8(b.readUInt8(12) ^ 0xff, 12);
  writeFileSync(seg, b);
  await assert.rejects(WriteAheadLog.open(dir, 0), /corrupt/);
});

test('a log that no longer reaches the needed entry is refused', async () => {
  const dir = tmp();
  const { wal } = await WriteAheadLog.open(dir, 0);
  await wal.append(0, entries(3));
  await wal.close();
  await assert.rejects(WriteAheadLog.open(dir, 5), /ends at entry 3/);
});

test('a record with a content digest round-trips, beside records without one', () => {
  const list = [
    { id: 'a', leaf: Buffer.from('{"x":1}'), digest: Buffer.alloc(16, 7) },
    { id: 'b', leaf: Buffer.from('{"x":2}') },
  ];
  assert.deepEqual(decodeRecords(encodeRecords(list)).entries, list);
});
