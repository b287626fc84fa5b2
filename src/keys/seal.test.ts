import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { messageKey, openWithMessageKey, SEAL_OVERHEAD, SEAL_RANDOM, SealingKey, seal, UnsealError, unseal } from './seal.js';

const aad = Buffer.from(
  '{"ingest":{"method":"local","principal":"t"},"key":"k1","received":"2026-11-22T10:00:00.000000Z","v":1}',
);
const event = Buffer.from('{"action":"emacs.package.install","marker":"seal-test"}');

test('a sealed event opens with its data key and reveals nothing in the clear', () => {
  const key = randomBytes(32);
  const sealed = seal(key, event, aad);
  assert.equal(sealed.length, event.length + SEAL_OVERHEAD);
  assert.ok(!sealed.includes(Buffer.from('seal-test')));
  assert.deepEqual(unseal(key, sealed, aad), event);
  assert.notDeepEqual(seal(key, event, aad), sealed, 'a fresh salt (so a fresh message key) every time');
});

test('key commitment: no other key opens a leaf, not even one that passes GCM', () => {
  const key = randomBytes(32);
  const sealed = seal(key, event, aad);
  assert.throws(
    () => unseal(randomBytes(32), sealed, aad),
    (e: Error) => e instanceof UnsealError && /commitment/.test(e.message),
  );
  // Opening with the right message key but a commitment rewritten for another key fails too: the
  // commitment is bound to the message key, and the message key to the data key.
  const other = messageKey(randomBytes(32), sealed);
  assert.throws(() => openWithMessageKey(other, sealed, aad), /commitment/);
});

test('the AEAD binds the rest of the leaf and every ciphertext byte', () => {
  const key = randomBytes(32);
  const sealed = seal(key, event, aad);
  assert.throws(() => unseal(key, sealed, Buffer.from(aad.toString().replace('k1', 'k2'))), /altered/);
  for (const at of [1, 20, 40, 70, sealed.length - 20, sealed.length - 1]) {
    const bad = Buffer.from(sealed);
    bad[at] = (bad[at] as number) ^ 1;
    assert.throws(() => unseal(key, bad, aad), UnsealError, `byte ${at}`);
  }
  assert.throws(() => unseal(key, sealed.subarray(0, 40), aad), /shorter/);
  const v1 = Buffer.from(sealed);
  v1[0] = 1; // read with version 1's layout and labels: nothing lines up
  assert.throws(() => unseal(key, v1, aad), UnsealError);
  const v3 = Buffer.from(sealed);
  v3[0] = 3;
  assert.throws(() => unseal(key, v3, aad), /version 3; only 1 and 2 are known/);
});

test('version 2 stores no IV (each message key seals one event); version 1 seals still open', async () => {
  const { createCipheriv, createHmac, hash } = await import('node:crypto');
  const key = randomBytes(32);
  const sealed = seal(key, event, aad);
  assert.equal(sealed[0], 2);
  assert.equal(SEAL_OVERHEAD, 1 + 16 + 32 + 16);
  // Version 1 as earlier versions wrote it: 0x01 ‖ salt ‖ IV ‖ commitment ‖ ciphertext ‖ tag.
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const mk = createHmac('sha256', key).update('stele/seal/v1/key').update(salt).digest();
  const commit = hash('sha256', Buffer.concat([Buffer.from('stele/seal/v1/commit'), mk]), 'buffer');
  const c = createCipheriv('aes-256-gcm', mk, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(event), c.final()]);
  const v1 = Buffer.concat([Buffer.from([1]), salt, iv, commit, ct, c.getAuthTag()]);
  assert.deepEqual(unseal(key, v1, aad), event);
  assert.deepEqual(messageKey(key, v1), mk);
  assert.deepEqual(openWithMessageKey(mk, v1, aad), event);
});

test('a message key opens exactly its own event (what evidence bundles reveal)', () => {
  const key = randomBytes(32);
  const a = seal(key, event, aad);
  const b = seal(key, Buffer.from('{"other":true}'), aad);
  assert.deepEqual(openWithMessageKey(messageKey(key, a), a, aad), event);
  assert.throws(() => openWithMessageKey(messageKey(key, a), b, aad), /commitment/);
});

test('SealingKey derives the message key createHmac derives, for any key length, and its seals open', () => {
  for (const len of [1, 32, 64, 65, 100]) {
    const key = randomBytes(len);
    const sk = new SealingKey(key);
    for (let i = 0; i < 3; i++) {
      const rnd = randomBytes(SEAL_RANDOM);
      const sealed = sk.seal(rnd, event, aad);
      assert.deepEqual(sk.messageKey(rnd.subarray(0, 16)), messageKey(key, sealed), `key of ${len} bytes`);
      assert.deepEqual(unseal(key, sealed, aad), event);
      assert.deepEqual(sealed.subarray(1, 1 + SEAL_RANDOM), rnd);
    }
  }
  assert.throws(() => new SealingKey(randomBytes(32)).seal(randomBytes(27), event, aad), RangeError);
});

test('the reading side derives the same message key and commitment as sealing (HMAC-SHA256 by its definition)', async () => {
  const { createHmac } = await import('node:crypto');
  for (let i = 0; i < 200; i++) {
    const key = randomBytes(32);
    const salt = randomBytes(16);
    const want = createHmac('sha256', key).update('stele/seal/v2/key').update(salt).digest();
    assert.deepEqual(new SealingKey(key).messageKey(salt), want);
  }
  const key = randomBytes(32);
  const sealed = seal(key, event, aad);
  assert.deepEqual(
    messageKey(key, sealed),
    createHmac('sha256', key).update('stele/seal/v2/key').update(sealed.subarray(1, 17)).digest(),
  );
  assert.deepEqual(openWithMessageKey(messageKey(key, sealed), sealed, aad), event);
});

test('a changed tag, ciphertext or AAD is refused after the commitment passes', () => {
  const key = randomBytes(32);
  const sealed = seal(key, event, aad);
  for (const at of [sealed.length - 1, sealed.length - 20]) {
    const bad = Buffer.from(sealed);
    bad[at] = (bad[at] as number) ^ 1;
    assert.throws(
      () => unseal(key, bad, aad),
      (e: Error) => e instanceof UnsealError && /authentication/.test(e.message),
    );
  }
  assert.throws(() => unseal(key, sealed, Buffer.concat([aad, Buffer.from(' ')])), /authentication/);
});
