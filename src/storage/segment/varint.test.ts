import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteReader, ByteWriter } from './varint.js';

test('varints: unsigned and zigzag values up to 2^53 come back; a read past the end throws', () => {
  const values = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 1_795_342_503_140_211, Number.MAX_SAFE_INTEGER];
  const w = new ByteWriter();
  for (const v of values) w.uvarint(v);
  const signed = values.filter((v) => v > 0 && v < 2 ** 52);
  for (const v of signed) {
    w.zigzag(-v);
    w.zigzag(v);
  }
  w.string('héllo');
  const r = new ByteReader(w.finish());
  assert.deepEqual(
    values.map(() => r.uvarint()),
    values,
  );
  for (const v of signed) assert.deepEqual([r.zigzag(), r.zigzag()], [-v, v]);
  assert.equal(r.string(), 'héllo');
  assert.ok(r.done);
  assert.throws(() => r.uvarint(), /past the end/);
  assert.throws(() => new ByteWriter().uvarint(-1), RangeError);
  assert.throws(() => new ByteWriter().zigzag(2 ** 52), RangeError);
  assert.throws(() => new ByteReader(Buffer.from([0x80, 0x80])).uvarint(), /past the end/);
});
