import { createHmac } from 'node:crypto';
import { nfc } from '../event/nfc.js';

/**
 * The keyed hash that stands for a data subject wherever the subject itself must not appear (data
 * key slots, erasure events, the `subject_hash` Cedar policies compare): HMAC-SHA-256 under the
 * key store's pepper, 32 hex digits, of the subject in NFC (so both spellings of "é" are one
 * subject). Its own module so the policy layer can use it without the key store.
 */
export function subjectHash(pepper: Buffer, subject: string): string {
  return rawHash(pepper, nfc(subject));
}

function rawHash(pepper: Buffer, s: string): string {
  return createHmac('sha256', pepper).update(s).digest('hex').slice(0, 32);
}

/**
 * Every hash a subject's data keys may be under: subjectHash first, then (for data directories
 * written before subjects were normalised) the hashes of the spelling given and of its NFD form.
 */
export function subjectHashes(pepper: Buffer, subject: string): string[] {
  return [...new Set([subjectHash(pepper, subject), rawHash(pepper, subject), rawHash(pepper, subject.normalize('NFD'))])];
}
