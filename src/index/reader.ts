import { decodeLeaf, leafAad, sealedContent } from '../event/record.js';
import type { Event, Ingest, LeafRecord } from '../event/types.js';
import { type KeyStore, keyNotReadable } from '../keys/keystore.js';
import { unsealWithMessageKey } from '../keys/seal.js';

export interface OpenedEntry {
  record: LeafRecord;
  event: Event;
  /** Who wrote it: from the leaf (v1, plain leaves) or sealed with the event (v2 sealed leaves). */
  ingest: Ingest;
  /** The per-event message key of a sealed leaf (what an evidence bundle reveals), when asked for. */
  messageKey?: Buffer;
}

/**
 * Opens a leaf: decodes it and, when sealed, decrypts the event (and, for v2, its ingest) with its
 * data key. Throws SteleError 410 'expired'/'erased' when the key was destroyed (see keyNotReadable).
 */
export async function openEntry(keys: KeyStore, index: number, leaf: Buffer, withMessageKey = false): Promise<OpenedEntry> {
  const record = decodeLeaf(leaf);
  if (record.event) return { record, event: record.event, ingest: record.ingest as Ingest };
  const keyId = record.key as string;
  const l = keys.cached(keyId) ?? (await keys.lookup(keyId));
  if (l?.state !== 'active') throw keyNotReadable(index, l, keyId);
  const sealed = Buffer.from(record.sealed as string, 'base64');
  const { plain, messageKey } = unsealWithMessageKey(l.key, sealed, leafAad(record));
  const { event, ingest } = sealedContent(record, plain);
  return withMessageKey ? { record, event, ingest, messageKey } : { record, event, ingest };
}
