/**
 * Sealing: how an event is encrypted into a leaf (DESIGN.md, "The record"), with node:crypto only.
 *
 *     sealed = 0x01 ‖ salt (16) ‖ iv (12) ‖ commitment (32) ‖ AES-256-GCM ciphertext ‖ tag (16)
 *     message key = HMAC-SHA256(data key, "stele/seal/v1/key" ‖ salt)
 *     commitment  = SHA-256("stele/seal/v1/commit" ‖ message key)
 *     AAD         = canonical JSON of the rest of the leaf ({ingest, key, received, v})
 *
 * GCM alone is not key-committing: a crafted ciphertext can open under two keys to two different
 * events. The commitment binds the leaf to one message key and the message key to one data key
 * (HMAC is collision resistant), so no other key can open a leaf at all. A fresh message key per
 * event also means a random IV never repeats under one key however many events a day key seals,
 * and an evidence bundle can reveal one event's message key without revealing its neighbours'.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SEAL_VERSION = 1;
const SALT = 16;
const IV = 12;
const COMMIT = 32;
const TAG = 16;
const HEADER = 1 + SALT + IV + COMMIT;
/** Bytes a sealed event adds to its plaintext (before base64). */
export const SEAL_OVERHEAD = HEADER + TAG;

const KEY_LABEL = Buffer.from('stele/seal/v1/key');
const COMMIT_LABEL = Buffer.from('stele/seal/v1/commit');

/** Why a sealed event could not be opened; callers turn it into their own error. */
export class UnsealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsealError';
  }
}

function messageKeyFromSalt(dataKey: Buffer, salt: Buffer): Buffer {
  return createHmac('sha256', dataKey).update(KEY_LABEL).update(salt).digest();
}

function commitment(messageKey: Buffer): Buffer {
  return createHash('sha256').update(COMMIT_LABEL).update(messageKey).digest();
}

/** Encrypts `plaintext` under a 32-byte data key, bound to `aad`. */
export function seal(dataKey: Buffer, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const rnd = randomBytes(SALT + IV);
  const salt = rnd.subarray(0, SALT);
  const iv = rnd.subarray(SALT);
  const mk = messageKeyFromSalt(dataKey, salt);
  const cipher = createCipheriv('aes-256-gcm', mk, iv);
  cipher.setAAD(aad);
  const ct = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([Buffer.of(SEAL_VERSION), rnd, commitment(mk), ct, cipher.getAuthTag()]);
}

function parts(sealed: Uint8Array) {
  if (sealed.length < SEAL_OVERHEAD) throw new UnsealError(`sealed event is ${sealed.length} bytes, shorter than its header`);
  if (sealed[0] !== SEAL_VERSION) throw new UnsealError(`sealed event has version ${sealed[0]}; only ${SEAL_VERSION} is known`);
  const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  return {
    salt: b.subarray(1, 1 + SALT),
    iv: b.subarray(1 + SALT, 1 + SALT + IV),
    commit: b.subarray(1 + SALT + IV, HEADER),
    ct: b.subarray(HEADER, b.length - TAG),
    tag: b.subarray(b.length - TAG),
  };
}

/** SHA-256 block size: HMAC pads its key to this. */
const BLOCK = 64;

/**
 * messageKeyFromSalt on the reading side, the same bytes (RFC 2104 with the 32-byte key zero-padded
 * to a block: SHA-256((K ⊕ opad) ‖ SHA-256((K ⊕ ipad) ‖ label ‖ salt))) from two one-shot hashes,
 * without creating an Hmac object per event: opening a leaf is the index thread's hottest path
 * (about half the cost of unseal went to creating Hmac and Hash objects). The padded key copies are
 * zeroed before it returns.
 */
export function messageKeyFast(dataKey: Buffer, salt: Uint8Array): Buffer {
  if (dataKey.length > BLOCK) return messageKeyFromSalt(dataKey, Buffer.from(salt));
  const inner = Buffer.alloc(BLOCK + KEY_LABEL.length + salt.length);
  const outer = Buffer.alloc(BLOCK + 32);
  for (let i = 0; i < BLOCK; i++) {
    const k = i < dataKey.length ? (dataKey[i] as number) : 0;
    inner[i] = k ^ 0x36;
    outer[i] = k ^ 0x5c;
  }
  KEY_LABEL.copy(inner, BLOCK);
  inner.set(salt, BLOCK + KEY_LABEL.length);
  hash('sha256', inner, 'buffer').copy(outer, BLOCK);
  const mk = hash('sha256', outer, 'buffer');
  inner.fill(0);
  outer.fill(0);
  return mk;
}

function commitmentFast(messageKey: Buffer): Buffer {
  return hash('sha256', Buffer.concat([COMMIT_LABEL, messageKey]), 'buffer');
}

/** The message key of one sealed event: what an evidence bundle reveals so an auditor can open just that event. */
export function messageKey(dataKey: Buffer, sealed: Uint8Array): Buffer {
  return messageKeyFast(dataKey, parts(sealed).salt);
}

/**
 * Opens a sealed event with its message key: checks the commitment first (a different key is
 * refused before any decryption), then GCM's tag over ciphertext and AAD.
 */
export function openWithMessageKey(mk: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer {
  return openParts(mk, parts(sealed), aad);
}

function openParts(mk: Buffer, p: ReturnType<typeof parts>, aad: Uint8Array): Buffer {
  if (mk.length !== 32 || !timingSafeEqual(commitmentFast(mk), p.commit)) {
    throw new UnsealError('the key does not match the commitment in the sealed event');
  }
  const decipher = createDecipheriv('aes-256-gcm', mk, p.iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(p.tag);
  try {
    const plain = decipher.update(p.ct);
    decipher.final(); // checks the tag: nothing is returned unless it matches
    return plain;
  } catch {
    throw new UnsealError('the sealed event or its leaf fields were altered (authentication failed)');
  }
}

/** Opens a sealed event with the data key that sealed it, and says its message key. */
export function unsealWithMessageKey(
  dataKey: Buffer,
  sealed: Uint8Array,
  aad: Uint8Array,
): { plain: Buffer; messageKey: Buffer } {
  const p = parts(sealed);
  const mk = messageKeyFast(dataKey, p.salt);
  return { plain: openParts(mk, p, aad), messageKey: mk };
}

/** Opens a sealed event with the data key that sealed it. */
export function unseal(dataKey: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer {
  return unsealWithMessageKey(dataKey, sealed, aad).plain;
}
