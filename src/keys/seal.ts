/**
 * Sealing: how an event is encrypted into a leaf (DESIGN.md, "The record"), with node:crypto only.
 *
 *     sealed (version 2) = 0x02 ‖ salt (16) ‖ commitment (32) ‖ AES-256-GCM ciphertext ‖ tag (16)
 *     message key = HMAC-SHA256(data key, "stele/seal/v2/key" ‖ salt)
 *     commitment  = SHA-256("stele/seal/v2/commit" ‖ message key)
 *     IV          = 12 zero bytes: each message key seals exactly one event
 *     AAD         = what the leaf binds besides (record.ts: a v3 leaf's header)
 *
 * GCM alone is not key-committing: a crafted ciphertext can open under two keys to two different
 * events. The commitment binds the leaf to one message key and the message key to one data key
 * (HMAC is collision resistant), so no other key can open a leaf at all. A fresh message key per
 * event (a random 128-bit salt) means no key ever encrypts twice, so the IV need not be random or
 * stored (version 1 stored a random one: 12 bytes an event); and an evidence bundle can reveal one
 * event's message key without revealing its neighbours'. Version 1 (`0x01 ‖ salt ‖ IV (12) ‖
 * commitment ‖ ciphertext ‖ tag`, labels "v1") is still opened.
 */
import { createCipheriv, createDecipheriv, hash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SEAL_VERSION = 2;
const SALT = 16;
const IV = 12;
const COMMIT = 32;
const TAG = 16;
const HEADER = 1 + SALT + COMMIT;
/** Bytes a sealed event adds to its plaintext. */
export const SEAL_OVERHEAD = HEADER + TAG;
const ZERO_IV = Buffer.alloc(IV);

/** The labels of each version (the same length, so a SealingKey's buffers fit either). */
const KEY_LABEL = { 1: Buffer.from('stele/seal/v1/key'), 2: Buffer.from('stele/seal/v2/key') } as const;
const COMMIT_LABEL = { 1: Buffer.from('stele/seal/v1/commit'), 2: Buffer.from('stele/seal/v2/commit') } as const;
type Version = keyof typeof KEY_LABEL;

/** Why a sealed event could not be opened; callers turn it into their own error. */
export class UnsealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsealError';
  }
}

/** Random bytes one seal consumes: its salt. */
export const SEAL_RANDOM = SALT;

const BLOCK = 64; // SHA-256's block: HMAC's pad length

/**
 * One data key ready to seal many events: HMAC-SHA256's padded keys are made once, so each seal
 * costs two one-shot SHA-256 calls for the message key (the same bytes createHmac gives) instead
 * of an Hmac object's key set-up. Stateless between calls apart from reused scratch buffers.
 */
export class SealingKey {
  /** K ⊕ ipad ‖ key label ‖ salt: the inner hash's input (the label and salt written per call). */
  private readonly inner: Buffer;
  /** K ⊕ opad ‖ inner digest. */
  private readonly outer: Buffer;

  constructor(dataKey: Uint8Array) {
    const k = Buffer.alloc(BLOCK);
    if (dataKey.length > BLOCK) hash('sha256', dataKey, 'buffer').copy(k);
    else k.set(dataKey);
    this.inner = Buffer.alloc(BLOCK + KEY_LABEL[2].length + SALT);
    this.outer = Buffer.alloc(BLOCK + 32);
    for (let i = 0; i < BLOCK; i++) {
      this.inner[i] = (k[i] as number) ^ 0x36;
      this.outer[i] = (k[i] as number) ^ 0x5c;
    }
  }

  /** HMAC-SHA256(data key, key label of `version` ‖ salt). */
  messageKey(salt: Uint8Array, version: Version = SEAL_VERSION): Buffer {
    const label = KEY_LABEL[version];
    this.inner.set(label, BLOCK);
    this.inner.set(salt, BLOCK + label.length);
    this.outer.set(hash('sha256', this.inner, 'buffer'), BLOCK);
    return hash('sha256', this.outer, 'buffer');
  }

  /**
   * seal() with the caller's SEAL_RANDOM random bytes (the salt), so a batch can draw its
   * randomness in one call. `random` must be fresh from a CSPRNG for every seal.
   */
  seal(random: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
    if (random.length !== SEAL_RANDOM) throw new RangeError(`seal: ${random.length} random bytes, not ${SEAL_RANDOM}`);
    const mk = this.messageKey(random);
    const cipher = createCipheriv('aes-256-gcm', mk, ZERO_IV);
    cipher.setAAD(aad);
    const out = Buffer.allocUnsafe(SEAL_OVERHEAD + plaintext.length);
    out[0] = SEAL_VERSION;
    out.set(random, 1);
    out.set(commitment(mk, SEAL_VERSION), 1 + SALT);
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

/** A sealed event's fields, by its version (1: with a stored IV; 2: the IV is zero). */
function parts(sealed: Uint8Array) {
  const version = sealed[0];
  if (version !== 1 && version !== 2) throw new UnsealError(`sealed event has version ${version}; only 1 and 2 are known`);
  const header = version === 1 ? 1 + SALT + IV + COMMIT : HEADER;
  if (sealed.length < header + TAG) throw new UnsealError(`sealed event is ${sealed.length} bytes, shorter than its header`);
  const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  return {
    version: version as Version,
    salt: b.subarray(1, 1 + SALT),
    iv: version === 1 ? b.subarray(1 + SALT, 1 + SALT + IV) : ZERO_IV,
    commit: b.subarray(header - COMMIT, header),
    ct: b.subarray(header, b.length - TAG),
    tag: b.subarray(b.length - TAG),
  };
}

/** SHA-256(commit label ‖ message key): what a sealed event commits to. */
function commitment(messageKey: Buffer, version: Version): Buffer {
  return hash('sha256', Buffer.concat([COMMIT_LABEL[version], messageKey]), 'buffer');
}

/** The message key of one sealed event: what an evidence bundle reveals so an auditor can open just that event. */
export function messageKey(dataKey: Buffer, sealed: Uint8Array): Buffer {
  const p = parts(sealed);
  return new SealingKey(dataKey).messageKey(p.salt, p.version);
}

/**
 * Opens a sealed event with its message key: checks the commitment first (a different key is
 * refused before any decryption), then GCM's tag over ciphertext and AAD.
 */
export function openWithMessageKey(mk: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer {
  return openParts(mk, parts(sealed), aad);
}

function openParts(mk: Buffer, p: ReturnType<typeof parts>, aad: Uint8Array): Buffer {
  if (mk.length !== 32 || !timingSafeEqual(commitment(mk, p.version), p.commit)) {
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
  const mk = new SealingKey(dataKey).messageKey(p.salt, p.version);
  return { plain: openParts(mk, p, aad), messageKey: mk };
}

/** Opens a sealed event with the data key that sealed it. */
export function unseal(dataKey: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer {
  return unsealWithMessageKey(dataKey, sealed, aad).plain;
}
