/**
 * What the key store keeps, as records: the seam between the key store's logic (src/keys/keystore.ts:
 * wrapping, caching, the subject pepper) and a storage driver (src/storage/<driver>/keys.ts). A
 * driver stores bytes it cannot read — data keys arrive wrapped by a master key — and knows
 * nothing of sealing. Every method is async so a networked driver can implement it.
 *
 * What every driver must guarantee (the conformance suite, src/storage/conformance/keys.ts, checks it):
 * - a write has reached durable storage before its promise resolves (a key exists before any leaf
 *   sealed with it is acknowledged); insert() is all or nothing;
 * - at most one active key per (tier, day, subject) slot;
 * - destroy() is final: the wrapped key and its master id are dropped, the record is kept as a
 *   tombstone (state, when, why), and the old bytes are scrubbed from the driver's storage (files,
 *   journals, write-ahead logs), not just unreferenced.
 */

export type KeyState = 'active' | 'expired' | 'erased';

/** A data key without its key material: what listings, tombstones and legal holds see. */
export interface KeyInfo {
  id: string;
  tier: string;
  /** UTC day (YYYY-MM-DD) of the receipt times of the events it seals. */
  day: string;
  /** Keyed hash of the data subject (see subjectHash), or null. */
  subject: string | null;
  created: string;
  state: KeyState;
  destroyed: string | null;
  reason: string | null;
}

/** A data key's record: its metadata and, while active, the key wrapped by master key `master`. */
export interface KeyRecord extends KeyInfo {
  wrapped: Buffer | null;
  master: string | null;
}

/** A record's metadata alone. */
export const keyInfo = (r: KeyRecord): KeyInfo => ({
  id: r.id,
  tier: r.tier,
  day: r.day,
  subject: r.subject,
  created: r.created,
  state: r.state,
  destroyed: r.destroyed,
  reason: r.reason,
});

/** A data-key slot: events of one tier, received on one UTC day, about one data subject (or none). */
export interface SlotName {
  tier: string;
  day: string;
  /** subjectHash of the events' subject, or null. */
  subject: string | null;
}

/** A slot as one string (a cache key). */
export const slotName = (s: SlotName) => `${s.tier}\n${s.day}\n${s.subject ?? ''}`;

/** A secret wrapped by a master key (the subject pepper). */
export interface WrappedSecret {
  wrapped: Buffer;
  master: string;
}

/** Which keys select() returns: every given criterion must match. */
export interface KeyFilter {
  state?: KeyState;
  tier?: string;
  day?: string;
  /** Days before this one (YYYY-MM-DD). */
  beforeDay?: string;
  subject?: string;
}

/**
 * A filter's criteria as SQL conditions on the key table's columns, each with one placeholder
 * `?` and its value, in one order for every SQL driver (each numbers the placeholders its way).
 */
export function keyFilterConditions(f: KeyFilter): { cond: string; value: string }[] {
  const out: { cond: string; value: string }[] = [];
  const add = (cond: string, value: string | undefined) => {
    if (value !== undefined) out.push({ cond, value });
  };
  add('state = ?', f.state);
  add('tier = ?', f.tier);
  add('day = ?', f.day);
  add('day < ?', f.beforeDay);
  add('subject = ?', f.subject);
  return out;
}

export interface KeyRecords {
  /** Opened for lookups only: every write is refused. */
  readonly readonly: boolean;
  /** The wrapped subject pepper, or undefined before the key store's first open. */
  pepper(): Promise<WrappedSecret | undefined>;
  /** Stores the pepper (the first open, and master-key rotation). */
  setPepper(p: WrappedSecret): Promise<void>;
  /**
   * A driver shared by several processes: stores `p` unless a pepper is there already (another
   * process starting at the same moment made one) and returns the one stored, atomically.
   */
  initPepper?(p: WrappedSecret): Promise<WrappedSecret>;
  /** The active key of each slot (undefined where there is none), in the order asked. */
  activeSlots(slots: readonly SlotName[]): Promise<(KeyRecord | undefined)[]>;
  /**
   * Stores new active keys, all or none. A driver shared by several processes throws SlotTaken
   * (storing none) when another one made an active key for one of the slots meanwhile.
   */
  insert(keys: readonly KeyRecord[]): Promise<void>;
  /** Keys by id (undefined where unknown), in the order asked. */
  get(ids: readonly string[]): Promise<(KeyRecord | undefined)[]>;
  /** Keys matching a filter, without key material, by day, tier and creation. */
  select(filter: KeyFilter): Promise<KeyInfo[]>;
  /**
   * Destroys those of `ids` that are active: drops the wrapped key, keeps a tombstone. Returns how
   * many were active.
   */
  destroy(ids: readonly string[], state: 'expired' | 'erased', reason: string, at: string): Promise<number>;
  /** The active keys with their wrapped key (master-key rotation re-wraps them). */
  active(): Promise<KeyRecord[]>;
  /** Replaces wrapped keys and the pepper in one step (all or none). */
  rewrap(keys: readonly { id: string; wrapped: Buffer; master: string }[], pepper: WrappedSecret): Promise<void>;
  /** Master key ids the active keys and the pepper are wrapped by. */
  mastersInUse(): Promise<string[]>;
  /**
   * A driver shared by several processes (pg) tells of keys destroyed by any of them: `ids`, or
   * null when some may have been missed (the caller then forgets every key it cached).
   */
  watchDestroyed?(fn: (ids: string[] | null) => void): Promise<void>;
  close(): Promise<void>;
}

/** KeyRecords.insert: another process made an active key for a slot meanwhile; nothing was stored. */
export class SlotTaken extends Error {
  constructor() {
    super('another process made an active key for this slot meanwhile');
  }
}
