/**
 * Which gaps a stele.erasure / stele.retention.run entry explains. The query store links them
 * (ErasureLink); which keys an entry destroyed is decided here, from the entry and the key
 * records alone, so `stele reindex` links the same gaps as the live server, where the gaps come
 * first (the key is destroyed, then the entry appended).
 */
import { parseMicros } from '../event/record.js';
import type { Event } from '../event/types.js';
import type { KeyFilter } from '../keys/key-records.js';
import type { KeyInfo } from '../keys/keystore.js';

/** How a server-written stele.erasure / stele.retention.run entry names the keys it destroyed. */
export type ErasureRef =
  | { kind: 'erasure'; index: number; received: number; subjectHash: string }
  | { kind: 'expiry'; index: number; received: number; slots: { tier: string; day: string }[] };

/** What entry `index` (received at `received`) destroyed, when it is an erasure or a retention run. */
export function erasureRef(index: number, received: string, e: Event): ErasureRef | null {
  if (e.source.kind !== 'stele' || (e.action !== 'stele.erasure' && e.action !== 'stele.retention.run')) return null;
  const d = (e.data ?? {}) as Record<string, unknown>;
  const at = Number(parseMicros(received));
  if (e.action === 'stele.erasure') {
    return typeof d.subject_hash === 'string' ? { kind: 'erasure', index, received: at, subjectHash: d.subject_hash } : null;
  }
  const slots = Array.isArray(d.expired)
    ? d.expired.filter(
        (x): x is { tier: string; day: string } =>
          typeof x === 'object' && x !== null && typeof x.tier === 'string' && typeof x.day === 'string',
      )
    : [];
  return slots.length > 0 ? { kind: 'expiry', index, received: at, slots } : null;
}

/**
 * The keys `ref` destroyed, among `keys`: for an erasure, the keys of its subject erased; for a
 * retention run, the keys of its expired (tier, day)s — in both cases destroyed no later than the
 * entry was received (a key destroyed by a later run is that run's).
 */
export function destroyedBy(ref: ErasureRef, keys: readonly KeyInfo[]): string[] {
  const slots = ref.kind === 'expiry' ? new Set(ref.slots.map((s) => `${s.tier}\0${s.day}`)) : null;
  const ids: string[] = [];
  for (const k of keys) {
    if (k.destroyed === null || Date.parse(k.destroyed) * 1000 > ref.received) continue;
    const hit =
      ref.kind === 'erasure'
        ? k.state === 'erased' && k.subject === ref.subjectHash
        : k.state === 'expired' && slots?.has(`${k.tier}\0${k.day}`) === true;
    if (hit) ids.push(k.id);
  }
  return ids;
}

/** The key records `ref` can name (destroyedBy narrows them): one select per subject or expired slot, not every key. */
export function candidates(ref: ErasureRef): KeyFilter[] {
  return ref.kind === 'erasure'
    ? [{ state: 'erased', subject: ref.subjectHash }]
    : ref.slots.map((s) => ({ state: 'expired', tier: s.tier, day: s.day }));
}
