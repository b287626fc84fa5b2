import { decodeLeaf, sealedAad } from '../event/record.js';
import type { Event, LeafRecord } from '../event/types.js';
import { type KeyStore, keyNotReadable } from '../keys/keystore.js';
import { messageKey, unseal } from '../keys/seal.js';

export interface OpenedEntry {
  record: LeafRecord;
  event: Event;
  /** The per-event message key of a sealed leaf (what an evidence bundle reveals), when asked for. */
  messageKey?: Buffer;
}

/**
 * Opens a leaf: decodes it and, when sealed, decrypts the event with its data key. Throws
 * SteleError 410 'expired'/'erased' when the key was destroyed (see keyNotReadable).
 */
export function openEntry(keys: KeyStore, index: number, leaf: Buffer, withMessageKey = false): OpenedEntry {
  const record = decodeLeaf(leaf);
  if (record.event) return { record, event: record.event };
  const keyId = record.key as string;
  const l = keys.lookup(keyId);
  if (l?.state !== 'active') throw keyNotReadable(index, l, keyId);
  const sealed = Buffer.from(record.sealed as string, 'base64');
  const plain = unseal(l.key, sealed, sealedAad(record.ingest, keyId, record.received));
  const event = JSON.parse(plain.toString('utf8')) as Event;
  return withMessageKey ? { record, event, messageKey: messageKey(l.key, sealed) } : { record, event };
}
