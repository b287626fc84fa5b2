import type { KeyStore } from '../keys/keystore.js';
import type { ErasureLink, GapLink } from './store.js';

/**
 * Which keys a stele.erasure / stele.retention.run entry destroyed, so the store can link their
 * gaps before it: for an erasure, the keys of its subject erased; for a retention run, the keys of
 * its expired (tier, day)s — in both cases destroyed no later than the entry was received (a key
 * destroyed by a later run is that run's). Derived from the log and the key store alone, so
 * `stele reindex` links the same gaps as the live server, where the gaps come first (the key is
 * destroyed, then the entry appended).
 */
export async function gapLink(keys: Pick<KeyStore, 'select'>, l: ErasureLink): Promise<GapLink> {
  const found =
    l.kind === 'erasure'
      ? await keys.select({ state: 'erased', subject: l.subjectHash })
      : (await Promise.all(l.slots.map((s) => keys.select({ state: 'expired', tier: s.tier, day: s.day })))).flat();
  const keyIds = found.filter((k) => k.destroyed !== null && Date.parse(k.destroyed) * 1000 <= l.received).map((k) => k.id);
  return { index: l.index, keyIds };
}
