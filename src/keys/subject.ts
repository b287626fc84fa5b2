import { createHmac } from 'node:crypto';

/**
 * The keyed hash that stands for a data subject wherever the subject itself must not appear (data
 * key slots, erasure events, the `subject_hash` Cedar policies compare): HMAC-SHA-256 under the
 * key store's pepper, 32 hex digits. Its own module so the policy layer can use it without the key store.
 */
export function subjectHash(pepper: Buffer, subject: string): string {
  return createHmac('sha256', pepper).update(subject).digest('hex').slice(0, 32);
}
