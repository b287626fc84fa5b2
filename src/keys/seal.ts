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
import { createCipheriv, createDecipheriv, hash, randomBytes, timingSafeEqual } from 'node:crypto';

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

/** Random bytes one seal consumes: salt ‖ IV. */
export const SEAL_RANDOM = SALT + IV;

const BLOCK = 64; // SHA-256's block: HMAC's pad length

/**
 * One data key ready to seal many events: HMAC-SHA256's padded keys are made once, so each seal
 * costs two one-shot SHA-256 calls for the message key (the same bytes createHmac gives) instead
 * of an Hmac object's key set-up. Stateless between calls apart from reused scratch buffers.
 */
export class SealingKey {
  /** K ⊕ ipad ‖ KEY_LABEL ‖ salt: the inner hash's input (the salt is written per seal). */
  private readonly inner: Buffer;
  /** K ⊕ opad ‖ inner digest. */
  private readonly outer: Buffer;

  constructor(dataKey: Uint8Array) {
    const k = Buffer.alloc(BLOCK);
    if (dataKey.length > BLOCK) hash('sha256', dataKey, 'buffer').copy(k);
    else k.set(dataKey);
    this.inner = Buffer.alloc(BLOCK + KEY_LABEL.length + SALT);
    this.outer = Buffer.alloc(BLOCK + 32);
    for (let i = 0; i < BLOCK; i++) {
      this.inner[i] = (k[i] as number) ^ 0x36;
      this.outer[i] = (k[i] as number) ^ 0x5c;
    }
    KEY_LABEL.copy(this.inner, BLOCK);
  }

  /** HMAC-SHA256(data key, KEY_LABEL ‖ salt). */
  messageKey(salt: Uint8Array): Buffer {
    this.inner.set(salt, BLOCK + KEY_LABEL.length);
    this.outer.set(hash('sha256', this.inner, 'buffer'), BLOCK);
    return hash('sha256', this.outer, 'buffer');
  }

  /**
   * seal() with the caller's SEAL_RANDOM random bytes (salt ‖ IV), so a batch can draw its
   * randomness in one call. `random` must be fresh from a CSPRNG for every seal.
   */
  seal(random: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
    if (random.length !== SEAL_RANDOM) throw new RangeError(`seal: ${random.length} random bytes, not ${SEAL_RANDOM}`);
    const mk = this.messageKey(random.subarray(0, SALT));
    const cipher = createCipheriv('aes-256-gcm', mk, random.subarray(SALT));
    cipher.setAAD(aad);
    const out = Buffer.allocUnsafe(SEAL_OVERHEAD + plaintext.length);
    out[0] = SEAL_VERSION;
    out.set(random, 1);
    out.set(commitment(mk), 1 + SEAL_RANDOM);
    const ct = cipher.update(plaintext);
    out.set(ct, HEADER);
    const rest = cipher.final(); // empty for GCM
    if (rest.length > 0) throw new Error('seal: AES-GCM returned bytes at final');
    out.set(cipher.getAuthTag(), HEADER + ct.length);
    return out;
  }
}

/** Encrypts `plaintext` under a 32-byte data key, bound to `aad`. */
export function seal(dataKey: Buffer, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  return new SealingKey(dataKey).seal(randomBytes(SEAL_RANDOM), plaintext, aad);
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

/** SHA-256(COMMIT_LABEL ‖ message key): what a sealed event commits to. */
function commitment(messageKey: Buffer): Buffer {
  return hash('sha256', Buffer.concat([COMMIT_LABEL, messageKey]), 'buffer');
}

/** The message key of one sealed event: what an evidence bundle reveals so an auditor can open just that event. */
export function messageKey(dataKey: Buffer, sealed: Uint8Array): Buffer {
  return new SealingKey(dataKey).messageKey(parts(sealed).salt);
}

/**
 * Opens a sealed event with its message key: checks the commitment first (a different key is
 * refused before any decryption), then GCM's tag over ciphertext and AAD.
 */
export function openWithMessageKey(mk: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer {
  return openParts(mk, parts(sealed), aad);
}

function openParts(mk: Buffer, p: ReturnType<typeof parts>, aad: Uint8Array): Buffer {
  if (mk.length !== 32 || !timingSafeEqual(commitment(mk), p.commit)) {
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
  const mk = new SealingKey(dataKey).messageKey(p.salt);
  return { plain: openParts(mk, p, aad), messageKey: mk };
}

/** Opens a sealed event with the data key that sealed it. */
export function unseal(dataKey: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer {
  return unsealWithMessageKey(dataKey, sealed, aad).plain;
}
