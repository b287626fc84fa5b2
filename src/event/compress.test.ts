import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CODEC, compressPlaintext, decompressPlaintext, leafDictionary } from './compress.js';

const sample = Buffer.from(
  '{"event":{"action":"git.commit","actor":{"id":"alice-000","type":"human","verified":false},"data":{"branch":"main","sha":"0e951a386a7e15972fb5a3708a313ea4336c184b"},"id":"39dfcb2d-3f2a-40ea-bc8e-4b88bf9294d1","outcome":"success","resource":{"id":"acme/web-console","type":"repo"},"source":{"host":"alice-laptop","kind":"git"},"time":"2026-10-23T06:03:47.578Z"},"ingest":{"method":"apikey","principal":"apikey:git-hooks"}}',
);

test('the leaf dictionary is the pinned file (leaves written with it must stay readable)', () => {
  assert.equal(leafDictionary().length, 32768);
});

test('an audit event compresses to under half with the dictionary, and back to the same bytes', () => {
  const { codec, bytes } = compressPlaintext(sample);
  assert.equal(codec, CODEC.zstdLeaf1);
  assert.ok(bytes.length * 2 < sample.length, `${bytes.length} of ${sample.length}`);
  assert.ok(decompressPlaintext(codec, Buffer.from(bytes), 65535).equals(sample));
});

test('what does not get smaller is kept as it is (codec none)', () => {
  const noise = randomBytes(2000);
  const { codec, bytes } = compressPlaintext(noise);
  assert.equal(codec, CODEC.none);
  assert.ok(Buffer.from(bytes).equals(noise));
  assert.ok(decompressPlaintext(CODEC.none, bytes, 65535).equals(noise));
});

test('decompression refuses a frame larger than the bound, an unknown codec and a broken frame', () => {
  const big = Buffer.from(sample.toString().repeat(40));
  const { bytes } = compressPlaintext(big);
  const frame = Buffer.from(bytes);
  assert.throws(() => decompressPlaintext(CODEC.zstdLeaf1, frame, 1000), /declares \d+ size \(at most 1000\)/);
  assert.throws(() => decompressPlaintext(7, frame, 65535), /unknown compression 7/);
  const broken = Buffer.from(frame);
  broken.fill(0x41, 8);
  assert.throws(() => decompressPlaintext(CODEC.zstdLeaf1, broken, 65535));
});
